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


def _random_rotation(gen):
    q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r))
    return q if torch.det(q) > 0 else -q


@pytest.mark.parametrize("js", ["coco", "h36m", "hand"])
def test_joint_frame_is_a_rotation_that_follows_the_joints(js):
    from meshgraph.bodies import get_joint_set
    from meshgraph.models import joint_frame

    gen = torch.Generator().manual_seed(0)
    n = get_joint_set(js).num_joints
    joints = torch.randn(5, n, 3, generator=gen, dtype=torch.float64)
    frame = joint_frame(joints, js)
    eye = torch.eye(3, dtype=torch.float64).expand(5, 3, 3)
    torch.testing.assert_close(frame.transpose(1, 2) @ frame, eye)
    torch.testing.assert_close(torch.linalg.det(frame), torch.ones(5, dtype=torch.float64))
    q = _random_rotation(gen)
    torch.testing.assert_close(joint_frame(joints @ q.T, js), q @ frame)  # equivariant
    # degenerate: every joint on one line still gives a rotation
    line = torch.linspace(0, 1, n, dtype=torch.float64)[None, :, None] * torch.ones(1, n, 3)
    f = joint_frame(line, js)[0]
    torch.testing.assert_close(f.T @ f, torch.eye(3, dtype=torch.float64))


def test_canonical_frame_meshnet_is_rotation_equivariant(mesh):
    """Rotating the 3D input joints rotates the predicted mesh by the same rotation."""
    h = MeshHierarchy.build(mesh, 3)
    net = MeshNet("h36m", h, decoder_channels=[8, 8, 16], coarse_channels=16,
                  canonical_frame=True).double().eval()  # fmt: skip
    gen = torch.Generator().manual_seed(1)
    kp = torch.randn(3, 17, 2, generator=gen, dtype=torch.float64)
    joints = torch.randn(3, 17, 3, generator=gen, dtype=torch.float64)
    q = _random_rotation(gen)
    with torch.no_grad():
        out = net(kp, joints)
        rotated = net(kp, joints @ q.T)
    torch.testing.assert_close(rotated, out @ q.T)
    plain = MeshNet("h36m", h, decoder_channels=[8, 8, 16], coarse_channels=16).double().eval()
    with torch.no_grad():  # without the frame the network is not equivariant
        assert not torch.allclose(plain(kp, joints @ q.T), plain(kp, joints) @ q.T, atol=1e-6)
    with pytest.raises(ValueError, match="canonical_frame needs"):
        MeshNet(_custom_joint_set(), h, canonical_frame=True)


def _custom_joint_set():
    from meshgraph.bodies import JointSet

    return JointSet("tri", ("a", "b", "c"), ((0, 1), (1, 2)))
