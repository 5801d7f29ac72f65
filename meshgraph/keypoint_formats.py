"""2D keypoints from other detectors and files, converted to meshgraph's joint sets.

meshgraph's models take COCO-19 (the 17 COCO keypoints, then ``pelvis`` = mid-hips and
``neck`` = mid-shoulders) or Body-29 (COCO-19, then heels, big toes, index and pinky knuckles
and thumbs) for bodies and Hand-21 (wrist, then thumb to pinky, base to tip) for hands, in
pixels, with an optional confidence per joint (see :mod:`meshgraph.bodies.joint_sets`).
Detectors write other layouts; feeding them unconverted is the most common way to get a wrong
mesh. This module converts (``to_coco19(kp, src)``, ``to_body29(kp, src)``):

======================  ======  =============================================  ===========
source                  joints  notes                                          Body-29
======================  ======  =============================================  ===========
``"coco17"``            17      COCO order (mmpose, rtmlib, detectron2, COCO)  no extras
``"coco19"``            19      meshgraph's own order (passed through)         no extras
``"body29"``            29      meshgraph's own order (passed through)         all
``"blazepose"``         33      mediapipe BlazePose landmarks                  all
``"openpose_body25"``   25      OpenPose's default BODY_25 model               feet
``"openpose_coco18"``   18      OpenPose's COCO model (with its own neck)      no extras
``"halpe26"``           26      Halpe-26 (AlphaPose, rtmlib's body + feet)     feet
``"coco_wholebody"``    133     COCO-WholeBody (rtmlib/mmpose whole-body)      all
``"halpe136"``          136     Halpe-136 (AlphaPose full-body)                all
======================  ======  =============================================  ===========

Pelvis and neck are always recomputed as the mid-hips and mid-shoulders (with the lower of the
two confidences), since that is how meshgraph's regressors define them: OpenPose's own
``Neck`` and ``MidHip`` detections are not used. Body-29 joints a layout does not have come
back with confidence 0 (at the ankle or wrist they hang from), so a Body-29 model treats them
as missing. BlazePose's ``foot_index`` is taken as the big toe; COCO-WholeBody's and
Halpe-136's hand keypoints give the index and pinky knuckles (hand points 5 and 17) and the
thumb's knuckle (2). Hands: mediapipe, OpenPose (``hand_*_keypoints_2d``) and FreiHAND all write the
Hand-21 order already.

:func:`read_keypoints` reads a keypoint file in any of the layouts above (meshgraph's own
JSON, COCO annotations, mmpose/rtmlib predictions, OpenPose and AlphaPose output, ``.npy``), and
returns every person in it as a batch. :func:`read_keypoint_frames` reads a video's keypoints
(a folder of per-frame files, an mmpose video file) and files of several images' people
(AlphaPose's results, COCO annotations) frame by frame.

Left and right are always the person's own (anatomical) sides, as in COCO.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BLAZEPOSE_NAMES",
    "BLAZEPOSE_OFFSETS",
    "BODY29_EXTRA_NAMES",
    "COCO17_NAMES",
    "COCO_WHOLEBODY_NAMES",
    "HALPE26_NAMES",
    "HALPE136_NAMES",
    "KEYPOINT_FORMATS",
    "OPENPOSE_BODY25_NAMES",
    "OPENPOSE_COCO18_NAMES",
    "mediapipe_hand_side",
    "read_keypoint_frames",
    "read_keypoints",
    "remove_joint_offsets",
    "to_body29",
    "to_coco19",
]

#: The 17 COCO keypoints, in COCO's order (the first 17 of meshgraph's COCO-19).
COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip

#: mediapipe BlazePose's 33 landmarks, in its order.
BLAZEPOSE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip

#: OpenPose BODY_25, in its order.
OPENPOSE_BODY25_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe",
    "right_heel",
)  # fmt: skip

#: OpenPose's COCO-18 model, in its order.
OPENPOSE_COCO18_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
)  # fmt: skip

#: Halpe-26 (AlphaPose; rtmlib's body-with-feet models), in its order.
HALPE26_NAMES: tuple[str, ...] = (
    *COCO17_NAMES, "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe",
    "right_small_toe", "left_heel", "right_heel",
)  # fmt: skip

#: COCO-WholeBody's 133 keypoints, in its order: body, feet, 68 face points, then 21 points
#: per hand (left, then right) in the Hand-21 order (wrist, thumb to pinky, base to tip).
COCO_WHOLEBODY_NAMES: tuple[str, ...] = (
    *COCO17_NAMES, "left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
    "right_small_toe", "right_heel", *(f"face_{i}" for i in range(68)),
    *(f"left_hand_{i}" for i in range(21)), *(f"right_hand_{i}" for i in range(21)),
)  # fmt: skip

#: Halpe-136 (AlphaPose's full-body models), in its order: Halpe-26, 68 face points, then 21
#: points per hand (left, then right) in the Hand-21 order.
HALPE136_NAMES: tuple[str, ...] = (
    *HALPE26_NAMES, *(f"face_{i}" for i in range(68)),
    *(f"left_hand_{i}" for i in range(21)), *(f"right_hand_{i}" for i in range(21)),
)  # fmt: skip

#: Body-29's joints beyond COCO-19, in its order (see :data:`~meshgraph.bodies.BODY29`).
BODY29_EXTRA_NAMES: tuple[str, ...] = (
    "left_heel", "right_heel", "left_big_toe", "right_big_toe", "left_index", "right_index",
    "left_pinky", "right_pinky", "left_thumb", "right_thumb",
)  # fmt: skip

#: Source layouts :func:`to_coco19` and :func:`to_body29` convert, with their joint names.
KEYPOINT_FORMATS: dict[str, tuple[str, ...]] = {
    "coco17": COCO17_NAMES,
    "coco19": (*COCO17_NAMES, "pelvis", "neck"),
    "body29": (*COCO17_NAMES, "pelvis", "neck", *BODY29_EXTRA_NAMES),
    "blazepose": BLAZEPOSE_NAMES,
    "openpose_body25": OPENPOSE_BODY25_NAMES,
    "openpose_coco18": OPENPOSE_COCO18_NAMES,
    "halpe26": HALPE26_NAMES,
    "coco_wholebody": COCO_WHOLEBODY_NAMES,
    "halpe136": HALPE136_NAMES,
}

#: Formats recognised from the joint count alone (18 is ambiguous in principle, but only
#: OpenPose writes 18 body joints).
_BY_COUNT = {
    17: "coco17", 19: "coco19", 25: "openpose_body25", 26: "halpe26", 29: "body29",
    33: "blazepose", 133: "coco_wholebody", 136: "halpe136",
}  # fmt: skip

#: Body-29's joints beyond COCO-19: each with the names it goes by in the source layouts, and
#: the COCO-17 joint it hangs from (where it is put, with confidence 0, when a layout lacks it).
_BODY29_EXTRA: tuple[tuple[str, tuple[str, ...], str], ...] = tuple(
    (f"{side}_{part}", tuple(f"{side}_{alias}" for alias in aliases), f"{side}_{parent}")
    for part, aliases, parent in (
        ("heel", ("heel",), "ankle"),
        ("big_toe", ("big_toe", "foot_index"), "ankle"),
        ("index", ("index", "hand_5"), "wrist"),
        ("pinky", ("pinky", "hand_17"), "wrist"),
        ("thumb", ("thumb", "hand_2"), "wrist"),
    )
    for side in ("left", "right")
)


def _as_points(keypoints: Any, what: str) -> tuple[np.ndarray, bool]:
    """``(..., J, 3)`` float64 with a confidence column (1 where none was given)."""
    try:
        raw = np.asarray(keypoints)
    except (TypeError, ValueError) as err:  # ragged lists
        raise ValueError(
            f"{what}: keypoints must be real numbers in a (J, 2|3) array ({err})"
        ) from None
    if raw.dtype.kind not in "biuf" and raw.dtype != object:
        raise ValueError(f"{what}: keypoints must be real numbers, got dtype {raw.dtype}")
    try:
        kp = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what}: keypoints must be real numbers ({err})") from None
    if kp.ndim < 2 or kp.shape[-1] not in (2, 3):
        raise ValueError(f"{what}: keypoints must be (J, 2|3) or (N, J, 2|3), got {kp.shape}")
    if kp.ndim > 3:
        raise ValueError(f"{what}: keypoints must be (J, 2|3) or (N, J, 2|3), got {kp.shape}")
    had_conf = kp.shape[-1] == 3
    if not had_conf:
        kp = np.concatenate([kp, np.ones((*kp.shape[:-1], 1))], -1)
    return kp, had_conf


def _midpoint(kp: np.ndarray, a: int, b: int) -> np.ndarray:
    """Midpoint of joints ``a`` and ``b`` with the lower confidence of the two."""
    mid = 0.5 * (kp[..., a, :2] + kp[..., b, :2])
    conf = np.minimum(kp[..., a, 2], kp[..., b, 2])
    return np.concatenate([mid, conf[..., None]], -1)


def to_coco19(keypoints: Any, source: str | None = None) -> np.ndarray:
    """Convert 2D keypoints of another layout to meshgraph's COCO-19, in pixels.

    Args:
        keypoints: ``(J, 2|3)`` or ``(N, J, 2|3)``: x, y (pixels) and optionally a
            confidence (or visibility) per joint.
        source: One of :data:`KEYPOINT_FORMATS` (``"coco17"``, ``"coco19"``, ``"body29"``,
            ``"blazepose"``, ``"openpose_body25"``, ``"openpose_coco18"``, ``"halpe26"``,
            ``"coco_wholebody"``, ``"halpe136"``); ``None`` picks it from the joint count
            (17, 19, 25, 26, 29, 33, 133, 136; 18 means OpenPose's COCO model).

    Returns:
        ``(19, 3)`` or ``(N, 19, 3)`` float64: x, y, confidence (1 where none was given).
        Pelvis and neck are the mid-hips and mid-shoulders, with the lower confidence of the
        two joints. A joint that OpenPose did not find (written as 0, 0, 0) keeps confidence 0.

    Raises:
        ValueError: On an unknown ``source``, a joint count that does not match it, or a
            shape that is not ``(J, 2|3)`` / ``(N, J, 2|3)``.

    Example:
        >>> import numpy as np
        >>> kp = np.zeros((17, 3)); kp[:, 2] = 1
        >>> kp[11, :2], kp[12, :2] = (10, 100), (30, 100)  # hips
        >>> kp[5, :2], kp[6, :2] = (0, 40), (40, 40)  # shoulders
        >>> to_coco19(kp, "coco17")[17:].tolist()  # pelvis, neck
        [[20.0, 100.0, 1.0], [20.0, 40.0, 1.0]]
    """
    kp, _ = _as_points(keypoints, "to_coco19")
    names = KEYPOINT_FORMATS[_layout(kp, source)]
    if names == KEYPOINT_FORMATS["coco19"]:
        return kp
    return _coco19(kp, names)


def _layout(kp: np.ndarray, source: str | None) -> str:
    """The layout name: ``source`` checked against the joint count, or told from it."""
    joints = kp.shape[-2]
    if source is None:
        if joints == 18:
            source = "openpose_coco18"
        elif joints in _BY_COUNT:
            source = _BY_COUNT[joints]
        else:
            raise ValueError(
                f"cannot tell the keypoint layout of {joints} joints; known layouts: "
                + ", ".join(f"{k} ({len(v)})" for k, v in KEYPOINT_FORMATS.items())
            )
    if source not in KEYPOINT_FORMATS:
        raise ValueError(f"unknown keypoint layout {source!r}; known: {sorted(KEYPOINT_FORMATS)}")
    names = KEYPOINT_FORMATS[source]
    if joints != len(names):
        raise ValueError(f"layout {source!r} has {len(names)} joints, got {joints}")
    return source


def _coco19(kp: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """COCO-19 from keypoints in the layout ``names`` (with its confidence column)."""
    index = {name: i for i, name in enumerate(names)}
    coco17 = kp[..., [index[name] for name in COCO17_NAMES], :]
    pelvis = _midpoint(coco17, 11, 12)
    neck = _midpoint(coco17, 5, 6)
    return np.concatenate([coco17, pelvis[..., None, :], neck[..., None, :]], -2)


def to_body29(keypoints: Any, source: str | None = None) -> np.ndarray:
    """Convert 2D keypoints of another layout to meshgraph's Body-29, in pixels.

    Body-29 is COCO-19, then per side (left before right) the heel, the big toe's tip, the
    index and pinky knuckles and the thumb (see :data:`~meshgraph.bodies.BODY29`).

    Args:
        keypoints: ``(J, 2|3)`` or ``(N, J, 2|3)``: x, y (pixels) and optionally a
            confidence (or visibility) per joint.
        source: One of :data:`KEYPOINT_FORMATS`; ``None`` picks it from the joint count (17,
            19, 25, 26, 29, 33, 133, 136; 18 means OpenPose's COCO model).

    Returns:
        ``(29, 3)`` or ``(N, 29, 3)`` float64: x, y, confidence. Pelvis and neck as in
        :func:`to_coco19`. A joint the source layout does not have comes back at the ankle or
        wrist it hangs from, with confidence 0 (missing), so a Body-29 model can take COCO-17
        keypoints too.

    Raises:
        ValueError: On an unknown ``source``, a joint count that does not match it, or a
            shape that is not ``(J, 2|3)`` / ``(N, J, 2|3)``.

    Example:
        >>> import numpy as np
        >>> kp = np.zeros((25, 3)); kp[:, 2] = 0.9
        >>> kp[24] = (12.0, 300.0, 0.8)  # BODY_25's right heel
        >>> out = to_body29(kp, "openpose_body25")
        >>> out.shape, out[20].tolist(), float(out[24, 2])  # right heel; right index: missing
        ((29, 3), [12.0, 300.0, 0.8], 0.0)
    """
    kp, _ = _as_points(keypoints, "to_body29")
    source = _layout(kp, source)
    if source == "body29":
        return kp
    names = KEYPOINT_FORMATS[source]
    index = {name: i for i, name in enumerate(names)}
    coco19 = kp if source == "coco19" else _coco19(kp, names)
    extra = []
    for _, aliases, parent in _BODY29_EXTRA:
        found = next((index[a] for a in aliases if a in index), None)
        if found is None:
            point = coco19[..., COCO17_NAMES.index(parent), :].copy()
            point[..., 2] = 0.0
        else:
            point = kp[..., found, :]
        extra.append(point[..., None, :])
    return np.concatenate([coco19, *extra], -2)


#: Where mediapipe BlazePose (0.10.21, ``model_complexity=1``) puts a joint relative to where a
#: body model's joint regressor does, by body model and joint name: ``(up, out)``, the mean
#: offset of the detected point along the torso (pelvis to neck, positive towards the neck)
#: and outward (from the joint's left/right mate towards the joint), both in torso lengths
#: (pelvis to neck). Measured on shaded renders of held-out Anny bodies by
#: ``python -m benchmarks.detector_offsets`` (96 photos, seed 7; left and right averaged);
#: only the eyes, ears, shoulders and hips, whose definitions differ between the detector's
#: annotations and the body model (the detector's hips lie higher, its shoulders, eyes and
#: ears closer together). :func:`remove_joint_offsets` takes them off.
BLAZEPOSE_OFFSETS: dict[str, dict[str, tuple[float, float]]] = {
    "anny": {
        side + joint: offset
        for joint, offset in {
            "eye": (-0.008, -0.022),
            "ear": (-0.012, -0.071),
            "shoulder": (0.019, -0.042),
            "hip": (0.068, -0.026),
        }.items()
        for side in ("left_", "right_")
    }
}


def _mate(name: str) -> str:
    """The joint's left/right counterpart by name (``left_hip`` -> ``right_hip``), or itself."""
    for a, b in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(a):
            return b + name[len(a) :]
    return name


def remove_joint_offsets(
    keypoints: Any,
    offsets: dict[str, tuple[float, float]],
    *,
    confidence_threshold: float = 0.1,
) -> np.ndarray:
    """Move a detector's COCO-19 or Body-29 keypoints onto a body model's joint definitions.

    A detector's hips, shoulders, eyes and ears are not where a body model's joint regressor
    puts them (see :data:`BLAZEPOSE_OFFSETS`); a model trained on the regressor's joints reads
    such a systematic offset as a different pose. Each joint named in ``offsets`` is moved by
    ``-(up * u + out * o) * L``, where ``L`` is the detected torso length (mid-hips to
    mid-shoulders, pixels), ``u`` the unit vector from mid-hips to mid-shoulders and ``o`` the
    unit vector from the joint's left/right mate to the joint. Pelvis and neck are then
    recomputed as the mid-hips and mid-shoulders. The correction turns, scales and mirrors
    with the image.

    Keypoints whose torso is not found (a hip or shoulder below ``confidence_threshold``, or
    hips and shoulders at one point) come back unchanged; a joint whose mate is missing moves
    along the torso only; joints below the threshold, and joints not in ``offsets``, stay
    where they are.

    Args:
        keypoints: ``(J, 2|3)`` or ``(N, J, 2|3)`` pixels (and confidences) in COCO-19
            (``J = 19``) or Body-29 (``J = 29``) order.
        offsets: ``{joint name: (up, out)}`` in torso lengths, e.g.
            ``BLAZEPOSE_OFFSETS["anny"]``.
        confidence_threshold: Joints below this confidence count as missing.

    Returns:
        ``(J, 3)`` or ``(N, J, 3)`` float64: the moved pixels and the unchanged confidences (1
        where none were given).

    Raises:
        ValueError: On a shape that is not COCO-19's or Body-29's, non-finite pixels, or an
            unknown joint name in ``offsets``.

    Example:
        >>> import numpy as np
        >>> kp = np.zeros((19, 2))
        >>> kp[[5, 6, 11, 12]] = [(-20, -100), (20, -100), (-10, 0), (10, 0)]  # L/R sh., hips
        >>> out = remove_joint_offsets(kp, {"left_hip": (0.1, 0.0)})
        >>> out[11, :2].tolist(), out[17, :2].tolist()  # the left hip and the pelvis, 10 px down
        ([-10.0, 10.0], [0.0, 5.0])
    """
    kp, _ = _as_points(keypoints, "remove_joint_offsets")
    count = kp.shape[-2]
    if count not in (19, 29):
        raise ValueError(
            f"remove_joint_offsets: keypoints must be COCO-19 or Body-29 (19 or 29 joints), "
            f"got {count}"
        )
    names = KEYPOINT_FORMATS["coco19" if count == 19 else "body29"]
    unknown = sorted(set(offsets) - set(names))
    if unknown:
        raise ValueError(f"remove_joint_offsets: no joint named {', '.join(unknown)}")
    if not np.isfinite(kp).all():
        raise ValueError("remove_joint_offsets: keypoints hold NaN or inf")
    out = kp.copy()
    p, conf = kp[..., :2], kp[..., 2]
    at = {name: i for i, name in enumerate(names)}
    lh, rh, ls, rs = (at[n] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder"))
    torso = 0.5 * (p[..., ls, :] + p[..., rs, :]) - 0.5 * (p[..., lh, :] + p[..., rh, :])
    length = np.linalg.norm(torso, axis=-1, keepdims=True)
    found = (conf[..., [lh, rh, ls, rs]] >= confidence_threshold).all(-1) & (length[..., 0] > 0)
    up = torso / np.where(length > 0, length, 1.0)

    for name, (along, outward) in offsets.items():
        j, m = at[name], at[_mate(name)]
        side = p[..., j, :] - p[..., m, :]
        gap = np.linalg.norm(side, axis=-1, keepdims=True)
        apart = (gap > 1e-6 * length) & (conf[..., m, None] >= confidence_threshold) & (m != j)
        o = np.where(apart, side / np.where(gap > 0, gap, 1.0), 0.0)
        move = (along * up + outward * o) * length
        moved = found & (conf[..., j] >= confidence_threshold)
        out[..., j, :2] = np.where(moved[..., None], p[..., j, :] - move, p[..., j, :])
    for mid, (a, b) in (("pelvis", (lh, rh)), ("neck", (ls, rs))):
        centre = 0.5 * (out[..., a, :2] + out[..., b, :2])
        out[..., at[mid], :2] = np.where(found[..., None], centre, p[..., at[mid], :])
    return out


def mediapipe_hand_side(label: str, *, mirrored_image: bool = False) -> str:
    """The hand's own side from mediapipe's handedness label.

    mediapipe's hand model labels handedness as if the image were mirrored (a selfie camera):
    in an ordinary photo, a right hand comes back labelled ``"Left"``.

    Args:
        label: mediapipe's ``classification[0].label``, ``"Left"`` or ``"Right"``.
        mirrored_image: ``True`` if the image itself is a mirrored (selfie) view.

    Returns:
        ``"right"`` or ``"left"``.

    Example:
        >>> mediapipe_hand_side("Left")
        'right'
        >>> mediapipe_hand_side("Left", mirrored_image=True)
        'left'
    """
    key = str(label).strip().lower()
    if key not in ("left", "right"):
        raise ValueError(f"mediapipe handedness is 'Left' or 'Right', got {label!r}")
    if mirrored_image:
        return key
    return "right" if key == "left" else "left"


def _numbers(values: Any, path: Path) -> np.ndarray:
    """``values`` as a float64 array, or an error naming the file when they are not numbers."""
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: keypoints must be real numbers ({err})") from None


def _flat(values: Any, per: int, path: Path, key: str) -> np.ndarray:
    arr = _numbers(values, path)
    if arr.ndim == 1:
        if arr.size % per:
            raise ValueError(f"{path}: {key!r} holds {arr.size} numbers, not a multiple of {per}")
        arr = arr.reshape(-1, per)
    return arr


def _people_openpose(data: dict, path: Path, joint_set: str) -> tuple[list[np.ndarray], str]:
    people = data["people"]
    if not isinstance(people, list):
        raise ValueError(f"{path}: OpenPose 'people' must be a list")
    if joint_set == "hand":
        key = "hand_right_keypoints_2d"
        if not any(p.get(key) for p in people if isinstance(p, dict)):
            key = "hand_left_keypoints_2d"
    else:
        key = "pose_keypoints_2d"
    out = [_flat(p[key], 3, path, key) for p in people if isinstance(p, dict) and p.get(key)]
    if joint_set == "hand":
        return out, "hand"
    names = {25: "openpose_body25", 18: "openpose_coco18"}
    if out and out[0].shape[0] not in names:
        raise ValueError(
            f"{path}: OpenPose {key!r} has {out[0].shape[0]} joints (BODY_25 or COCO-18 expected)"
        )
    return out, names[out[0].shape[0]] if out else "openpose_body25"


def _instance(item: Any, path: Path) -> np.ndarray:
    """One person from a COCO annotation or an mmpose/rtmlib prediction."""
    if not isinstance(item, dict) or "keypoints" not in item:
        raise ValueError(f"{path}: expected objects with a 'keypoints' key")
    kp = _numbers(item["keypoints"], path)
    if kp.ndim == 1:  # a flat x, y, c list
        kp = _flat(kp, 3, path, "keypoints")
        if np.isin(kp[:, 2], (0.0, 1.0, 2.0)).all():
            # COCO's visibility flags: 0 not labelled, 1 labelled but hidden, 2 visible
            kp[:, 2] = (kp[:, 2] > 0).astype(np.float64)
    scores = item.get("keypoint_scores", item.get("scores"))
    if scores is not None:
        scores = _numbers(scores, path).reshape(-1)
        if scores.shape[0] != kp.shape[0]:
            raise ValueError(
                f"{path}: {scores.shape[0]} keypoint scores for {kp.shape[0]} keypoints"
            )
        kp = np.concatenate([kp[:, :2], scores[:, None]], 1)
    return kp


def read_keypoints(
    path: str | os.PathLike, joint_set: str = "coco", *, layout: str | None = None
) -> np.ndarray:
    """Read 2D keypoints from a file and convert them to ``joint_set``'s order.

    Reads:

    * ``.npy``: ``(J, 2|3)`` or ``(N, J, 2|3)`` (loaded with ``allow_pickle=False``);
    * JSON, meshgraph's own: a ``(J, 2|3)`` list, or ``{"keypoints": [...]}``;
    * JSON, COCO annotations: ``{"annotations": [{"keypoints": [x, y, v, ...]}]}``, one
      annotation, or a list of them (``v = 0`` becomes confidence 0);
    * JSON, mmpose / rtmlib predictions: ``[{"keypoints": [[x, y], ...],
      "keypoint_scores": [...]}]`` or ``{"instance_info": [...]}``;
    * JSON, OpenPose: ``{"people": [{"pose_keypoints_2d": [x, y, c, ...]}]}`` (BODY_25 or
      COCO-18; for hands ``hand_right_keypoints_2d``, else ``hand_left_keypoints_2d``);
    * JSON, AlphaPose: its COCO-like results ``[{"image_id": ..., "keypoints": [x, y, c,
      ...]}]`` and its ``--format cmu`` files ``{"bodies": [{"joints": [x, y, c, ...]}]}``.

    Every person in the file comes back, also from a file of several images (AlphaPose's
    results of a folder, COCO annotations); :func:`read_keypoint_frames` groups those by
    image, and reads videos.

    Body keypoints are converted to COCO-19 with :func:`to_coco19`, or to Body-29 with
    :func:`to_body29` (``layout`` names the source layout; by default it is told from the
    joint count). Hand keypoints must already be in the Hand-21 order, which mediapipe,
    OpenPose and FreiHAND write.

    Args:
        path: The file.
        joint_set: ``"coco"`` or ``"body29"`` (bodies; converted from the layouts above),
            ``"hand"`` or ``"h36m"`` (both taken in their own order).
        layout: The body layout (see :data:`KEYPOINT_FORMATS`), or ``None`` to infer it.

    Returns:
        ``(N, J, 3)`` float64, one row per person in the file (x, y in pixels, confidence).

    Raises:
        FileNotFoundError: If there is no file.
        ValueError: On a file that is not one of these layouts (the message names the file and
            what was expected), a joint count that fits no layout, or no person in it.
    """
    from meshgraph.bodies.joint_sets import get_joint_set
    from meshgraph.io import load_array

    path = Path(path)
    joint_set = get_joint_set(joint_set).name
    if not path.is_file():
        raise FileNotFoundError(f"no keypoint file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _converted(load_array(path, what="keypoint file"), path, joint_set, layout)
    if suffix != ".json":
        raise ValueError(f"{path}: keypoint files are .json or .npy, got {suffix or 'none'!r}")
    data = _load_json(path)
    frames = _video_frames(data)
    if frames is not None:
        raise ValueError(
            f"{path}: an mmpose video file ({len(frames)} frames of 'instances'); read it "
            "frame by frame with read_keypoint_frames (meshgraph predict does), or give one "
            "frame's instances, e.g. {'instance_info': frames[i]['instances']}"
        )
    people, found = _parsed_json(data, path, joint_set)
    return _converted(people, path, joint_set, layout if layout is not None else found)


def read_keypoint_frames(
    path: str | os.PathLike, joint_set: str = "coco", *, layout: str | None = None
) -> list[tuple[str, np.ndarray]]:
    """Read a sequence of 2D keypoint frames: a folder of keypoint files, or a video file.

    * A folder: every ``.json`` and ``.npy`` file in it (not in subfolders), in natural order
      of their names (``frame_2`` before ``frame_10``), each read like :func:`read_keypoints`
      and named by its stem. OpenPose's ``--write_json`` folder is one.
    * An mmpose video file: ``[{"frame_id": 0, "instances": [...]}, ...]`` (mmpose's
      inferencer with ``pred_out_dir``) or ``{"instance_info": [...frames...]}`` (its demo
      scripts), frame ``i`` named ``frame_000i``.
    * A file of several images' people, told apart by their ``image_id``: AlphaPose's
      results (``[{"image_id": "1.jpg", "keypoints": [x, y, c, ...]}, ...]``) or COCO
      annotations of several images (every image of COCO's ``images`` list, in its order).
      Each image is a frame named by its file name's stem (``image_ID`` when there is none).
    * Any other keypoint file: one frame, named by the file's stem.

    A frame without people (an empty OpenPose ``people`` list, a frame with no instances)
    comes back as a ``(0, J, 3)`` array, so that frames keep their place.

    Args:
        path: The folder or file.
        joint_set: As in :func:`read_keypoints`.
        layout: The body layout of every frame, or ``None`` to infer it per file.

    Returns:
        ``[(name, keypoints), ...]`` in order, each ``keypoints`` ``(N, J, 3)`` float64.

    Raises:
        FileNotFoundError: If there is no such file or folder.
        ValueError: On a folder without keypoint files, or a file :func:`read_keypoints`
            cannot read (the message names the file and, in a video file, the frame).
    """
    from meshgraph.bodies.joint_sets import get_joint_set

    path = Path(path)
    joint_set = get_joint_set(joint_set).name
    frames = _read_sequence(path, joint_set, layout)
    if frames is None:
        return [(path.stem, _frame(path, joint_set, layout))]
    return frames


def _read_sequence(
    path: Path, joint_set: str, layout: str | None
) -> list[tuple[str, np.ndarray]] | None:
    """The frames of a folder, or of a file of several frames or images (parsed once).

    ``None`` for any other file: one image's people, which :func:`read_keypoints` reads.
    """
    if path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in (".json", ".npy")]
        if not files:
            raise ValueError(f"{path}: the folder holds no keypoint file (.json or .npy)")
        files.sort(key=_natural_key)
        return [(p.stem, _frame(p, joint_set, layout)) for p in files]
    if not path.is_file():
        raise FileNotFoundError(f"no keypoint file or folder at {path}")
    if path.suffix.lower() != ".json":
        return None
    try:
        frames = _sequence_frames(_load_json(path))
    except ValueError:
        return None  # not JSON: read_keypoints says so
    if frames is None:
        return None
    return [
        (name, _people_of(doc, Path(f"{path} ({name})"), joint_set, layout)) for name, doc in frames
    ]


def _sequence_frames(data: Any) -> list[tuple[str, Any]] | None:
    """``(name, document)`` per frame of a file that holds several frames or images.

    An mmpose video file gives its frames; a list of instances with an ``image_id`` each
    (AlphaPose's results, a COCO annotation file) gives one document per image when they name
    two images or more. Anything else gives ``None``: a single image's file.
    """
    frames = _video_frames(data)
    if frames is None:
        return _image_groups(data)
    out = []
    for i, frame in enumerate(frames):
        frame_id = frame.get("frame_id", i)
        ok = isinstance(frame_id, int) and not isinstance(frame_id, bool) and frame_id >= 0
        out.append((f"frame_{frame_id if ok else i:06d}", frame["instances"]))
    return out


def _image_groups(data: Any) -> list[tuple[str, Any]] | None:
    """The people of each image in a file of several images' instances, or ``None``.

    Images come in the order of COCO's ``images`` list (images without people included),
    else in the order they first appear; each is named by its file name's stem (COCO's
    ``file_name``, AlphaPose's ``image_id``) or ``image_ID``.
    """
    coco = isinstance(data, dict) and "annotations" in data
    items = data["annotations"] if coco else data
    if not isinstance(items, list) or not all(
        isinstance(a, dict) and isinstance(a.get("image_id"), (str, int)) for a in items
    ):
        return None
    names: dict[Any, str] = {}
    images = data.get("images") if coco else None
    if isinstance(images, list) and all(isinstance(im, dict) and "id" in im for im in images):
        for im in images:
            file_name = im.get("file_name")
            names.setdefault(im["id"], Path(file_name).stem if isinstance(file_name, str) else "")
    for a in items:
        names.setdefault(a["image_id"], "")
    if len(names) < 2:
        return None
    groups: dict[Any, list] = {key: [] for key in names}
    for a in items:
        groups[a["image_id"]].append(a)
    out, taken = [], set()
    for key, stem in names.items():
        name = stem or (Path(key).stem if isinstance(key, str) else f"image_{key}")
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"
        unique, k = name, 1
        while unique in taken:  # two images with one stem (a.jpg, a.png)
            unique, k = f"{name}_{k}", k + 1
        taken.add(unique)
        out.append((unique, {"annotations": groups[key]} if coco else groups[key]))
    return out


def _natural_key(path: Path) -> list[Any]:
    """Sort key for file names with numbers in them: ``frame_2`` before ``frame_10``."""
    parts = re.split(r"(\d+)", path.name)
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in parts]


def _frame(path: Path, joint_set: str, layout: str | None) -> np.ndarray:
    """One keypoint file of a sequence: its people, or ``(0, J, 3)`` when it holds none."""
    if path.suffix.lower() == ".npy":
        return read_keypoints(path, joint_set, layout=layout)
    data = _load_json(path)
    if _sequence_frames(data) is not None:
        raise ValueError(
            f"{path}: a file of several frames or images inside a folder of frames; give it alone"
        )
    return _people_of(data, path, joint_set, layout)


def _people_of(doc: Any, where: Path, joint_set: str, layout: str | None) -> np.ndarray:
    """One frame's or image's people in a parsed JSON document; ``(0, J, 3)`` for none."""
    people, found = _parsed_json(doc, where, joint_set)
    return _converted(people, where, joint_set, layout if layout is not None else found,
                      empty_ok=True)  # fmt: skip


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ValueError(f"{path} is not a JSON keypoint file ({err})") from None


def _video_frames(data: Any) -> list[dict] | None:
    """The frames of an mmpose video document, or ``None`` when ``data`` is not one."""
    if isinstance(data, dict):
        data = data.get("instance_info")
    if (
        isinstance(data, list)
        and data
        and all(isinstance(f, dict) and "instances" in f for f in data)
    ):
        return data
    return None


def _parsed_json(data: Any, path: Path, joint_set: str) -> tuple[Any, str | None]:
    """People in a parsed JSON document and the layout it names (``None`` when it names none)."""
    try:
        people, found = _json_people(data, path, joint_set)
    except (TypeError, ValueError, KeyError, AttributeError) as err:
        message = str(err)
        if not message.startswith(str(path)):
            message = (
                f"{path}: not a keypoint layout meshgraph reads ({message}); expected a "
                "(J, 2|3) list, {'keypoints': ...}, COCO annotations, mmpose/rtmlib "
                "predictions or OpenPose output"
            )
        raise ValueError(message) from None
    return people, (found if found not in ("", "hand") else None)


def _converted(
    people: list[np.ndarray] | np.ndarray,
    path: Path,
    joint_set: str,
    layout: str | None,
    *,
    empty_ok: bool = False,
) -> np.ndarray:
    """``(N, J, 3)`` keypoints of the people read from ``path``, in ``joint_set``'s order."""
    from meshgraph.bodies.joint_sets import get_joint_set

    if isinstance(people, list):
        if not people:
            if empty_ok:
                return np.zeros((0, get_joint_set(joint_set).num_joints, 3))
            raise ValueError(f"{path}: the file holds no person")
        counts = {p.shape for p in people}
        if len(counts) != 1:
            raise ValueError(f"{path}: people with different keypoint shapes {sorted(counts)}")
        people = np.stack(people)
    try:
        kp, _ = _as_points(people, str(path))
    except ValueError as err:
        raise ValueError(str(err)) from None
    if kp.ndim == 2:
        kp = kp[None]
    if joint_set not in ("coco", "body29"):
        expected = get_joint_set(joint_set).num_joints
        if kp.shape[1] != expected:
            raise ValueError(
                f"{path}: {joint_set!r} keypoints are {expected} joints, got {kp.shape[1]}"
            )
        return kp
    try:
        return (to_coco19 if joint_set == "coco" else to_body29)(kp, layout)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None


def _json_people(data: Any, path: Path, joint_set: str) -> tuple[Any, str]:
    """People in a parsed JSON document, and the layout the document names (or "")."""
    if isinstance(data, dict):
        if "people" in data:
            return _people_openpose(data, path, joint_set)
        if "bodies" in data:  # CMU-Pose's layout (AlphaPose --format cmu)
            return [_flat(b["joints"], 3, path, "joints") for b in data["bodies"]], ""
        if "annotations" in data:
            return [_instance(a, path) for a in data["annotations"]], "coco17"
        if "instance_info" in data:
            return [_instance(a, path) for a in data["instance_info"]], ""
        for key in ("keypoints", "keypoints_2d"):
            if key in data:
                item = data[key]
                if _numbers(item, path).ndim == 1:  # one COCO annotation
                    return [_instance({"keypoints": item}, path)], ""
                if "keypoint_scores" in data:
                    return [_instance(data, path)], ""
                return _numbers(item, path), str(data.get("layout", ""))
        raise ValueError(f"{path}: no 'keypoints', 'annotations', 'instance_info' or 'people' key")
    if isinstance(data, list) and not data:  # no instances (an mmpose frame without people)
        return [], ""
    if isinstance(data, list) and isinstance(data[0], dict):
        return [_instance(a, path) for a in data], ""
    arr = _numbers(data, path)
    if arr.ndim == 1 and arr.size % 3 == 0:  # a flat x, y, c list
        arr = arr.reshape(-1, 3)
    return arr, ""
