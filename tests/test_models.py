from __future__ import annotations

import pytest
import torch

from meshgraph import MeshHierarchy
from meshgraph.generators import icosphere
from meshgraph.models import FCBaseline, MeshNet, PoseNet, default_decoder_channels


@pytest.fixture(scope="module")
def mesh():
    return icosphere(3)


def test_posenet_shapes_and_parameter_count():
    net = PoseNet(17, width=64)
    assert net(torch.randn(5, 17, 2)).shape == (5, 17, 3)
    # Linear(34, 64) + 2 x [BN(64), Linear(64, 64)] x 2 + Linear(64, 51)
    expected = (34 * 64 + 64) + 2 * 2 * (2 * 64 + 64 * 64 + 64) + (64 * 51 + 51)
    assert sum(p.numel() for p in net.parameters()) == expected
    paper = PoseNet(17, width=4096)
    assert 66e6 < sum(p.numel() for p in paper.parameters()) < 69e6  # the paper's 67.5 M
    with pytest.raises(ValueError, match=r"\(B, 17, 2\)"):
        net(torch.randn(5, 19, 2))


def test_default_channels():
    assert default_decoder_channels([100, 50], 1, coarse=64, fine=16) == [16, 64]
    ch = default_decoder_channels([4000, 2000, 1000, 500, 250], 4)
    assert ch[0] == 32 and ch[-1] == 128 and ch == sorted(ch)
    assert default_decoder_channels([10], 0) == [32]
    with pytest.raises(ValueError):
        default_decoder_channels([10, 5], 2)


@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
@pytest.mark.parametrize("variant", ["coarse_to_fine", "direct"])
def test_meshnet_output_in_mesh_order(mesh, layout, variant):
    h = MeshHierarchy.build(mesh, 4, layout=layout)
    net = MeshNet("h36m", h, variant=variant, decoder_channels=[8, 8, 16, 16], coarse_channels=16)
    out = net(torch.randn(3, 17, 2), torch.randn(3, 17, 3))
    assert out.shape == (3, mesh.num_vertices, 3)
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_meshnet_layouts_agree_on_real_vertices(mesh):
    """With identical weights, compact and binary-tree MeshNets differ only where fake
    vertices enter: the vertex order of the output is the mesh order in both."""
    h = MeshHierarchy.build(mesh, 1)  # one level: no pooling, both layouts identical graphs
    a = MeshNet("coco", h, decoder_channels=[8], coarse_channels=8, norm="none")
    tree = MeshHierarchy.build(mesh, 1, layout="binary_tree")
    b = MeshNet("coco", tree, decoder_channels=[8], coarse_channels=8, norm="none")
    b.load_state_dict(a.state_dict())
    kp, j3 = torch.randn(2, 19, 2), torch.randn(2, 19, 3)
    torch.testing.assert_close(a(kp, j3), b(kp, j3))


def test_meshnet_does_not_backpropagate_into_3d_joints(mesh):
    h = MeshHierarchy.build(mesh, 3)
    net = MeshNet("hand", h, decoder_channels=[8, 8, 8], coarse_channels=8)
    j3 = torch.randn(2, 21, 3, requires_grad=True)
    kp = torch.randn(2, 21, 2, requires_grad=True)
    net(kp, j3).sum().backward()
    assert j3.grad is None and kp.grad is not None


def test_meshnet_errors(mesh):
    h = MeshHierarchy.build(mesh, 3)
    with pytest.raises(ValueError, match="variant"):
        MeshNet("h36m", h, variant="fine_to_coarse")
    with pytest.raises(ValueError, match="decoder_channels needs 3"):
        MeshNet("h36m", h, decoder_channels=[8, 8])
    with pytest.raises(ValueError, match="coarse_level"):
        MeshNet("h36m", h, coarse_level=5)
    net = MeshNet("h36m", h, decoder_channels=[8, 8, 8])
    with pytest.raises(ValueError, match=r"\(B, 17, 2\)"):
        net(torch.randn(1, 19, 2), torch.randn(1, 19, 3))


def test_fc_baseline(mesh):
    fc = FCBaseline(17, mesh.num_vertices, hidden=(32,))
    assert fc(torch.randn(4, 17, 2), torch.randn(4, 17, 3)).shape == (4, mesh.num_vertices, 3)
    with pytest.raises(ValueError, match="17 joints"):
        fc(torch.randn(4, 19, 2), torch.randn(4, 19, 3))
