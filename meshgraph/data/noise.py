"""Detector-like noise on ground-truth 2D keypoints.

Two models, both driven by a :class:`torch.Generator` (a fixed seed gives the same noise):

* :func:`gaussian_noise`: independent per-joint Gaussian offsets, each joint perturbed with a
  probability; standard deviations are given in pixels of a 256-pixel person box and scaled
  to the actual box (Pose2Mesh's Human3.6M model: 0.6 to 3.4 px per joint).
* :func:`posefix_noise`: PoseFix-style errors for COCO joints. With ``d(c)`` the distance at
  which a keypoint's OKS equals ``c`` (``d(c) = k * s * sqrt(-2 ln c)``, ``k`` the COCO sigma
  of the joint, ``s^2`` the person's area), each joint is independently either *good*
  (offset below ``d(0.85)``), *jittered* (``d(0.85)`` to ``d(0.5)``), *missed* (``d(0.5)`` to
  ``d(0.1)``) or *inverted* (moved near its left/right counterpart). The probabilities per
  joint group, for people with more than 10 visible joints, are jitter 0.10 / 0.15 / 0.20,
  miss 0.02 / 0.05 / 0.10, inversion 0.01 / 0.03 / 0.06 for (nose, knees, ankles) /
  (eyes, ears, shoulders, elbows, wrists) / (hips). The added pelvis and neck of COCO-19 are
  recomputed from the noisy hips and shoulders.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from meshgraph.bodies.joint_sets import COCO, JointSet, get_joint_set
from meshgraph.data.random import CounterRandom, normal, uniform

__all__ = [
    "COCO_SIGMAS",
    "H36M_DETECTOR_STD",
    "draw_rows",
    "gaussian_noise",
    "oks_distance",
    "posefix_noise",
]

#: COCO keypoint OKS sigmas (the 17 COCO keypoints, in COCO order).
COCO_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip
#: Per-joint standard deviations (pixels in a 256-pixel box) of a 2D detector on Human3.6M's
#: 17 joints, in the range Pose2Mesh used (0.6 to 3.4 px): extremities err most.
H36M_DETECTOR_STD: tuple[float, ...] = (
    0.6, 1.4, 2.2, 3.0, 1.4, 2.2, 3.0, 1.2, 1.0, 1.2, 1.6, 1.6, 2.4, 3.4, 1.6, 2.4, 3.4,
)  # fmt: skip

# group per COCO-17 joint: 0 = nose, knees, ankles; 1 = eyes, ears, upper body; 2 = hips
_GROUP = (0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 0, 0, 0, 0)
_JITTER = (0.10, 0.15, 0.20)
_MISS = (0.02, 0.05, 0.10)
_INVERSION = (0.01, 0.03, 0.06)


#: A generator, or one generator per row of the batch (each row then draws its numbers from
#: its own generator, exactly as a one-row call with that generator would), or a
#: :class:`~meshgraph.data.random.CounterRandom` (one keyed stream per row, on any device).
Generators = torch.Generator | Sequence[torch.Generator] | CounterRandom


def draw_rows(
    generator: Generators, b: int, draws: Callable[[int, torch.Generator], list[Tensor]]
) -> list[Tensor]:
    """Random tensors for a batch of ``b`` rows from one generator or one per row.

    ``draws(n, g)`` returns tensors whose first dimension is ``n``, drawn from ``g`` in a fixed
    order. With a sequence of generators each row ``i`` gets ``draws(1, generator[i])``, so a
    batched call gives the same numbers as ``b`` one-row calls (per-sample reproducibility)
    while the arithmetic that follows runs once on the whole batch.
    """
    if isinstance(generator, torch.Generator | CounterRandom):
        return draws(b, generator)
    gens = list(generator)
    if len(gens) != b:
        raise ValueError(f"got {len(gens)} generators for a batch of {b}")
    rows = [draws(1, g) for g in gens]
    return [torch.cat(parts) for parts in zip(*rows, strict=True)]


def _box_size(keypoints: Tensor) -> tuple[Tensor, Tensor]:
    lo, hi = keypoints.amin(1), keypoints.amax(1)
    size = (hi - lo).clamp_min(1.0)
    return size[:, 0], size[:, 1]


def gaussian_noise(
    keypoints: Tensor,
    generator: Generators,
    std: Tensor | tuple[float, ...] | float = 2.0,
    probability: float = 1.0,
    reference: float = 256.0,
) -> Tensor:
    """Add per-joint Gaussian offsets.

    Args:
        keypoints: ``(B, J, 2)`` pixels.
        generator: Random source, or one per sample (see :func:`draw_rows`).
        std: Standard deviation per joint (``(J,)``) or for all, in pixels of a ``reference``
            -pixel box; scaled by ``max(box width, box height) / reference`` per sample.
        probability: Chance that a joint is perturbed at all.
        reference: Box size the ``std`` refers to.

    Returns:
        Noisy keypoints ``(B, J, 2)``.
    """
    b, j, _ = keypoints.shape
    dev = keypoints.device
    std_t = torch.as_tensor(std, dtype=keypoints.dtype, device=dev).reshape(-1)
    if std_t.numel() not in (1, j):
        raise ValueError(f"std must be a scalar or have {j} entries, got {std_t.numel()}")
    w, h = _box_size(keypoints)
    scale = (torch.maximum(w, h) / reference).view(b, 1, 1)
    dtype = keypoints.dtype
    gauss, unif = draw_rows(generator, b, lambda n, g: [
        normal(g, n, j, 2, dtype=dtype), uniform(g, n, j, 1, dtype=dtype),
    ])  # fmt: skip
    noise = gauss.to(dev) * std_t.view(1, -1, 1)
    hit = unif.to(dev) < probability
    return keypoints + noise * scale * hit


def oks_distance(area: Tensor, sigma: Tensor, oks: float) -> Tensor:
    """The distance at which a keypoint's OKS equals ``oks``: ``sigma * s * sqrt(-2 ln oks)``.

    Follows COCO's definition ``OKS = exp(-d^2 / (2 s^2 (2 sigma)^2))`` with ``s^2`` the area.
    """
    if not 0 < oks < 1:
        raise ValueError(f"oks must lie in (0, 1), got {oks}")
    return 2.0 * sigma * area.sqrt() * math.sqrt(-2.0 * math.log(oks))


def _random_offset(u_angle: Tensor, u_length: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Offsets with uniformly random direction and a length uniform in ``[lo, hi)``."""
    angle = u_angle * (2 * math.pi)
    length = lo + (hi - lo) * u_length
    return torch.stack([torch.cos(angle), torch.sin(angle)], dim=-1) * length.unsqueeze(-1)


