"""Real datasets from the files users have, as samples of the dataset protocol.

Each loader reads a dataset's published files (nothing is downloaded) and serves the keys of
:mod:`meshgraph.data.protocol`, with the benchmark's protocol attached
(:class:`~meshgraph.datasets.base.BenchmarkProtocol`: the paper's table row and the joints it
scores). :func:`~meshgraph.training.evaluate.evaluate_benchmark` (``meshgraph evaluate MODEL
--dataset NAME --root DIR``) prints that row.

* :class:`Human36M`: the Pose2Mesh release's annotation layout, protocols 1 and 2;
* :class:`PW3D`: 3DPW in the same release's layout (needs the licensed SMPL files);
* :class:`FreiHAND`: FreiHAND's evaluation set in its own layout;
* :class:`COCOKeypoints`: COCO's person keypoints (2D only).
"""

from __future__ import annotations

import os
from typing import Any

from meshgraph.bodies.joint_sets import COCO, get_joint_set
from meshgraph.datasets.base import (
    H36M_EVAL_JOINTS,
    BenchmarkProtocol,
    DatasetFileError,
    KeypointDataset,
    read_json,
    with_missing_joints,
)
from meshgraph.datasets.coco import COCOKeypoints
from meshgraph.datasets.detections import read_detections
from meshgraph.datasets.freihand import FreiHAND
from meshgraph.datasets.h36m import Human36M
from meshgraph.datasets.pw3d import PW3D

__all__ = [
    "BENCHMARKS",
    "H36M_EVAL_JOINTS",
    "PW3D",
    "BenchmarkProtocol",
    "COCOKeypoints",
    "DatasetFileError",
    "FreiHAND",
    "Human36M",
    "KeypointDataset",
    "load_dataset",
    "read_detections",
    "read_json",
    "with_missing_joints",
]

#: The names :func:`load_dataset` (and ``meshgraph evaluate --dataset``) knows.
BENCHMARKS: dict[str, str] = {
    "h36m-p2": "Human3.6M protocol 2 (subjects 9, 11; every 64th frame)",
    "h36m-p1": "Human3.6M protocol 1 (subject 11; every 64th frame)",
    "3dpw": "3DPW test (needs the SMPL files)",
    "freihand": "FreiHAND evaluation set",
    "coco": "COCO person keypoints, val2017 (2D only)",
}


def load_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    joint_set: str | None = None,
    keypoints: str | os.PathLike = "gt",
    smpl_path: str | os.PathLike | None = None,
    regressors: dict[str, Any] | None = None,
    limit: int | None = None,
) -> KeypointDataset:
    """A benchmark's test set by name (one of :data:`BENCHMARKS`).

    Args:
        name: The benchmark.
        root: Its folder.
        joint_set: The 2D input joint set (default: the dataset's usual one; for a model,
            the model's). ``"body29"`` reads the benchmark's COCO-19 with the ten extra joints
            missing (:func:`~meshgraph.datasets.base.with_missing_joints`).
        keypoints: ``"gt"``, ``"detected"`` (3DPW: the release's detections) or a detections
            file.
        smpl_path: The licensed SMPL files (3DPW; Human3.6M meshes and COCO input).
        regressors: SMPL joint regressors by joint-set name.
        limit: Keep only the first ``limit`` samples.

    Raises:
        ValueError: An unknown name, or 3DPW without ``smpl_path``.
    """
    key = name.lower()
    if key not in BENCHMARKS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(BENCHMARKS)}")
    wanted = None if joint_set is None else get_joint_set(joint_set)
    if wanted is not None and wanted != COCO and wanted.extends(COCO) and key != "coco":
        # benchmarks have COCO-19 at most: a Body-29 model gets its extra joints missing
        dataset = load_dataset(
            name, root, joint_set="coco", keypoints=keypoints, smpl_path=smpl_path,
            regressors=regressors, limit=limit,
        )  # fmt: skip
        return with_missing_joints(dataset, wanted)
    if key.startswith("h36m"):
        smpl = None
        if smpl_path is not None:
            from meshgraph.bodies.smpl import SMPLModel

            smpl = SMPLModel("smpl", smpl_path, regressors=regressors)
        return Human36M(
            root,
            protocol=int(key[-1]),
            joint_set=joint_set or "h36m",
            keypoints=keypoints,
            smpl=smpl,
            limit=limit,
        )
    if key == "3dpw":
        if smpl_path is None:
            raise ValueError(
                "3DPW's ground truth is SMPL meshes: pass the folder of your licensed SMPL "
                "files (SMPL_MALE.pkl, SMPL_FEMALE.pkl; --model-path on the command line). "
                "meshgraph never downloads them."
            )
        return PW3D(
            root,
            smpl_path,
            joint_set=joint_set or "coco",
            keypoints=keypoints,
            regressors=regressors,
            limit=limit,
        )
    if key == "freihand":
        return FreiHAND(root, keypoints=keypoints, limit=limit)
    return COCOKeypoints(root, limit=limit)
