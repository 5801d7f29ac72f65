"""Convolution factories in blocks, encoders, decoders, MeshNet, the autoencoder and Pose2Mesh."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from meshgraph import MeshHierarchy, MeshTopology
from meshgraph.generators import icosphere_vertices_faces
from meshgraph.models import MeshAutoencoder, MeshNet
from meshgraph.nn import (
    CONVOLUTIONS,
    ChebBlock,
    ChebConvFactory,
    MeshBlock,
    MeshChebConv,
    MeshDecoder,
    MeshEncoder,
    SpiralConv,
    SpiralConvFactory,
    conv_factory,
)


@pytest.fixture(scope="module")
def ico() -> tuple[torch.Tensor, MeshHierarchy]:
    verts, faces = icosphere_vertices_faces(2)
    return torch.as_tensor(verts, dtype=torch.float32), MeshHierarchy.build(MeshTopology(faces), 4)


def test_conv_factory_by_name() -> None:
    assert set(CONVOLUTIONS) == {"cheb", "spiral"}
    assert conv_factory("cheb", K=2) == ChebConvFactory(K=2)
    assert conv_factory("spiral", length=5, dilation=2) == SpiralConvFactory(5, 2)
    with pytest.raises(ValueError, match="unknown convolution 'gcn'"):
        conv_factory("gcn")
    with pytest.raises(ValueError, match=r"not \['K'\]"):
        conv_factory("spiral", K=3)


def test_factories_build_their_layers() -> None:
    mesh = MeshTopology(icosphere_vertices_faces(1)[1])
    cheb = ChebConvFactory(K=2, rescale="pose2mesh", backend="dense")(3, 5, mesh)
    assert isinstance(cheb, MeshChebConv) and cheb.K == 2 and cheb.backend == "dense"
    spiral = SpiralConvFactory(length=6, dilation=2)(3, 5, mesh)
    assert isinstance(spiral, SpiralConv) and (spiral.length, spiral.dilation) == (6, 2)


def test_chebblock_is_a_meshblock_with_chebyshev() -> None:
    mesh = MeshTopology(icosphere_vertices_faces(1)[1])
    torch.manual_seed(0)
    a = ChebBlock(3, 8, 3, mesh, norm="group")
    torch.manual_seed(0)
    b = MeshBlock(3, 8, mesh, conv=ChebConvFactory(3), norm="group")
    assert isinstance(a, MeshBlock)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.randn(2, mesh.num_vertices, 3)
    torch.testing.assert_close(a(x), b(x), rtol=0, atol=0)


def test_a_spiral_block_keeps_the_residual_and_float64() -> None:
    mesh = MeshTopology(icosphere_vertices_faces(1)[1])
    block = MeshBlock(4, 8, mesh, conv=SpiralConvFactory(), norm="none", activation=False)
    with torch.no_grad():
        block.conv.weight.zero_()
    x = torch.randn(2, mesh.num_vertices, 4)
    # a zero convolution leaves the residual: the channels linearly resampled 4 -> 8
    ref = nn.functional.interpolate(x, size=8, mode="linear", align_corners=False)
    torch.testing.assert_close(block(x), ref)
    block = block.double()
    assert block.resample is not None and block.resample.dtype == torch.float64


def test_encoder_and_decoder_build_every_convolution_with_the_factory(ico) -> None:
    _, h = ico
    calls: list[tuple[int, int, int]] = []

    def factory(i: int, o: int, top) -> nn.Module:  # a factory of one's own: any callable
        calls.append((i, o, top.num_vertices))
        return SpiralConv(i, o, top, length=4)

    enc = MeshEncoder(h, 3, [8, 16], conv=factory, norm="group")
    dec = MeshDecoder(h, 16, [8, 8, 16], 3, head_init_scale=0.5, conv=factory, norm="group")
    s = h.sizes
    assert calls == [
        (3, 8, s[0]), (8, 16, s[1]),  # encoder blocks
        (16, 16, s[2]), (16, 8, s[1]), (8, 8, s[0]),  # decoder blocks, coarse to fine
        (8, 3, s[0]),  # head
    ]  # fmt: skip
    x = torch.randn(2, s[0], 3)
    assert dec(enc(x)).shape == (2, s[0], 3)
    assert all(isinstance(m.conv, SpiralConv) for m in [*enc.blocks, *dec.blocks])
    with pytest.raises(ValueError, match="to the convolution factory"):
        MeshEncoder(h, 3, [8], conv=factory, backend="dense")


def test_the_head_scale_applies_to_any_convolution(ico) -> None:
    _, h = ico
    factory = SpiralConvFactory(length=5)
    torch.manual_seed(0)
    full = MeshDecoder(h, 8, [8, 8], 3, head_init_scale=1.0, conv=factory)
    torch.manual_seed(0)
    small = MeshDecoder(h, 8, [8, 8], 3, head_init_scale=0.01, conv=factory)
    torch.testing.assert_close(small.head.weight, full.head.weight * 0.01)
    torch.testing.assert_close(small.head.bias, full.head.bias)


def test_default_factories_keep_the_chebyshev_networks(ico) -> None:
    """conv=None builds the same weights, draw for draw, as an explicit Chebyshev factory."""
    _, h = ico
    torch.manual_seed(0)
    a = MeshAutoencoder(h, channels=(8, 16), latent=4, K=2)
    torch.manual_seed(0)
    b = MeshAutoencoder(h, channels=(8, 16), latent=4, conv=ChebConvFactory(2))
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert isinstance(a.decoder.head, MeshChebConv) and a.decoder.head.K == 2


def test_spiral_autoencoder_learns(ico) -> None:
    verts, h = ico
    torch.manual_seed(0)
    data = verts * (1 + 0.3 * torch.rand(64, 1, 3))  # stretched spheres
    model = MeshAutoencoder(h, channels=(8, 16), latent=8, conv=conv_factory("spiral"))
    assert isinstance(model.encoder.blocks[0].conv, SpiralConv)
    losses = model.fit(data, 60, batch_size=16, lr=3e-3)
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("variant", ["coarse_to_fine", "direct"])
def test_meshnet_runs_with_spirals(ico, variant: str) -> None:
    _, h = ico
    net = MeshNet("coco", h, variant=variant, conv=functools.partial(SpiralConv, length=5))
    mesh_convs = [m for m in net.modules() if isinstance(m, SpiralConv)]
    assert mesh_convs and all(c.length == 5 for c in mesh_convs)
    joint_convs = [m for m in net.joint_blocks.modules() if isinstance(m, MeshChebConv)]
    assert len(joint_convs) == 3  # the joint graph stays Chebyshev
    out = net(torch.randn(2, 19, 2), torch.randn(2, 19, 3))
    assert out.shape == (2, h.sizes[0], 3)
    out.square().mean().backward()
    assert all(c.weight.grad is not None for c in mesh_convs)
