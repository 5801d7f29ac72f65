from __future__ import annotations

import numpy as np
import pytest
import torch

from meshgraph.metrics import (
    f_score,
    mpjpe,
    mpvpe,
    n_mpjpe,
    n_mpvpe,
    pa_mpjpe,
    pa_mpvpe,
    pck,
    pck_auc,
    procrustes_align,
)


def _rotation(seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def _numpy_procrustes(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Reference similarity Procrustes in float64 (Umeyama, determinant-corrected)."""
    mp, mq = p.mean(0), q.mean(0)
    a, b = p - mp, q - mq
    u, s, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt))
    sd = np.diag([1, 1, d])
    r = u @ sd @ vt
    scale = np.trace(np.diag(s) @ sd) / (a**2).sum()
    return scale * a @ r.T + mq


def test_rotated_scaled_shifted_copy_has_zero_pa_error():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((4, 17, 3))
    pred = np.stack([2.5 * target[i] @ _rotation(i).T + rng.standard_normal(3) for i in range(4)])
    p, t = torch.from_numpy(pred), torch.from_numpy(target)
    assert torch.all(pa_mpjpe(p, t) < 1e-10)
    res = procrustes_align(p, t)
    torch.testing.assert_close(res.scale, torch.full((4,), 1 / 2.5, dtype=torch.float64))
    assert torch.allclose(torch.linalg.det(res.rotation), torch.ones(4, dtype=torch.float64))
    assert mpjpe(p, t).min() > 0.1  # without alignment the error is large


def test_procrustes_matches_numpy_reference():
    rng = np.random.default_rng(1)
    p = rng.standard_normal((5, 30, 3))
    q = rng.standard_normal((5, 30, 3))
    ours = procrustes_align(torch.from_numpy(p), torch.from_numpy(q)).aligned.numpy()
    for i in range(5):
        np.testing.assert_allclose(ours[i], _numpy_procrustes(p[i], q[i]), atol=1e-10)


def test_reflection_is_not_used():
    rng = np.random.default_rng(2)
    target = rng.standard_normal((1, 20, 3))
    mirrored = target.copy()
    mirrored[..., 0] *= -1
    res = procrustes_align(torch.from_numpy(mirrored), torch.from_numpy(target))
    assert torch.linalg.det(res.rotation).item() == pytest.approx(1.0)
    assert pa_mpjpe(torch.from_numpy(mirrored), torch.from_numpy(target)).item() > 1e-3


def test_degenerate_prediction_is_safe():
    target = torch.randn(2, 10, 3, dtype=torch.float64)
    pred = torch.ones(2, 10, 3, dtype=torch.float64)  # all points on one spot
    res = procrustes_align(pred, target)
    assert torch.all(res.scale == 0)
    torch.testing.assert_close(res.aligned, target.mean(1, keepdim=True).expand_as(target))
    assert torch.isfinite(pa_mpjpe(pred, target)).all()


def test_known_offset_gives_known_mpjpe():
    target = torch.randn(3, 17, 3, dtype=torch.float64)
    offset = torch.zeros_like(target)
    offset[:, 1:, 2] = 0.05  # every joint but the root moved 5 cm
    assert torch.allclose(
        mpjpe(target + offset, target), torch.full((3,), 0.05 * 16 / 17, dtype=torch.float64)
    )
    # a global shift is removed by root alignment, not without it
    assert torch.allclose(mpjpe(target + 0.1, target), torch.zeros(3, dtype=torch.float64))
    shift = torch.full((3,), 0.1 * 3**0.5, dtype=torch.float64)
    assert torch.allclose(mpjpe(target + 0.1, target, root=None), shift)


def test_mpvpe_with_roots_and_numpy_reference():
    rng = np.random.default_rng(3)
    p, t = rng.standard_normal((2, 50, 3)), rng.standard_normal((2, 50, 3))
    rp, rt = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
    ref = np.linalg.norm((p - rp[:, None]) - (t - rt[:, None]), axis=-1).mean(1)
    ours = mpvpe(*(torch.from_numpy(a) for a in (p, t, rp, rt)))
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        mpvpe(torch.from_numpy(p), torch.from_numpy(t)).numpy(),
        np.linalg.norm(p - t, axis=-1).mean(1),
        atol=1e-12,
    )
    pa_ref = [
        np.linalg.norm(_numpy_procrustes(p[i], t[i]) - t[i], axis=-1).mean() for i in range(2)
    ]
    np.testing.assert_allclose(
        pa_mpvpe(torch.from_numpy(p), torch.from_numpy(t)).numpy(), pa_ref, atol=1e-12
    )
    with pytest.raises(ValueError, match="both"):
        mpvpe(torch.from_numpy(p), torch.from_numpy(t), torch.from_numpy(rp))


def test_f_score_by_hand():
    target = torch.zeros(1, 4, 3, dtype=torch.float64)
    target[0, :, 0] = torch.tensor([0.0, 1.0, 2.0, 3.0])
    pred = target.clone()
    pred[0, 3, 1] = 0.5  # one point 0.5 away from its counterpart, 0.5 from nearest target
    # threshold 0.1: precision 3/4, recall 3/4 -> F = 0.75
    assert f_score(pred, target, 0.1, align=False).item() == pytest.approx(0.75)
    assert f_score(pred, target, 0.6, align=False).item() == pytest.approx(1.0)
    far = target + 10.0
    assert f_score(far, target, 0.1, align=False).item() == 0.0
    assert f_score(target, target, 1e-6).item() == pytest.approx(1.0)


def test_f_score_against_numpy_bruteforce():
    rng = np.random.default_rng(4)
    p, t = rng.random((2, 40, 3)), rng.random((2, 50, 3))
    d = np.linalg.norm(p[:, :, None] - t[:, None], axis=-1)
    # no distance within rounding of the threshold: the counts cannot depend on the CPU
    assert np.abs(d - 0.1).min() > 1e-9
    prec, rec = (d.min(2) < 0.1).mean(1), (d.min(1) < 0.1).mean(1)
    ref = 2 * prec * rec / (prec + rec)
    ours = f_score(torch.from_numpy(p), torch.from_numpy(t), 0.1, align=False)
    np.testing.assert_allclose(ours.numpy(), ref)


def test_pck_and_auc():
    target = torch.zeros(1, 5, 3, dtype=torch.float64)
    pred = target.clone()
    pred[0, 1:, 0] = torch.tensor([0.01, 0.02, 0.03, 0.04])
    assert pck(pred, target, 0.025).item() == pytest.approx(3 / 5)
    # PCK curve over [0, 0.04] in 0.01 steps: 1/5, 2/5, 3/5, 4/5, 1 -> trapezoids / 0.04
    th = [0.0, 0.01, 0.02, 0.03, 0.04]
    curve = np.array([1, 2, 3, 4, 5]) / 5
    assert pck_auc(pred, target, th).item() == pytest.approx(np.trapezoid(curve, th) / 0.04)
    with pytest.raises(ValueError, match="increasing"):
        pck_auc(pred, target, [0.02, 0.01])


def test_bad_inputs():
    good = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match="differ"):
        mpjpe(good, torch.zeros(2, 4, 3))
    with pytest.raises(ValueError, match="NaN"):
        mpjpe(torch.full((2, 5, 3), float("nan")), good)
    with pytest.raises(TypeError, match="floating"):
        mpjpe(good.long(), good.long())
    with pytest.raises(ValueError, match="root index"):
        mpjpe(good, good, root=9)
    with pytest.raises(ValueError, match="threshold"):
        f_score(good, good, 0.0)


def test_mesh_errors_hand_worked():
    from meshgraph.metrics import mesh_errors

    g = torch.Generator().manual_seed(0)
    verts = torch.randn(2, 30, 3, generator=g, dtype=torch.float64)
    joints = torch.randn(2, 5, 3, generator=g, dtype=torch.float64)
    # a translated copy: every root-aligned and aligned error is zero
    shifted = mesh_errors(verts + 0.3, joints + 0.3, verts, joints)
    assert all(v == pytest.approx(0.0, abs=1e-9) for v in shifted.values())
    # doubled about the root joint: joint errors are |j - root| (metres -> mm), PA undoes it
    root = joints[:, :1]
    big_v, big_j = root + 2 * (verts - root), root + 2 * (joints - root)
    out = mesh_errors(big_v, big_j, verts, joints, root=0)
    expected_j = 1000 * (joints - root).norm(dim=-1).mean()
    expected_v = 1000 * (verts - root).norm(dim=-1).mean()
    assert out["mpjpe"] == pytest.approx(float(expected_j))
    assert out["mpvpe"] == pytest.approx(float(expected_v))
    assert out["pa_mpjpe"] == pytest.approx(0.0, abs=1e-6)
    assert out["pa_mpvpe"] == pytest.approx(0.0, abs=1e-6)
    # unbatched input is one sample
    one = mesh_errors(big_v[0], big_j[0], verts[0], joints[0])
    assert one["mpjpe"] == pytest.approx(float(1000 * (joints[0] - root[0]).norm(dim=-1).mean()))
    with pytest.raises(ValueError, match="out of range"):
        mesh_errors(verts, joints, verts, joints, root=5)
    with pytest.raises(ValueError, match="2 meshes but 1 joint sets"):
        mesh_errors(verts, joints[:1], verts, joints[:1])


def test_n_mpvpe_against_float64_numpy_and_by_hand():
    rng = np.random.default_rng(5)
    pred, target = rng.normal(size=(4, 60, 3)), rng.normal(size=(4, 60, 3))
    rp, rt = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    got = n_mpvpe(*(torch.from_numpy(a) for a in (pred, target, rp, rt))).numpy()
    for b in range(4):  # a naive float64 loop: root-relative, least-squares scale, mean distance
        p, t = pred[b] - rp[b], target[b] - rt[b]
        s_ls = sum(p[i] @ t[i] for i in range(60)) / sum(p[i] @ p[i] for i in range(60))
        ref = np.mean([np.linalg.norm(s_ls * p[i] - t[i]) for i in range(60)])
        assert got[b] == pytest.approx(ref, rel=1e-12)
    # by hand: the right mesh at a third of the size, moved, is no error; plain MPVPE sees it
    t = torch.tensor([[[0.0, 0, 0], [0, 3, 0], [3, 0, 0], [0, 0, 3]]])
    root = torch.zeros(1, 3)
    small = t / 3 + torch.tensor([5.0, 0, 0])
    assert n_mpvpe(small, t, root + torch.tensor([5.0, 0, 0]), root).item() == pytest.approx(0)
    assert mpvpe(small, t, root + torch.tensor([5.0, 0, 0]), root).item() > 1.0
    with pytest.raises(ValueError, match=r"pred root must have shape \(1, 3\)"):
        n_mpvpe(t, t, torch.zeros(3), root)


def test_n_mpjpe_against_a_scale_search_and_by_hand():
    rng = np.random.default_rng(3)
    pred, target = rng.normal(size=(5, 17, 3)), rng.normal(size=(5, 17, 3))
    got = n_mpjpe(torch.from_numpy(pred), torch.from_numpy(target), root=2).numpy()
    # float64 reference: the best of a fine scale grid, refined by a golden-section search
    for b in range(5):
        p, t = pred[b] - pred[b, 2], target[b] - target[b, 2]

        def err(s, p=p, t=t):
            return np.linalg.norm(s * p - t, axis=1).mean()

        grid = np.linspace(-3, 3, 6001)
        best = grid[np.argmin([err(s) for s in grid])]
        lo, hi = best - 1e-3, best + 1e-3
        for _ in range(60):
            m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
            lo, hi = (lo, m2) if err(m1) < err(m2) else (m1, hi)
        # least squares minimises the squared error, the metric is the mean distance: the
        # least-squares scale is near (not at) the metric's minimum, and never below it
        assert got[b] >= err(lo) - 1e-12
        s_ls = (p * t).sum() / (p * p).sum()
        assert got[b] == pytest.approx(err(s_ls), rel=1e-12)
    # by hand: a right pose at twice the size, and one joint off by 3-4-5 after scaling
    t = torch.tensor([[[1.0, 1, 1], [1, 3, 1], [3, 1, 1]]])
    assert n_mpjpe(2 * (t - 1) + 7, t).item() == pytest.approx(0.0, abs=1e-12)
    assert mpjpe(2 * (t - 1) + 7, t).item() > 1.0  # plain MPJPE sees the size
    # a rotation is not forgiven, unlike in PA-MPJPE: a pose turned 90 degrees about z
    r = torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    turned = (t - 1) @ r.T
    assert n_mpjpe(turned, t).item() > 0.5
    assert pa_mpjpe(turned, t).item() == pytest.approx(0.0, abs=1e-6)
    # scale invariance of the prediction, and an all-root prediction left as it is
    p = torch.from_numpy(pred)
    torch.testing.assert_close(n_mpjpe(3.7 * p, torch.from_numpy(target)),
                               n_mpjpe(p, torch.from_numpy(target)))  # fmt: skip
    flat = torch.zeros(1, 3, 3)
    assert n_mpjpe(flat, t).item() == pytest.approx(mpjpe(flat, t).item())
