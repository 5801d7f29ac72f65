from __future__ import annotations

import numpy as np
import pytest
import torch

from meshgraph.generators import icosphere_vertices_faces
from meshgraph.losses import (
    EdgeLengthLoss,
    JointLoss,
    LaplacianLoss,
    NormalVectorLoss,
    VertexLoss,
    edge_length_loss,
    joint_loss,
    keypoint_loss,
    laplacian_loss,
    normal_and_edge_losses,
    normal_vector_loss,
    regress_joints,
    reprojection_loss,
    vertex_loss,
)
from meshgraph.mesh import MeshTopology


@pytest.fixture
def sphere():
    v, f = icosphere_vertices_faces(1)
    return torch.tensor(v), MeshTopology(f)


def _pair(sphere, b=3):
    v, mesh = sphere
    g = torch.Generator().manual_seed(0)
    target = v.expand(b, -1, -1) * (1 + 0.2 * torch.rand(b, 1, 3, generator=g, dtype=v.dtype))
    pred = target + 0.05 * torch.randn(target.shape, generator=g, dtype=v.dtype)
    return pred, target, mesh


def _naive_normal_loss(p, t, faces):
    vals = []
    for b in range(p.shape[0]):
        for a, bb, c in faces:
            n = np.cross(t[b, bb] - t[b, a], t[b, c] - t[b, a])
            n /= np.linalg.norm(n)
            for e in (p[b, bb] - p[b, a], p[b, c] - p[b, a], p[b, c] - p[b, bb]):
                vals.append(abs(np.dot(e / np.linalg.norm(e), n)))
    return np.mean(vals)


def _naive_edge_loss(p, t, faces):
    vals = []
    for b in range(p.shape[0]):
        for a, bb, c in faces:
            for i, j in ((a, bb), (a, c), (bb, c)):
                vals.append(
                    abs(np.linalg.norm(p[b, i] - p[b, j]) - np.linalg.norm(t[b, i] - t[b, j]))
                )
    return np.mean(vals)


def test_losses_match_naive_loops(sphere):
    pred, target, mesh = _pair(sphere)
    p, t, f = pred.numpy(), target.numpy(), mesh.faces.numpy()
    assert vertex_loss(pred, target).item() == pytest.approx(np.abs(p - t).mean(), rel=1e-12)
    assert normal_vector_loss(pred, target, mesh).item() == pytest.approx(
        _naive_normal_loss(p, t, f), rel=1e-10
    )
    assert edge_length_loss(pred, target, mesh).item() == pytest.approx(
        _naive_edge_loss(p, t, f), rel=1e-10
    )
    # uniform Laplacian by a loop over the adjacency lists
    adj = mesh.adjacency.tolil().rows
    ref = [
        np.linalg.norm(p[b, i] - p[b, adj[i]].mean(0)) for b in range(3) for i in range(len(adj))
    ]
    assert laplacian_loss(pred, mesh).item() == pytest.approx(np.mean(ref), rel=1e-10)
    d = p - t
    ref2 = [
        np.linalg.norm(d[b, i] - d[b, adj[i]].mean(0)) for b in range(3) for i in range(len(adj))
    ]
    assert laplacian_loss(pred, mesh, target).item() == pytest.approx(np.mean(ref2), rel=1e-10)


def _naive_per_edge(p, t, faces):
    """(B, F, 3) normal and edge-length terms, edges b - a, c - a, c - b, by loops."""
    normal = np.zeros((p.shape[0], len(faces), 3))
    length = np.zeros_like(normal)
    for b in range(p.shape[0]):
        for i, (a, bb, c) in enumerate(faces):
            n = np.cross(t[b, bb] - t[b, a], t[b, c] - t[b, a])
            n /= np.linalg.norm(n)
            for k, (u, v) in enumerate(((a, bb), (a, c), (bb, c))):
                e = p[b, v] - p[b, u]
                normal[b, i, k] = abs(np.dot(e / np.linalg.norm(e), n))
                length[b, i, k] = abs(np.linalg.norm(e) - np.linalg.norm(t[b, v] - t[b, u]))
    return normal, length


