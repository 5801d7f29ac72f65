from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from meshgraph import MeshHierarchy
from meshgraph.generators import icosphere
from meshgraph.nn import MeshChebConv
from meshgraph.nn.blocks import ChebBlock, MeshDecoder, MeshEncoder, interpolate_channels


@pytest.fixture(scope="module", params=["compact", "binary_tree"])
def hierarchy(request):
    return MeshHierarchy.build(icosphere(2), 4, layout=request.param)


def test_interpolate_channels_by_hand():
    x = torch.tensor([[[0.0, 2.0, 4.0]]])
    assert interpolate_channels(x, 3) is x
    torch.testing.assert_close(interpolate_channels(torch.tensor([[1.0, 3.0]]), 4),
                               torch.tensor([[1.0, 1.5, 2.5, 3.0]]))  # fmt: skip
    # narrowing averages neighbouring channels
    torch.testing.assert_close(interpolate_channels(torch.tensor([[1.0, 3.0, 5.0, 7.0]]), 2),
                               torch.tensor([[2.0, 6.0]]))  # fmt: skip
    assert interpolate_channels(torch.zeros(2, 5, 7, 3), 8).shape == (2, 5, 7, 8)


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_cheb_block_is_conv_norm_relu_plus_residual(norm):
    mesh = icosphere(1)
    block = ChebBlock(4, 8, 3, mesh, norm=norm).double().eval()
    x = torch.randn(3, mesh.num_vertices, 4, dtype=torch.float64)
    y = block(x)
    assert y.shape == (3, mesh.num_vertices, 8)
    conv = block.conv(x)
    if norm == "batch":
        bn = block.norm
        conv = (conv - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias
    elif norm == "group":
        conv = block.norm(conv.transpose(1, 2)).transpose(1, 2)
    ref_residual = F.interpolate(x.reshape(-1, 1, 4), size=8, mode="linear", align_corners=False)
    torch.testing.assert_close(y, torch.relu(conv) + ref_residual.view(3, -1, 8))
    plain = ChebBlock(4, 8, 3, mesh, norm="none", activation=False, residual=False)
    plain.conv.load_state_dict(block.conv.state_dict())
    torch.testing.assert_close(plain.double()(x), block.conv(x))
    with pytest.raises(ValueError, match="norm"):
        ChebBlock(4, 8, 3, mesh, norm="layer")


def test_encoder_decoder_shapes_and_gradients(hierarchy):
    enc = MeshEncoder(hierarchy, 3, [8, 16, 16])
    dec = MeshDecoder(hierarchy, 16, [8, 8, 16, 16], out_channels=3)
    x = torch.randn(2, hierarchy.sizes[0], 3, requires_grad=True)
    z = enc(x)
    assert z.shape == (2, hierarchy.sizes[3], 16)
    y = dec(z)
    assert y.shape == (2, hierarchy.sizes[0], 3)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in dec.parameters())


def test_decoder_from_an_intermediate_level(hierarchy):
    dec = MeshDecoder(hierarchy, 5, [4, 6], out_channels=2)
    assert dec.top_level == 1 and dec.in_vertices == hierarchy.sizes[1]
    out = dec(torch.randn(1, hierarchy.sizes[1], 5))
    assert out.shape == (1, hierarchy.sizes[0], 2)


def test_decoder_matches_manual_composition():
    h = MeshHierarchy.build(icosphere(1), 3)
    dec = MeshDecoder(h, 4, [3, 5, 6], norm="none").double()
    x = torch.randn(2, h.sizes[2], 4, dtype=torch.float64)
    b2, b1, b0 = dec.blocks
    up = [lambda t, lv=lv: t[:, h.clusters[lv - 1]] for lv in (0, 1, 2)]  # copy to the children
    manual = dec.head(b0(up[1](b1(up[2](b2(x))))))
    torch.testing.assert_close(dec(x), manual)
    assert isinstance(dec.head, MeshChebConv)


def test_bad_channel_lists(hierarchy):
    with pytest.raises(ValueError, match="channel counts"):
        MeshEncoder(hierarchy, 3, [])
    with pytest.raises(ValueError, match="channel counts"):
        MeshEncoder(hierarchy, 3, [4, 4, 4, 4])
    with pytest.raises(ValueError, match="channel counts"):
        MeshDecoder(hierarchy, 3, [4] * 5)
    with pytest.raises(ValueError, match="positive"):
        MeshDecoder(hierarchy, 3, [4, 0])