def posefix_noise(
    keypoints: Tensor,
    generator: Generators,
    joint_set: str | JointSet = COCO,
    area: Tensor | None = None,
    scale: float = 1.0,
) -> Tensor:
    """PoseFix-style jitter / miss / inversion errors on COCO keypoints (see the module doc).

    Args:
        keypoints: ``(B, 19, 2)`` (COCO-19) or ``(B, 17, 2)`` pixels.
        generator: Random source, or one per sample (see :func:`draw_rows`).
        joint_set: ``"coco"``.
        area: ``(B,)`` person areas in pixels^2 (default: 0.53 x the keypoint box area, the
            mean ratio of segmentation to box area of COCO people).
        scale: Multiplies every error probability (0 disables the noise).

    Returns:
        Noisy keypoints, same shape.
    """
    js = get_joint_set(joint_set)
    if js.name != "coco":
        raise ValueError(f"posefix_noise models COCO keypoints, got joint set {js.name!r}")
    b, j, _ = keypoints.shape
    if j not in (17, 19):
        raise ValueError(f"expected 17 or 19 COCO keypoints, got {j}")
    dtype, dev = keypoints.dtype, keypoints.device
    kp = keypoints.detach().clone()
    if area is None:
        w, h = _box_size(kp[:, :17])
        area = 0.53 * w * h
    area = area.detach().to(device=dev, dtype=dtype).view(b, 1)
    sigma = torch.tensor(COCO_SIGMAS, dtype=dtype, device=dev).view(1, 17)
    d85, d50, d10 = (oks_distance(area, sigma, c) for c in (0.85, 0.5, 0.1))
    group = torch.tensor(_GROUP, device=dev)
    p_jit = torch.tensor(_JITTER, dtype=dtype, device=dev)[group] * scale
    p_miss = torch.tensor(_MISS, dtype=dtype, device=dev)[group] * scale
    p_inv = torch.tensor(_INVERSION, dtype=dtype, device=dev)[group] * scale
    # one uniform per joint picks its error kind, then (direction, length) for 4 offsets
    u, *r = (t.to(dev) for t in draw_rows(generator, b, lambda n, g: [
        uniform(g, n, 17, dtype=dtype) for _ in range(9)
    ]))  # fmt: skip
    inv = u < p_inv
    miss = (u >= p_inv) & (u < p_inv + p_miss)
    jit = (u >= p_inv + p_miss) & (u < p_inv + p_miss + p_jit)
    zero = torch.zeros_like(d85)
    good_off = _random_offset(r[0], r[1], zero, d85)
    jit_off = _random_offset(r[2], r[3], d85, d50)
    miss_off = _random_offset(r[4], r[5], d50, d10)
    inv_off = _random_offset(r[6], r[7], zero, d85)
    flip = torch.as_tensor(js.flip_permutation()[:17], device=dev)
    counterpart = kp[:, :17][:, flip]
    # joints without a counterpart (the nose) are missed instead of inverted
    has_pair = flip != torch.arange(17, device=dev)
    miss = miss | (inv & ~has_pair)
    inv = inv & has_pair
    out17 = kp[:, :17] + good_off
    out17 = torch.where(jit.unsqueeze(-1), kp[:, :17] + jit_off, out17)
    out17 = torch.where(miss.unsqueeze(-1), kp[:, :17] + miss_off, out17)
    out17 = torch.where(inv.unsqueeze(-1), counterpart + inv_off, out17)
    if j == 19:
        pelvis = 0.5 * (out17[:, 11] + out17[:, 12])
        neck = 0.5 * (out17[:, 5] + out17[:, 6])
        out = torch.cat([out17, pelvis[:, None], neck[:, None]], dim=1)
    else:
        out = out17
    return out