@pytest.mark.parametrize("vertex_major", [False, True])
def test_per_edge_terms_match_loops_in_either_memory_layout(sphere, vertex_major):
    """reduction="none" gives (B, F, 3) in face and edge order, whatever the input's strides."""
    pred, target, mesh = _pair(sphere)
    normal, length = _naive_per_edge(pred.numpy(), target.numpy(), mesh.faces.numpy())
    if vertex_major:  # a decoder's output: a (B, V, 3) view of (V, B, 3) storage
        pred = pred.transpose(0, 1).contiguous().transpose(0, 1)
        assert not pred.is_contiguous()
    ours = normal_vector_loss(pred, target, mesh, reduction="none")
    np.testing.assert_allclose(ours.numpy(), normal, rtol=1e-10, atol=1e-13)
    ours = edge_length_loss(pred, target, mesh, reduction="none")
    np.testing.assert_allclose(ours.numpy(), length, rtol=1e-10, atol=1e-13)


def _gradcheck_pair(seed):
    """A small float64 icosphere pair, both requiring gradients, and its topology."""
    v, f = icosphere_vertices_faces(0)
    g = torch.Generator().manual_seed(seed)
    target = torch.tensor(v).expand(2, -1, -1) + 0.1 * torch.randn(
        2, len(v), 3, generator=g, dtype=torch.float64
    )
    pred = target + 0.05 * torch.randn(target.shape, generator=g, dtype=torch.float64)
    return pred.requires_grad_(True), target.clone().requires_grad_(True), MeshTopology(f)


@pytest.mark.parametrize("loss", [normal_vector_loss, edge_length_loss])
def test_surface_loss_gradients(loss):
    """Finite differences of the float64 loss, for the prediction and the target."""
    pred, target, mesh = _gradcheck_pair(2)
    assert torch.autograd.gradcheck(lambda p, t: loss(p, t, mesh), (pred, target))


