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
  recomputed from the noisy hips and shoulders. Body-29's feet and hand points err like the
  ankle or wrist they hang from (COCO has no sigma for them).

On top of either, :func:`detector_noise` adds what real detectors do beyond jitter
(:class:`DetectorNoise`): joints that go missing (alone, or a whole limb), left and right
labels swapped (one limb, or the whole person), and per-joint offsets of a few percent of the
box (a detector's hips and shoulders are not the body model's joints). It returns a
visibility mask with the keypoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

import torch
from torch import Tensor

from meshgraph.bodies.joint_sets import COCO, JointSet, get_joint_set
from meshgraph.data.random import CounterRandom, normal, uniform

__all__ = [
    "COCO_SIGMAS",
    "DERIVED_JOINTS",
    "H36M_DETECTOR_STD",
    "DetectorNoise",
    "detector_noise",
    "draw_rows",
    "gaussian_noise",
    "oks_distance",
    "person_area",
    "posefix_joints",
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


def posefix_joints(joint_set: str | JointSet, num_joints: int) -> tuple[list[int], list[int]]:
    """The joints :func:`posefix_noise` moves, and the COCO joint whose OKS sigma each takes.

    The joints a detector reports: all but COCO-19's derived pelvis and neck. Body-29's extra
    joints take the OKS sigma and error group of the COCO joint they hang from (heel and big
    toe: the ankle; knuckles and thumb: the wrist): COCO defines no sigma for them, and a
    detector's error on a foot or hand point follows its error on the limb's end.

    Args:
        joint_set: ``"coco"`` or ``"body29"``.
        num_joints: The keypoints' count (17 or 19 for COCO, 29 for Body-29).

    Returns:
        ``(own, like)``: the moved joints' indices, and for each the index of the COCO-17
        joint whose sigma (:data:`COCO_SIGMAS`) and error group it takes.

    Example:
        >>> own, like = posefix_joints("body29", 29)
        >>> own[17:19], like[17:19]  # the heels, like the ankles
        ([19, 20], [15, 16])
    """
    js = get_joint_set(joint_set)
    own = list(range(17)) + (list(range(19, 29)) if num_joints == 29 else [])
    like = list(range(17)) + (js.anchors(19) if num_joints == 29 else [])
    return own, like


def person_area(keypoints: Tensor) -> Tensor:
    """``(B,)`` a person's area in pixels^2 from its COCO keypoints ``(B, J >= 17, 2)``.

    0.53 times the area of the first 17 keypoints' box (the mean ratio of segmentation to box
    area of COCO people): the ``s^2`` of COCO's OKS when no segmentation is known, as
    :func:`posefix_noise` uses it.
    """
    w, h = _box_size(keypoints[:, :17])
    return 0.53 * w * h


def posefix_noise(
    keypoints: Tensor,
    generator: Generators,
    joint_set: str | JointSet = COCO,
    area: Tensor | None = None,
    scale: float = 1.0,
) -> Tensor:
    """PoseFix-style jitter / miss / inversion errors on COCO keypoints (see the module doc).

    Args:
        keypoints: ``(B, 19, 2)`` (COCO-19), ``(B, 17, 2)`` or ``(B, 29, 2)`` (Body-29)
            pixels.
        generator: Random source, or one per sample (see :func:`draw_rows`).
        joint_set: ``"coco"`` or ``"body29"`` (whose ten extra joints err like the ankle or
            wrist they hang from).
        area: ``(B,)`` person areas in pixels^2 (default: 0.53 x the keypoint box area, the
            mean ratio of segmentation to box area of COCO people).
        scale: Multiplies every error probability (0 disables the noise).

    Returns:
        Noisy keypoints, same shape.
    """
    js = get_joint_set(joint_set)
    if js.name not in ("coco", "body29"):
        raise ValueError(
            f"posefix_noise models COCO and Body-29 keypoints, got joint set {js.name!r}"
        )
    b, j, _ = keypoints.shape
    allowed = (17, 19) if js.name == "coco" else (29,)
    if j not in allowed:
        raise ValueError(f"expected {' or '.join(map(str, allowed))} {js.name} keypoints, got {j}")
    own, like = posefix_joints(js, j)
    n = len(own)
    dtype, dev = keypoints.dtype, keypoints.device
    kp = keypoints.detach().clone()
    if area is None:
        area = person_area(kp)
    area = area.detach().to(device=dev, dtype=dtype).view(b, 1)
    sigma = torch.tensor([COCO_SIGMAS[i] for i in like], dtype=dtype, device=dev).view(1, n)
    d85, d50, d10 = (oks_distance(area, sigma, c) for c in (0.85, 0.5, 0.1))
    group = torch.tensor([_GROUP[i] for i in like], device=dev)
    p_jit = torch.tensor(_JITTER, dtype=dtype, device=dev)[group] * scale
    p_miss = torch.tensor(_MISS, dtype=dtype, device=dev)[group] * scale
    p_inv = torch.tensor(_INVERSION, dtype=dtype, device=dev)[group] * scale
    # one uniform per joint picks its error kind, then (direction, length) for 4 offsets
    u, *r = (t.to(dev) for t in draw_rows(generator, b, lambda m, g: [
        uniform(g, m, n, dtype=dtype) for _ in range(9)
    ]))  # fmt: skip
    inv = u < p_inv
    miss = (u >= p_inv) & (u < p_inv + p_miss)
    jit = (u >= p_inv + p_miss) & (u < p_inv + p_miss + p_jit)
    zero = torch.zeros_like(d85)
    good_off = _random_offset(r[0], r[1], zero, d85)
    jit_off = _random_offset(r[2], r[3], d85, d50)
    miss_off = _random_offset(r[4], r[5], d50, d10)
    inv_off = _random_offset(r[6], r[7], zero, d85)
    own_t = torch.tensor(own, device=dev)
    flip = torch.as_tensor(js.flip_permutation(), device=dev)[own_t]
    counterpart = kp[:, flip]
    points = kp[:, own_t]
    # joints without a counterpart (the nose) are missed instead of inverted
    has_pair = flip != own_t
    miss = miss | (inv & ~has_pair)
    inv = inv & has_pair
    moved = points + good_off
    moved = torch.where(jit.unsqueeze(-1), points + jit_off, moved)
    moved = torch.where(miss.unsqueeze(-1), points + miss_off, moved)
    moved = torch.where(inv.unsqueeze(-1), counterpart + inv_off, moved)
    if j == 17:
        return moved
    out = kp.clone()
    out[:, own_t] = moved
    for joint, (a, c) in DERIVED_JOINTS[js.name]:  # pelvis and neck from the noisy joints
        out[:, joint] = 0.5 * (out[:, a] + out[:, c])
    return out


#: Joints that detectors do not report but adapters compute as the midpoint of two others
#: (COCO-19's pelvis and neck), by joint set: ``(joint, (a, b))`` by index. Such a joint is
#: visible only when both of its sources are, and it follows their offsets.
DERIVED_JOINTS: dict[str, tuple[tuple[int, tuple[int, int]], ...]] = {
    "coco": ((17, (11, 12)), (18, (5, 6))),
}
DERIVED_JOINTS["body29"] = DERIVED_JOINTS["coco"]  # Body-29 starts with COCO-19

#: Per-joint multipliers of :attr:`DetectorNoise.offset`, by joint set and joint name: a
#: detector's hips are furthest from the body model's (mediapipe 0.10.21 on rendered Anny
#: bodies, as measured in issue 13: hips about 9 px on a 420 px box, 5.5 px on average).
#: Body-29's hand points scatter about twice as far as its other joints, its heels one and a
#: half times (the robust spread of mediapipe's points around Anny's, ``python -m
#: benchmarks.detector_offsets``: 1.8-2.6 % of the box for the knuckles and thumbs, 1.4-1.8 %
#: for the heels, 0.7-1.8 % for COCO's joints).
DETECTOR_OFFSET_SCALE: dict[str, dict[str, float]] = {
    "coco": {"left_hip": 2.0, "right_hip": 2.0, "left_shoulder": 1.5, "right_shoulder": 1.5},
    "h36m": {"L_Hip": 2.0, "R_Hip": 2.0, "L_Shoulder": 1.5, "R_Shoulder": 1.5},
}
DETECTOR_OFFSET_SCALE["body29"] = {
    **DETECTOR_OFFSET_SCALE["coco"],  # the same joints, by name
    **{
        f"{side}_{joint}": 2.0
        for side in ("left", "right")
        for joint in ("index", "pinky", "thumb")
    },
    "left_heel": 1.5,
    "right_heel": 1.5,
}


@dataclass(frozen=True)
class DetectorNoise:
    """Detector failures beyond jitter (see :func:`detector_noise`), as probabilities per sample.

    Attributes:
        drop: Chance that a joint is missing (not detected, or below the confidence threshold),
            each joint independently.
        drop_limb: Chance that a sample loses one limb: a random joint other than the root and
            every joint beyond it in the skeleton (an occluded arm, a leg out of the picture, a
            finger).
        swap_limb: Chance that the left and right labels of one limb are exchanged: a random
            left/right pair and every pair beyond it (the elbows and wrists with the
            shoulders).
        swap_all: Chance that every left/right pair is exchanged (a person taken as seen from
            behind).
        offset: Standard deviation of a per-joint offset, as a fraction of the keypoint box's
            larger side (scaled per joint by :data:`DETECTOR_OFFSET_SCALE`): detectors place
            hips and shoulders elsewhere than the body model's joint regressor.
        offset_spread: How much the offset's standard deviation varies from sample to sample,
            in [0, 1]: each sample's is ``offset`` times a factor drawn uniformly from
            ``[1 - offset_spread, 1 + offset_spread]`` (the mean stays ``offset``). 0: every
            sample alike. Real detectors err little on some images and much on others; a
            training set with a spread also holds nearly exact samples.
        min_visible: Fewer visible joints than this and the sample keeps all of its joints
            (``Pose2Mesh.predict`` needs 4).
    """

    drop: float = 0.05
    drop_limb: float = 0.15
    swap_limb: float = 0.03
    swap_all: float = 0.02
    offset: float = 0.01
    min_visible: int = 6
    offset_spread: float = 0.0

    def __post_init__(self) -> None:
        """Refuse probabilities outside [0, 1] and negative offsets (the message names them)."""
        for name in ("drop", "drop_limb", "swap_limb", "swap_all"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ValueError(f"DetectorNoise.{name} must be a probability, got {value!r}")
        if not (isinstance(self.offset, int | float) and 0.0 <= self.offset < 1.0):
            raise ValueError(f"DetectorNoise.offset must be in [0, 1), got {self.offset!r}")
        spread = self.offset_spread
        if not (isinstance(spread, int | float) and 0.0 <= spread <= 1.0):
            raise ValueError(f"DetectorNoise.offset_spread must be in [0, 1], got {spread!r}")
        if not isinstance(self.min_visible, int) or self.min_visible < 1:
            raise ValueError(
                f"DetectorNoise.min_visible must be a positive integer, got {self.min_visible!r}"
            )


def default_detector_noise(joint_set: str | JointSet, **changes: float | int) -> DetectorNoise:
    """The detector failures the held-out sets and ``meshgraph train --detector`` use.

    Bodies (``"coco"``, ``"h36m"``): the :class:`DetectorNoise` defaults. Hands: per-joint
    offsets of 4 % of the box instead of 1 % (hand detectors err far more: mediapipe's hand
    keypoints on rendered Anny hands were off by 9 % of the box on average in issue 13's
    measurement, two mirrored detections of 11 included).

    Args:
        joint_set: The keypoints' joint set.
        **changes: Fields to change from that default.
    """
    js = get_joint_set(joint_set)
    base = DetectorNoise(offset=0.04) if js.name == "hand" else DetectorNoise()
    unknown = sorted(set(changes) - set(DetectorNoise.__dataclass_fields__))
    if unknown:
        raise ValueError(
            f"DetectorNoise has no field {', '.join(map(repr, unknown))}; "
            f"known: {sorted(DetectorNoise.__dataclass_fields__)}"
        )
    return replace(base, **changes)


def _descendants(js: JointSet) -> list[set[int]]:
    """For every joint, itself and the joints beyond it from the root (breadth-first tree)."""
    n = js.num_joints
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in js.bones:
        neighbours[a].append(b)
        neighbours[b].append(a)
    parent = [-1] * n
    order, seen = [js.root], {js.root}
    for joint in order:
        for other in neighbours[joint]:
            if other not in seen:
                seen.add(other)
                parent[other] = joint
                order.append(other)
    out = [{j} for j in range(n)]
    for joint in reversed(order):  # children before parents
        if parent[joint] >= 0:
            out[parent[joint]] |= out[joint]
    return out


@lru_cache(maxsize=16)
def _tables(js: JointSet) -> tuple[Tensor, Tensor, Tensor]:
    """(limb masks (J, J) per non-root joint, limb swap permutations (P, J), full flip (J,))."""
    below = _descendants(js)
    derived = {d for d, _ in DERIVED_JOINTS.get(js.name, ())}
    starts = [j for j in range(js.num_joints) if j != js.root and j not in derived]
    masks = torch.zeros(len(starts), js.num_joints, dtype=torch.bool)
    for row, j in enumerate(starts):
        masks[row, sorted(below[j])] = True
    perms = []
    for a, b in js.flip_pairs:
        chain = below[a] | below[b]
        perm = list(range(js.num_joints))
        for c, d in js.flip_pairs:
            if c in chain or d in chain:
                perm[c], perm[d] = d, c
        perms.append(perm)
    swaps = torch.tensor(perms, dtype=torch.int64).reshape(len(perms), js.num_joints)
    flip = torch.as_tensor(js.flip_permutation(), dtype=torch.int64)
    return masks, swaps, flip


def detector_noise(
    keypoints: Tensor,
    generator: Generators,
    joint_set: str | JointSet,
    params: DetectorNoise | None = None,
) -> tuple[Tensor, Tensor]:
    """Missing joints, left/right swaps and per-joint offsets, as a real 2D detector makes them.

    In this order, per sample: a per-joint offset (Gaussian, ``params.offset`` times the box's
    larger side, times the joint's :data:`DETECTOR_OFFSET_SCALE`, times the sample's factor
    in ``1 ± params.offset_spread``); with ``swap_all`` every
    left/right pair exchanged, else with ``swap_limb`` one limb's pairs; then each joint
    missing with ``drop``, and with ``drop_limb`` one limb missing. Joints of
    :data:`DERIVED_JOINTS` are recomputed from their sources and are visible only when both
    are. A sample left with fewer than ``params.min_visible`` joints keeps them all.

    Args:
        keypoints: ``(B, J, 2)`` pixels of ``joint_set``.
        generator: Random source, or one per sample (see :func:`draw_rows`).
        joint_set: The keypoints' joint set.
        params: The probabilities (default :class:`DetectorNoise`).

    Returns:
        ``(keypoints, visible)``: ``(B, J, 2)`` pixels (missing joints keep their coordinates)
        and the ``(B, J)`` boolean mask of the joints a detector would report.
    """
    params = params or DetectorNoise()
    js = get_joint_set(joint_set)
    if keypoints.dim() != 3 or keypoints.shape[1:] != (js.num_joints, 2):
        raise ValueError(
            f"keypoints must have shape (B, {js.num_joints}, 2) for the {js.name} joint set, "
            f"got {tuple(keypoints.shape)}"
        )
    b, j, _ = keypoints.shape
    dtype, dev = keypoints.dtype, keypoints.device
    masks, swaps, flip = (t.to(dev) for t in _tables(js))
    num_limbs, num_pairs = masks.shape[0], swaps.shape[0]
    u, gauss = draw_rows(generator, b, lambda n, g: [
        uniform(g, n, 6, dtype=dtype), normal(g, n, j, 2, dtype=dtype),
    ])  # fmt: skip
    u_drop = draw_rows(generator, b, lambda n, g: [uniform(g, n, j, dtype=dtype)])[0]
    u, gauss, u_drop = u.to(dev), gauss.to(dev), u_drop.to(dev)
    scale = torch.ones(j, dtype=dtype, device=dev)
    for name, factor in DETECTOR_OFFSET_SCALE.get(js.name, {}).items():
        scale[js.index(name)] = factor
    w, h = _box_size(keypoints)
    size = torch.maximum(w, h).view(b, 1, 1)
    spread = (1.0 + params.offset_spread * (2.0 * u[:, 5] - 1.0)).view(b, 1, 1)  # 1: no spread
    out = keypoints + gauss * (params.offset * scale.view(1, j, 1)) * (size * spread)
    rows = torch.arange(b, device=dev)
    identity = torch.arange(j, device=dev).expand(b, j)
    perm = identity
    if num_pairs:
        limb_swap = swaps[(u[:, 1] * num_pairs).long().clamp_max(num_pairs - 1)]
        perm = torch.where((u[:, 0] < params.swap_limb)[:, None], limb_swap, perm)
        perm = torch.where((u[:, 2] < params.swap_all)[:, None], flip.expand(b, j), perm)
    out = out[rows[:, None], perm]
    visible = u_drop >= params.drop
    if num_limbs:
        limb = masks[(u[:, 4] * num_limbs).long().clamp_max(num_limbs - 1)]
        visible = visible & ~(limb & (u[:, 3] < params.drop_limb)[:, None])
    for joint, (a, c) in DERIVED_JOINTS.get(js.name, ()):
        out[:, joint] = 0.5 * (out[:, a] + out[:, c])
        visible[:, joint] = visible[:, a] & visible[:, c]
    too_few = visible.sum(1) < min(params.min_visible, j)
    visible = visible | too_few[:, None]
    return out, visible
