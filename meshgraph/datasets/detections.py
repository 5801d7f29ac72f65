"""2D detections that come with the benchmarks, matched to a dataset's samples.

The Pose2Mesh release ships a detector's keypoints for each test set; other detectors write
the same layouts:

* a JSON object ``{image path: J x [x, y(, confidence)]}`` (Human3.6M's
  ``absnet_output_on_testset.json``), matched by the image's path or file name;
* a JSON list ``[{ID_KEY: id, "keypoints": J x [x, y(, confidence)] or a flat list}]`` (3DPW's
  ``darkpose_3dpw_testset_output.json`` by ``annotation_id``, FreiHAND's
  ``hrnet_output_on_testset.json`` by ``image_id``);
* a JSON list of ``J x [x, y(, confidence)]``, one per sample in the dataset's order.

Body keypoints with 17 joints (COCO-17) become COCO-19
(:func:`~meshgraph.keypoint_formats.to_coco19`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshgraph.bodies.joint_sets import JointSet, get_joint_set
from meshgraph.datasets.base import DatasetFileError, read_json

__all__ = ["read_detections"]

_LAYOUT = (
    "{image: J x [x, y(, confidence)]}, [{id_key: id, 'keypoints': ...}] or a list of "
    "J x [x, y(, confidence)] in the dataset's order"
)


def _points(value: Any, joint_set: JointSet, path: Path, where: str) -> np.ndarray:
    from meshgraph.keypoint_formats import to_coco19

    try:
        kp = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DatasetFileError(f"{path}: the keypoints of {where} are not numbers") from err
    if kp.ndim == 1 and kp.size % 3 == 0:
        kp = kp.reshape(-1, 3)
    if kp.ndim != 2 or kp.shape[1] not in (2, 3):
        raise DatasetFileError(
            f"{path}: the keypoints of {where} must be J x [x, y(, confidence)], got shape "
            f"{kp.shape}"
        )
    if kp.shape[1] == 2:
        kp = np.concatenate([kp, np.ones((len(kp), 1))], 1)
    j = joint_set.num_joints
    if joint_set.name == "coco" and len(kp) == 17:
        kp = to_coco19(kp, "coco17")
    if len(kp) != j:
        raise DatasetFileError(
            f"{path}: {where} has {len(kp)} joints; the {joint_set.name} input needs {j}"
            + (" (or COCO-17)" if joint_set.name == "coco" else "")
        )
    return kp


def read_detections(
    path: str | os.PathLike,
    ids: Sequence[str],
    joint_set: str | JointSet,
    *,
    id_key: str | None = None,
    threshold: float = 0.1,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a detections file and order it like the dataset's samples.

    Args:
        path: The file (one of the layouts of this module's docstring).
        ids: The samples' ids: image paths or file names for the object layout, the values
            of ``id_key`` for the list-of-records layout.
        joint_set: The input joint set.
        id_key: The record key naming a sample (e.g. ``"annotation_id"``).
        threshold: Joints whose confidence is below it (or NaN) are not visible.

    Returns:
        ``(pixels (N, J, 2), visible (N, J))``, in the order of ``ids``.

    Raises:
        DatasetFileError: A missing or malformed file, or a sample without a detection (the
            message names the file, the sample and the layout).
    """
    path = Path(path)
    js = get_joint_set(joint_set)
    data = read_json(path, "2D detections: " + _LAYOUT)
    rows: list[np.ndarray] = []
    if isinstance(data, dict):
        by_name: dict[str, Any] = {}
        for key, value in data.items():
            by_name[str(key)] = value
            by_name.setdefault(Path(str(key)).name, value)
        for i in ids:
            value = by_name.get(str(i), by_name.get(Path(str(i)).name))
            if value is None:
                raise DatasetFileError(f"{path} has no detection for {i} (expected {_LAYOUT})")
            rows.append(_points(value, js, path, str(i)))
    elif isinstance(data, list) and data and isinstance(data[0], dict):
        if id_key is None:
            raise DatasetFileError(
                f"{path} holds records: this dataset matches detections by position only "
                f"(expected a list of J x [x, y(, confidence)])"
            )
        by_id: dict[str, Any] = {}
        for rec in data:
            if not isinstance(rec, dict) or id_key not in rec or "keypoints" not in rec:
                raise DatasetFileError(
                    f"{path}: a record has no {id_key!r} or 'keypoints' (expected {_LAYOUT})"
                )
            by_id.setdefault(str(rec[id_key]), rec["keypoints"])
        for i in ids:
            if str(i) not in by_id:
                raise DatasetFileError(f"{path} has no detection with {id_key} = {i}")
            rows.append(_points(by_id[str(i)], js, path, f"{id_key} {i}"))
    elif isinstance(data, list):
        if len(data) != len(ids):
            raise DatasetFileError(
                f"{path} holds {len(data)} detections for {len(ids)} samples (a list is "
                "matched by position)"
            )
        rows = [_points(v, js, path, f"entry {n}") for n, v in enumerate(data)]
    else:
        raise DatasetFileError(f"{path}: expected {_LAYOUT}, got {type(data).__name__}")
    kp = np.stack(rows)
    conf = kp[..., 2]
    visible = np.isfinite(conf) & (conf >= threshold) & np.isfinite(kp[..., :2]).all(-1)
    pixels = np.where(visible[..., None], kp[..., :2], 0.0)
    return pixels, visible