@pytest.mark.parametrize("vertex_major", [False, True])
def test_normal_and_edge_losses_match_loops_and_the_separate_losses(sphere, vertex_major):
    pred, target, mesh = _pair(sphere)
    normal, length = _naive_per_edge(pred.numpy(), target.numpy(), mesh.faces.numpy())
    if vertex_major:
        pred = pred.transpose(0, 1).contiguous().transpose(0, 1)
    n, e = normal_and_edge_losses(pred, target, mesh, reduction="none")
    assert n.shape == e.shape == (3, mesh.num_faces, 3)
    np.testing.assert_allclose(n.numpy(), normal, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(e.numpy(), length, rtol=1e-10, atol=1e-13)
    n, e = normal_and_edge_losses(pred, target, mesh.faces)
    assert n.item() == pytest.approx(normal.mean(), rel=1e-10)
    assert e.item() == pytest.approx(length.mean(), rel=1e-10)
    mask = torch.tensor([[1.0], [0.0], [1.0]]).expand(3, mesh.num_faces)
    n, e = normal_and_edge_losses(pred, target, mesh, mask=mask, reduction="sum")
    assert n.item() == pytest.approx(normal[[0, 2]].sum(), rel=1e-10)
    assert e.item() == pytest.approx(length[[0, 2]].sum(), rel=1e-10)
    torch.testing.assert_close(n, normal_vector_loss(pred, target, mesh, mask, "sum"))
    torch.testing.assert_close(e, edge_length_loss(pred, target, mesh, mask, "sum"))


def test_normal_and_edge_losses_gradients():
    """Finite differences of both float64 terms, for the prediction and the target."""
    pred, target, mesh = _gradcheck_pair(3)

    def both(p, t):
        n, e = normal_and_edge_losses(p, t, mesh)
        return n + 0.7 * e

    assert torch.autograd.gradcheck(both, (pred, target))


def _reference_surface_losses(pred, target, faces, eps=1e-8):
    """The two losses by advanced indexing of (B, V, 3) and torch.linalg.norm."""
    f = faces.long()
    i, j = f[:, [0, 0, 1]], f[:, [1, 2, 2]]
    edges, tedges = pred[:, j] - pred[:, i], target[:, j] - target[:, i]  # (B, F, 3, 3)
    n = torch.linalg.cross(tedges[:, :, 0], tedges[:, :, 1], dim=-1)
    n = n / torch.linalg.norm(n, dim=-1, keepdim=True).clamp_min(eps)
    length = torch.linalg.norm(edges, dim=-1)
    cos = (edges * n[:, :, None]).sum(-1) / length.clamp_min(eps)
    return cos.abs().mean(), (length - torch.linalg.norm(tedges, dim=-1)).abs().mean()


def test_zero_length_edges_have_finite_gradients(sphere):
    """A collapsed edge gets the zero subgradient of |e| at 0 (as torch.linalg.norm), no NaN."""
    pred, target, mesh = _pair(sphere)
    a, b = (int(x) for x in mesh.faces[0, :2])
    pred = pred.clone()
    pred[0, b] = pred[0, a]  # edge a -> b of sample 0 has length 0
    p1, p2 = pred.clone().requires_grad_(True), pred.clone().requires_grad_(True)
    n, e = normal_and_edge_losses(p1, target, mesh)
    (n + e).backward()
    n_ref, e_ref = _reference_surface_losses(p2, target, mesh.faces)
    (n_ref + e_ref).backward()
    assert torch.isfinite(p1.grad).all()
    torch.testing.assert_close(n, n_ref)
    torch.testing.assert_close(e, e_ref)
    torch.testing.assert_close(p1.grad, p2.grad)


def test_degenerate_faces_with_a_repeated_vertex(sphere):
    """A face (a, a, c) has a zero edge: its incidence row must cancel to 0, not add to 2."""
    pred, target, mesh = _pair(sphere)
    faces = mesh.faces.clone()
    faces[0, 1] = faces[0, 0]
    p1, p2 = pred.clone().requires_grad_(True), pred.clone().requires_grad_(True)
    n, e = normal_and_edge_losses(p1, target, faces, reduction="none")
    (n.sum() + e.sum()).backward()
    assert e[:, 0, 0].abs().max() == 0  # |0| - |0|
    n_ref, e_ref = _reference_surface_losses(p2, target, faces)
    (n_ref + e_ref).backward()
    torch.testing.assert_close(e.mean(), e_ref)
    torch.testing.assert_close(n.mean(), n_ref)
    torch.testing.assert_close(p1.grad / n.numel(), p2.grad)


def test_reduced_precision_surface_losses_follow_float32(sphere):
    """bfloat16 vertices take the gather path (no sparse kernel): close to the float32 loss."""
    pred, target, mesh = _pair(sphere)
    n32, e32 = normal_and_edge_losses(pred.float(), target.float(), mesh)
    n16, e16 = normal_and_edge_losses(pred.bfloat16(), target.bfloat16(), mesh)
    assert n16.dtype == torch.bfloat16
    assert n16.float().item() == pytest.approx(n32.item(), rel=0.05)
    assert e16.float().item() == pytest.approx(e32.item(), rel=0.1)


def test_joint_loss_dense_and_sparse_regressor(sphere):
    pred, target, mesh = _pair(sphere)
    g = torch.Generator().manual_seed(1)
    reg = torch.rand(5, mesh.num_vertices, generator=g, dtype=torch.float64)
    reg[reg < 0.8] = 0
    reg = reg / reg.sum(1, keepdim=True)
    joints_t = torch.einsum("jv,bvc->bjc", reg, target)
    ref = np.abs(np.einsum("jv,bvc->bjc", reg.numpy(), pred.numpy()) - joints_t.numpy()).mean()
    assert joint_loss(pred, joints_t, reg).item() == pytest.approx(ref, rel=1e-12)
    assert joint_loss(pred, joints_t, reg.to_sparse()).item() == pytest.approx(ref, rel=1e-12)
    assert joint_loss(pred, joints_t, reg.to_sparse_csr()).item() == pytest.approx(ref, rel=1e-12)
    torch.testing.assert_close(regress_joints(target, reg), joints_t)
    with pytest.raises(ValueError, match="regressor"):
        joint_loss(pred, joints_t, reg[:, :-1])


def test_self_comparison_is_zero(sphere):
    _, target, mesh = _pair(sphere)
    assert vertex_loss(target, target) == 0
    assert normal_vector_loss(target, target, mesh) < 1e-12  # edges lie in their own face plane
    assert edge_length_loss(target, target, mesh) == 0
    assert laplacian_loss(target, mesh, target) == 0


def test_invariances(sphere):
    pred, target, mesh = _pair(sphere)
    # rotating both meshes together changes neither the normal nor the edge loss
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    for fn in (normal_vector_loss, edge_length_loss):
        assert fn(pred @ q.T, target @ q.T, mesh).item() == pytest.approx(
            fn(pred, target, mesh).item(), rel=1e-10
        )
    # a flattened prediction (all z = 0) against a flat target has zero normal loss
    flat = target.clone()
    flat[..., 2] = 0
    squashed = flat.clone()
    squashed[..., :2] *= 1.7
    assert normal_vector_loss(squashed, flat, mesh) < 1e-12


def test_masks_and_reductions(sphere):
    pred, target, mesh = _pair(sphere)
    per = vertex_loss(pred, target, reduction="none")
    assert per.shape == pred.shape
    mask = torch.tensor([1.0, 0.0, 1.0])
    expected = per[[0, 2]].mean()
    torch.testing.assert_close(vertex_loss(pred, target, mask), expected)
    vmask = torch.zeros(3, mesh.num_vertices)
    vmask[1, :5] = 1
    torch.testing.assert_close(vertex_loss(pred, target, vmask), per[1, :5].mean())
    torch.testing.assert_close(vertex_loss(pred, target, reduction="sum"), per.sum())
    fmask = torch.zeros(3, mesh.num_faces)
    fmask[0] = 1
    full = normal_vector_loss(pred, target, mesh, reduction="none")
    assert full.shape == (3, mesh.num_faces, 3)
    torch.testing.assert_close(normal_vector_loss(pred, target, mesh, fmask), full[0].mean())
    with pytest.raises(ValueError, match="broadcast"):
        vertex_loss(pred, target, torch.ones(3, 7))
    with pytest.raises(ValueError, match="reduction"):
        vertex_loss(pred, target, reduction="avg")
    assert vertex_loss(pred, target, torch.zeros(3)) == 0  # nothing valid: 0, not NaN


def test_modules_equal_functions(sphere):
    pred, target, mesh = _pair(sphere)
    reg = torch.eye(mesh.num_vertices, dtype=torch.float64)[:4]
    joints = regress_joints(target, reg)
    assert VertexLoss()(pred, target) == vertex_loss(pred, target)
    assert JointLoss(reg)(pred, joints) == joint_loss(pred, joints, reg)
    assert NormalVectorLoss(mesh)(pred, target) == normal_vector_loss(pred, target, mesh)
    assert EdgeLengthLoss(mesh)(pred, target) == edge_length_loss(pred, target, mesh)
    assert LaplacianLoss(mesh)(pred, target) == laplacian_loss(pred, mesh, target)
    assert NormalVectorLoss(mesh).state_dict() == {}


def test_gradcheck():
    v, f = icosphere_vertices_faces(0)
    small = MeshTopology(f)
    t = torch.tensor(v).expand(2, -1, -1).clone()
    p = (t + 0.1 * torch.randn_like(t)).requires_grad_(True)
    for fn in (
        lambda x: vertex_loss(x, t),
        lambda x: normal_vector_loss(x, t, small),
        lambda x: edge_length_loss(x, t, small),
        lambda x: laplacian_loss(x, small),
        lambda x: joint_loss(x, t[:, :3], torch.eye(12, dtype=torch.float64)[:3] * 0.5 + 0.01),
    ):
        assert torch.autograd.gradcheck(fn, (p,))


def test_bad_inputs(sphere):
    pred, target, mesh = _pair(sphere)
    with pytest.raises(ValueError, match="differ"):
        vertex_loss(pred, target[:2])
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        vertex_loss(pred[0], target[0])
    with pytest.raises(TypeError, match="floating"):
        edge_length_loss(pred.long(), target.long(), mesh)
    with pytest.raises(TypeError, match="faces"):
        edge_length_loss(pred, target, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="topology has"):
        laplacian_loss(pred[:, :-1], mesh)


def test_surface_losses_under_deterministic_algorithms(sphere):
    """No kernel that torch.use_deterministic_algorithms refuses (e.g. bincount on CUDA)."""
    pred, target, mesh = _pair(sphere)
    pred.requires_grad_(True)
    was = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        n, e = normal_and_edge_losses(pred, target, mesh)
        (n + e).backward()
    finally:
        torch.use_deterministic_algorithms(was)
    assert torch.isfinite(pred.grad).all()


def _reprojection_reference(x3, k2, vis):
    """float64 NumPy: per sample, [s, tx, ty] by least squares, then the mean L1 residual."""
    total, count = 0.0, 0
    for x, k, v in zip(x3, k2, vis, strict=True):
        idx = np.flatnonzero(v)
        if len(idx) < 2:
            continue
        rows, rhs = [], []
        for j in idx:
            rows += [[x[j, 0], 1.0, 0.0], [x[j, 1], 0.0, 1.0]]
            rhs += [k[j, 0], k[j, 1]]
        (s, tx, ty), *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
        proj = s * x[idx, :2] + [tx, ty]
        total += np.abs(proj - k[idx]).sum()
        count += 2 * len(idx)
    return total / count


def test_reprojection_loss_against_least_squares_reference():
    g = np.random.default_rng(3)
    x3 = g.normal(size=(5, 7, 3))
    k2 = 40 * x3[..., :2] + 7 + g.normal(scale=2.0, size=(5, 7, 2))
    vis = g.random((5, 7)) > 0.3
    vis[0] = [True] + [False] * 6  # one visible joint: no camera, left out
    vis[1] = True
    k2[~vis] = np.nan  # joints not visible may hold anything
    got = reprojection_loss(torch.tensor(x3), torch.tensor(k2), torch.tensor(vis))
    assert float(got) == pytest.approx(_reprojection_reference(x3, k2, vis), rel=1e-10)
    # exact weak-perspective images (any scale, even a mirroring one, and shift) cost nothing
    for s in (0.5, -3.0):
        exact = reprojection_loss(torch.tensor(x3), s * torch.tensor(x3)[..., :2] + 2.5)
        assert float(exact) < 1e-12
    # depth is free: moving joints along z changes nothing
    moved = torch.tensor(x3).clone()
    moved[..., 2] += torch.tensor(g.normal(size=(5, 7)))
    a = reprojection_loss(torch.tensor(x3), torch.tensor(k2), torch.tensor(vis))
    torch.testing.assert_close(reprojection_loss(moved, torch.tensor(k2), torch.tensor(vis)), a)
    none = reprojection_loss(torch.tensor(x3), torch.tensor(k2), torch.tensor(vis), "none")
    assert none.shape == (5, 7, 2) and float(none[0].abs().sum()) == 0.0
    assert torch.isfinite(none).all()


def test_reprojection_loss_gradients_and_errors():
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 5, 2, dtype=torch.float64)
    vis = torch.tensor([[1, 1, 0, 1, 1], [1, 1, 1, 1, 1]], dtype=torch.bool)
    torch.autograd.gradcheck(lambda a: reprojection_loss(a, k, vis), (x,))
    with pytest.raises(ValueError, match=r"keypoints_2d must have shape \(2, 5, 2\)"):
        reprojection_loss(x, k[:, :4])
    with pytest.raises(ValueError, match=r"joints_3d must have shape \(B, J, 3\)"):
        reprojection_loss(x[..., :2], k)
    with pytest.raises(ValueError, match="visible must have shape"):
        reprojection_loss(x, k, vis[:, :3])
    with pytest.raises(TypeError, match="floating-point"):
        reprojection_loss(x, k.long())


