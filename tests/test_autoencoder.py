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
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    first = (ae(data) - data).abs().mean().item()
    for _ in range(150):
        loss = (ae(data) - data).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
