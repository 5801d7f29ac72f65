from __future__ import annotations

import pytest
import torch

from meshgraph import MeshHierarchy
from meshgraph.generators import icosphere
from meshgraph.models import MeshAutoencoder


@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
def test_shapes_and_mesh_order(layout):
    h = MeshHierarchy.build(icosphere(3), 4, layout=layout)
    ae = MeshAutoencoder(h, channels=[8, 8, 16], latent=5)
    x = torch.randn(3, 642, 3)
    z = ae.encode(x)
    assert z.shape == (3, 5)
    assert ae.decode(z).shape == (3, 642, 3)
    assert ae(x).shape == x.shape


def test_learns_to_reconstruct_a_small_set():
    torch.manual_seed(0)
    h = MeshHierarchy.build(icosphere(2), 3)
    base = torch.randn(1, 162, 3) * 0.1
    data = base + 0.05 * torch.randn(4, 162, 3)
    ae = MeshAutoencoder(h, channels=[16, 16], latent=8)
    first = (ae(data) - data).abs().mean().item()
    logged = []
    losses = ae.fit(data, 150, batch_size=4, lr=3e-3, log=lambda s, v: logged.append(s),
                    log_every=50)  # fmt: skip
    assert len(losses) == 150 and logged == [50, 100, 150]
    assert not ae.training
    with torch.no_grad():
        assert (ae(data) - data).abs().mean().item() < 0.3 * first