def test_edge_loss_per_edge_lines_up_with_topology_edge_lengths(sphere):
    """One edge order: the edge-length loss's per-edge values are the differences of
    MeshTopology.edge_lengths column by column."""
    pred, target, mesh = _pair(sphere)
    per_edge = edge_length_loss(pred, target, mesh, reduction="none")
    assert per_edge.shape == (3, mesh.num_faces, 3)
    expected = (mesh.edge_lengths(pred) - mesh.edge_lengths(target)).abs()
    torch.testing.assert_close(per_edge, expected)


def test_keypoint_loss_is_the_mean_absolute_difference():
    g = torch.Generator().manual_seed(0)
    p, t = torch.randn(4, 5, 3, generator=g), torch.randn(4, 5, 3, generator=g)
    assert float(keypoint_loss(p, t)) == pytest.approx(np.abs((p - t).numpy()).mean(), rel=1e-6)
    mask = torch.tensor([1, 1, 0, 1, 0], dtype=torch.bool).expand(4, 5)
    ref = np.abs((p - t).numpy())[:, [0, 1, 3]].mean()
    assert float(keypoint_loss(p, t, mask)) == pytest.approx(ref, rel=1e-6)
    assert float(keypoint_loss(p[..., :2], t[..., :2])) == pytest.approx(
        np.abs((p - t).numpy()[..., :2]).mean(), rel=1e-6
    )
    with pytest.raises(ValueError, match="2 or 3 coordinates"):
        keypoint_loss(p[..., :1], t[..., :1])
    with pytest.raises(ValueError, match="shapes differ"):
        keypoint_loss(p, t[:, :4])
