"""Evaluation metrics for 3D joints and meshes, batched.

Units: every metric returns the units of its inputs (meshgraph's data are in metres; multiply
by 1000 for the millimetres papers report). Thresholds are in the same units.

Alignment conventions:

* :func:`mpjpe` and :func:`mpvpe` subtract a root before comparing: ``root`` is a joint index
  (for MPJPE; the pelvis for bodies, the wrist for hands) or explicit ``(B, 3)`` root positions
  (for MPVPE, usually the root joint regressed from each mesh). ``root=None`` compares as is.
* :func:`n_mpjpe` also scales each root-relative prediction to its target (least squares):
  what is left when the body's size, which one view cannot tell, is given.
* The ``pa_`` variants first align each predicted sample to its target with a similarity
  Procrustes (scale, rotation, translation; :func:`procrustes_align`).
* :func:`f_score` compares point sets (nearest neighbours, no correspondence), as FreiHAND
  does after Procrustes alignment (``align=True``).

All functions return one value per sample, ``(B,)``; take ``.mean()`` for the dataset figure.
Inputs of different floating dtypes are compared in their common dtype (float32 with float64:
float64), by every metric alike.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "ProcrustesResult",
    "f_score",
    "mesh_errors",
    "mpjpe",
    "mpvpe",
    "n_mpjpe",
    "n_mpvpe",
    "pa_mpjpe",
    "pa_mpvpe",
    "pck",
    "pck_auc",
    "procrustes_align",
]


class ProcrustesResult(NamedTuple):
    """Result of :func:`procrustes_align`: ``aligned = scale * X @ rotation.T + translation``."""

    aligned: Tensor
    scale: Tensor
    rotation: Tensor
    translation: Tensor


def _check_points(pred: Tensor, target: Tensor, same_n: bool = True) -> tuple[Tensor, Tensor]:
    """Check both point sets; return them in their common dtype (float32 + float64 -> float64)."""
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor")
        if t.dim() != 3 or t.shape[-1] != 3:
            raise ValueError(f"{name} must have shape (B, N, 3), got {tuple(t.shape)}")
    if pred.shape[0] != target.shape[0] or (same_n and pred.shape != target.shape):
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(f"pred is on {pred.device} but target on {target.device}")
    for name, t in (("pred", pred), ("target", target)):
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} contains NaN or inf")
    dtype = torch.promote_types(pred.dtype, target.dtype)
    return pred.to(dtype), target.to(dtype)


def procrustes_align(pred: Tensor, target: Tensor, eps: float = 1e-12) -> ProcrustesResult:
    """Similarity Procrustes: the scale, rotation and translation best mapping pred to target.

    Minimises ``sum_i ||s R p_i + t - q_i||^2`` per sample (Umeyama 1991). The rotation is a
    proper rotation (``det R = +1``): a reflection is never used, even where it would fit
    better. Degenerate predictions (all points equal, zero variance) get ``s = 0``,
    ``R = I``: the aligned points collapse onto the target centroid.

    Args:
        pred: ``(B, N, 3)``.
        target: ``(B, N, 3)``.
        eps: Variance below which a prediction counts as degenerate.

    Returns:
        :class:`ProcrustesResult` with ``aligned`` ``(B, N, 3)``, ``scale`` ``(B,)``,
        ``rotation`` ``(B, 3, 3)``, ``translation`` ``(B, 3)``.
    """
    pred, target = _check_points(pred, target)
    mu_p = pred.mean(dim=1, keepdim=True)
    mu_q = target.mean(dim=1, keepdim=True)
    p = pred - mu_p
    q = target - mu_q
    var_p = (p * p).sum(dim=(1, 2))
    cov = q.transpose(1, 2) @ p  # (B, 3, 3): sum_i q_i p_i^T
    u, sing, vh = torch.linalg.svd(cov)
    d = torch.sign(torch.linalg.det(u @ vh))
    d = torch.where(d == 0, torch.ones_like(d), d)
    sign = torch.ones_like(sing)
    sign[:, 2] = d
    rot = u @ torch.diag_embed(sign) @ vh
    degenerate = var_p <= eps
    scale = torch.where(
        degenerate, torch.zeros_like(var_p), (sing * sign).sum(1) / var_p.clamp_min(eps)
    )
    eye = torch.eye(3, dtype=pred.dtype, device=pred.device).expand_as(rot)
    rot = torch.where(degenerate.view(-1, 1, 1), eye, rot)
    trans = (mu_q - scale.view(-1, 1, 1) * (mu_p @ rot.transpose(1, 2))).squeeze(1)
    aligned = scale.view(-1, 1, 1) * (pred @ rot.transpose(1, 2)) + trans.unsqueeze(1)
    return ProcrustesResult(aligned, scale, rot, trans)


def _root_align(pred: Tensor, target: Tensor, root: int | tuple[Tensor, Tensor] | None):
    if root is None:
        return pred, target
    if isinstance(root, int):
        if not -pred.shape[1] <= root < pred.shape[1]:
            raise ValueError(f"root index {root} out of range for {pred.shape[1]} points")
        root %= pred.shape[1]  # a negative index counts from the end
        return pred - pred[:, root : root + 1], target - target[:, root : root + 1]
    root_p, root_t = root
    for name, r in (("pred root", root_p), ("target root", root_t)):
        if not isinstance(r, Tensor) or not r.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor")
        if r.shape != (pred.shape[0], 3):
            raise ValueError(f"{name} must have shape ({pred.shape[0]}, 3), got {tuple(r.shape)}")
        if not bool(torch.isfinite(r).all()):
            raise ValueError(f"{name} contains NaN or inf")
    root_p, root_t = root_p.to(pred), root_t.to(pred)
    return pred - root_p.unsqueeze(1), target - root_t.unsqueeze(1)


def mpjpe(pred: Tensor, target: Tensor, root: int | None = 0) -> Tensor:
    """Mean per-joint position error after root alignment.

    Args:
        pred: ``(B, J, 3)`` joints.
        target: ``(B, J, 3)`` joints.
        root: Index of the root joint subtracted from both (``None``: no alignment).

    Returns:
        ``(B,)`` mean Euclidean distance, in the input units.

    Example:
        >>> t = torch.zeros(1, 2, 3)
        >>> p = t.clone(); p[0, 1, 0] = 3.0; p[0, 1, 1] = 4.0
        >>> mpjpe(p, t)
        tensor([2.5000])
    """
    pred, target = _check_points(pred, target)
    p, t = _root_align(pred, target, root)
    return (p - t).norm(dim=-1).mean(dim=1)


def n_mpjpe(pred: Tensor, target: Tensor, root: int = 0) -> Tensor:
    """MPJPE after root alignment and the least-squares scale of each sample, ``(B,)``.

    The normalised MPJPE of Rhodin et al. (CVPR 2018): each root-relative prediction ``p`` is
    multiplied by ``s = <p, t> / <p, p>`` (the scale that minimises ``|s p - t|^2`` against
    the root-relative target ``t``) before :func:`mpjpe`. It removes the error of the body's
    overall size, which a single view cannot determine, and keeps the rotation, unlike
    :func:`pa_mpjpe`. A prediction that is all at the root is left as it is.

    Args:
        pred: ``(B, J, 3)`` joints.
        target: ``(B, J, 3)`` joints.
        root: Index of the root joint.

    Example:
        >>> t = torch.tensor([[[0.0, 0, 0], [0, 2, 0], [2, 0, 0]]])
        >>> n_mpjpe(0.5 * t, t)  # the right pose at half the size
        tensor([0.])
    """
    pred, target = _check_points(pred, target)
    return _scaled_error(*_root_align(pred, target, root))


def _scaled_error(p: Tensor, t: Tensor) -> Tensor:
    """Mean distance after ``p`` takes its least-squares scale against ``t`` (all at 0: 1)."""
    norm = (p * p).sum(dim=(1, 2))
    scale = torch.where(norm > 0, (p * t).sum(dim=(1, 2)) / norm.clamp_min(1e-30), 1.0)
    return (scale[:, None, None] * p - t).norm(dim=-1).mean(dim=1)


def pa_mpjpe(pred: Tensor, target: Tensor) -> Tensor:
    """MPJPE after per-sample similarity Procrustes alignment, ``(B,)``."""
    aligned = procrustes_align(pred, target).aligned
    return (aligned - target.to(aligned.dtype)).norm(dim=-1).mean(dim=1)


def mpvpe(
    pred: Tensor,
    target: Tensor,
    pred_root: Tensor | None = None,
    target_root: Tensor | None = None,
) -> Tensor:
    """Mean per-vertex position error, ``(B,)``.

    Args:
        pred: ``(B, V, 3)`` vertices.
        target: ``(B, V, 3)`` vertices.
        pred_root: Optional ``(B, 3)`` root of each predicted mesh (e.g. its regressed pelvis).
        target_root: Optional ``(B, 3)`` root of each target mesh. Give both or neither.
    """
    pred, target = _check_points(pred, target)
    if (pred_root is None) != (target_root is None):
        raise ValueError("give both pred_root and target_root, or neither")
    root = None if pred_root is None else (pred_root, target_root)
    p, t = _root_align(pred, target, root)  # type: ignore[arg-type]
    return (p - t).norm(dim=-1).mean(dim=1)


def n_mpvpe(pred: Tensor, target: Tensor, pred_root: Tensor, target_root: Tensor) -> Tensor:
    """MPVPE after root alignment and the least-squares scale of each sample, ``(B,)``.

    :func:`n_mpjpe` for meshes: each mesh relative to its root (e.g. its regressed pelvis),
    ``p``, is multiplied by ``s = <p, t> / <p, p>`` against the target's ``t`` before
    :func:`mpvpe`. What remains of the vertex error once the body's overall size, which a
    single view cannot determine, is taken as known.

    Args:
        pred: ``(B, V, 3)`` vertices.
        target: ``(B, V, 3)`` vertices.
        pred_root: ``(B, 3)`` root of each predicted mesh.
        target_root: ``(B, 3)`` root of each target mesh.

    Example:
        >>> t = torch.tensor([[[0.0, 0, 0], [0, 2, 0], [2, 0, 0]]])
        >>> root = torch.zeros(1, 3)
        >>> n_mpvpe(0.5 * t + 1, t, root + 1, root)  # half the size, elsewhere
        tensor([0.])
    """
    pred, target = _check_points(pred, target)
    return _scaled_error(*_root_align(pred, target, (pred_root, target_root)))


def pa_mpvpe(pred: Tensor, target: Tensor) -> Tensor:
    """Mean per-vertex error after similarity Procrustes alignment, ``(B,)``."""
    return pa_mpjpe(pred, target)


def _nearest_distance(a: Tensor, b: Tensor, chunk: int = 4096) -> Tensor:
    """For every point of ``a`` ``(B, N, 3)``, the distance to its nearest point of ``b``."""
    out = []
    for start in range(0, a.shape[1], chunk):
        d = torch.cdist(a[:, start : start + chunk], b)
        out.append(d.min(dim=-1).values)
    return torch.cat(out, dim=1)


def f_score(pred: Tensor, target: Tensor, threshold: float, align: bool = True) -> Tensor:
    """F-score of two point sets at a distance threshold (FreiHAND's F@5 mm, F@15 mm).

    Precision: fraction of predicted points whose nearest target point is closer than
    ``threshold``; recall: the same from the target side; F is their harmonic mean (0 where
    both are 0).

    Args:
        pred: ``(B, N, 3)`` predicted points (vertices).
        target: ``(B, M, 3)`` target points.
        threshold: Distance threshold in the input units (0.005 for 5 mm in metres).
        align: Procrustes-align ``pred`` to ``target`` first (needs ``N == M``), as FreiHAND.

    Returns:
        ``(B,)`` F-scores in ``[0, 1]``.
    """
    pred, target = _check_points(pred, target, same_n=align)
    if not threshold > 0:  # also refuses NaN
        raise ValueError(f"threshold must be positive, got {threshold}")
    if align:
        pred = procrustes_align(pred, target).aligned
    precision = (_nearest_distance(pred, target) < threshold).to(pred.dtype).mean(dim=1)
    recall = (_nearest_distance(target, pred) < threshold).to(pred.dtype).mean(dim=1)
    denom = precision + recall
    return torch.where(denom > 0, 2 * precision * recall / denom.clamp_min(1e-12), 0.0 * denom)


def pck(pred: Tensor, target: Tensor, threshold: float, root: int | None = 0) -> Tensor:
    """Percentage (fraction) of correct keypoints: joints within ``threshold``, ``(B,)``.

    Args:
        pred: ``(B, J, 3)``.
        target: ``(B, J, 3)``.
        threshold: Distance threshold in the input units.
        root: Root joint for alignment (``None``: none).
    """
    pred, target = _check_points(pred, target)
    if not threshold >= 0:  # also refuses NaN
        raise ValueError(f"threshold must be non-negative, got {threshold}")
    p, t = _root_align(pred, target, root)
    return ((p - t).norm(dim=-1) <= threshold).to(pred.dtype).mean(dim=1)


def pck_auc(
    pred: Tensor, target: Tensor, thresholds: Tensor | list[float], root: int | None = 0
) -> Tensor:
    """Area under the PCK curve over ``thresholds``, normalised to ``[0, 1]`` (trapezoids).

    Args:
        pred: ``(B, J, 3)``.
        target: ``(B, J, 3)``.
        thresholds: Increasing thresholds (e.g. 0 to 0.05 m in 0.005 steps), at least 2.
        root: Root joint for alignment.

    Returns:
        ``(B,)``.
    """
    th = torch.as_tensor(thresholds, dtype=pred.dtype, device=pred.device)
    if th.dim() != 1 or th.numel() < 2 or bool((th[1:] <= th[:-1]).any()):
        raise ValueError("thresholds must be a 1-D increasing sequence of at least 2 values")
    curve = torch.stack([pck(pred, target, float(t), root) for t in th], dim=1)
    area = torch.trapezoid(curve, th, dim=1)
    return area / (th[-1] - th[0])


def mesh_errors(
    pred_vertices: Tensor,
    pred_joints: Tensor,
    target_vertices: Tensor,
    target_joints: Tensor,
    root: int = 0,
) -> dict[str, float]:
    """The usual mesh-recovery table in millimetres, averaged over the batch.

    MPJPE (root joint ``root`` subtracted), PA-MPJPE, MPVPE (each mesh's root joint
    subtracted) and PA-MPVPE, as :func:`meshgraph.training.evaluate.evaluate` reports them,
    for inputs in metres.

    Args:
        pred_vertices: ``(B, V, 3)`` or ``(V, 3)`` predicted vertices, metres.
        pred_joints: ``(B, J, 3)`` or ``(J, 3)`` joints regressed from the predicted mesh.
        target_vertices: Ground-truth vertices, the same shape.
        target_joints: Ground-truth joints, the same shape.
        root: Index of the root joint (the pelvis of Human3.6M-17, the wrist of Hand-21).
    """
    pv, pj, tv, tj = (x if x.dim() == 3 else x.unsqueeze(0) for x in
                      (pred_vertices, pred_joints, target_vertices, target_joints))  # fmt: skip
    pv, tv = _check_points(pv, tv)
    pj, tj = _check_points(pj, tj)
    if pv.shape[0] != pj.shape[0]:
        raise ValueError(f"{pv.shape[0]} meshes but {pj.shape[0]} joint sets")
    if not -pj.shape[1] <= root < pj.shape[1]:
        raise ValueError(f"root {root} is out of range for {pj.shape[1]} joints")
    return {
        "mpjpe": 1000 * float(mpjpe(pj, tj, root=root).mean()),
        "pa_mpjpe": 1000 * float(pa_mpjpe(pj, tj).mean()),
        "mpvpe": 1000 * float(mpvpe(pv, tv, pj[:, root], tj[:, root]).mean()),
        "pa_mpvpe": 1000 * float(pa_mpvpe(pv, tv).mean()),
    }
