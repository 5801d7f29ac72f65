"""3DPW in the annotation layout of the Pose2Mesh release.

The files, in ``ROOT/data/`` (or ``ROOT/``)::

    3DPW_latest_test.json    COCO layout: "images" with id, file_name, sequence and
                             "cam_param": {"focal": [2], "princpt": [2]}; "annotations" with
                             id, image_id, person_id, bbox and "smpl_param": {"pose": [72],
                             "shape": [10], "trans": [3], "gender": "male" | "female"}
    darkpose_3dpw_testset_output.json   (detected 2D) [{"annotation_id", "keypoints":
                             17 x [x, y, confidence]}] in COCO-17 order

The SMPL parameters place the mesh in the camera frame (metres). The ground truth is
therefore the SMPL mesh itself, and it needs the user's licensed SMPL files
(``SMPL_MALE.pkl``, ``SMPL_FEMALE.pkl``, or ``SMPL_NEUTRAL.pkl`` with ``gender="neutral"``):
meshgraph never downloads them. The 3DPW row (as in Pose2Mesh) is MPJPE and PA-MPJPE on the 14
Human3.6M joints regressed from the meshes (pelvis aligned), and MPVPE, which needs a model
that predicts SMPL's 6,890-vertex mesh.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meshgraph.bodies.joint_sets import H36M, get_joint_set
from meshgraph.datasets.base import (
    H36M_EVAL_JOINTS,
    BenchmarkProtocol,
    DatasetFileError,
    KeypointDataset,
    array,
    field,
    image_of,
    images_and_annotations,
    project_pinhole,
)
from meshgraph.datasets.detections import read_detections

__all__ = ["PW3D"]

_ANNOT = (
    'COCO layout {"images": [{"id", "file_name", "sequence", "cam_param": {"focal", '
    '"princpt"}}], "annotations": [{"id", "image_id", "person_id", "smpl_param": {"pose", '
    '"shape", "trans", "gender"}}]}'
)


def _find(root: Path, name: str) -> Path:
    for p in (root / "data" / name, root / name):
        if p.is_file():
            return p
    return root / "data" / name


class PW3D(KeypointDataset):
    """3DPW (test, validation or train split) as samples of the dataset protocol.

    Args:
        root: The dataset folder (holding ``data/3DPW_latest_SPLIT.json``).
        smpl_path: The folder (or file) of the licensed SMPL models.
        split: ``"test"``, ``"validation"`` or ``"train"``.
        joint_set: The 2D input: ``"coco"`` (COCO-19, the Pose2Mesh body input) or
            ``"h36m"``; the exact 2D joints are regressed from the SMPL meshes.
        keypoints: ``"gt"``, ``"detected"`` (the release's darkpose file) or a detections file
            matched by ``annotation_id``.
        gender: ``"dataset"`` (each person's own, as the benchmark does) or ``"neutral"``.
        regressors: Joint regressors for the SMPL model by joint-set name (``.npy`` paths or
            arrays), e.g. the release's ``J_regressor_h36m_correct.npy``.
        limit: Keep only the first ``limit`` annotations (after sorting by person and image).
        threshold: Detections below this confidence are not visible.

    Raises:
        DatasetFileError: A missing or malformed file (named, with the layout expected).
        FileNotFoundError: The SMPL files are missing (from :class:`~meshgraph.bodies.SMPLModel`).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        smpl_path: str | os.PathLike,
        *,
        split: str = "test",
        joint_set: str = "coco",
        keypoints: str | os.PathLike = "gt",
        gender: str = "dataset",
        regressors: Mapping[str, Any] | None = None,
        limit: int | None = None,
        threshold: float = 0.1,
    ) -> None:
        from meshgraph.bodies.smpl import SMPLModel

        if split not in ("test", "validation", "train"):
            raise ValueError(f"split must be 'test', 'validation' or 'train', got {split!r}")
        if gender not in ("dataset", "neutral"):
            raise ValueError(f"gender must be 'dataset' or 'neutral', got {gender!r}")
        js = get_joint_set(joint_set)
        if js.name not in ("coco", "h36m"):
            raise ValueError(f"3DPW gives 'coco' or 'h36m' input, not {js.name!r}")
        root = Path(root)
        path = _find(root, f"3DPW_latest_{split}.json")
        by_id, anns = images_and_annotations(path, _ANNOT)
        records = []
        for ann in anns:
            img = image_of(ann, by_id, path, _ANNOT)
            cam = field(img, "cam_param", path, _ANNOT)
            p = field(ann, "smpl_param", path, _ANNOT)
            g = str(field(p, "gender", path, _ANNOT)) if gender == "dataset" else "neutral"
            if g not in ("male", "female", "neutral"):
                raise DatasetFileError(f"{path}: gender must be male, female or neutral, got {g!r}")
            name = f"{field(img, 'sequence', path, _ANNOT)}/{field(img, 'file_name', path, _ANNOT)}"
            records.append(
                {
                    "id": str(field(ann, "id", path, _ANNOT)),
                    "person": int(field(ann, "person_id", path, _ANNOT)),
                    "image": name,
                    "focal": array(field(cam, "focal", path, _ANNOT), (2,), path, "focal"),
                    "princpt": array(field(cam, "princpt", path, _ANNOT), (2,), path, "princpt"),
                    "pose": array(field(p, "pose", path, _ANNOT), (72,), path, "pose"),
                    "shape": array(field(p, "shape", path, _ANNOT), (None,), path, "shape"),
                    "trans": array(field(p, "trans", path, _ANNOT), (3,), path, "trans"),
                    "gender": g,
                }
            )
        records.sort(key=lambda r: (r["person"], r["image"]))
        if limit is not None:
            records = records[:limit]
        if not records:
            raise DatasetFileError(f"{path} has no annotations")
        self.records = records
        self._models = {
            g: SMPLModel(
                "smpl", smpl_path, gender=g, regressors=dict(regressors or {}), dtype=torch.float64
            )
            for g in sorted({r["gender"] for r in records})
        }
        n = len(records)
        mesh_joints = np.empty((n, H36M.num_joints, 3))
        joints_3d = np.empty((n, js.num_joints, 3))
        for start in range(0, n, 256):
            idx = list(range(start, min(start + 256, n)))
            verts = self.meshes(idx)
            for g, model in self._models.items():
                sel = [k for k, i in enumerate(idx) if records[i]["gender"] == g]
                if not sel:
                    continue
                v = verts[sel]
                rows = [idx[k] for k in sel]
                mesh_joints[rows] = model.regress_joints(v, "h36m").numpy()
                joints_3d[rows] = model.regress_joints(v, js.name).numpy()
        focal = np.stack([r["focal"] for r in records])[:, None]
        centre = np.stack([r["princpt"] for r in records])[:, None]
        ids = [r["id"] for r in records]
        if str(keypoints) == "gt":
            pixels = project_pinhole(joints_3d, focal, centre)
            visible = np.ones(pixels.shape[:2], dtype=bool)
        else:
            det = (
                _find(root, f"darkpose_3dpw_{split}set_output.json")
                if str(keypoints) == "detected"
                else Path(keypoints)
            )
            pixels, visible = read_detections(
                det, ids, js, id_key="annotation_id", threshold=threshold
            )
        super().__init__(
            name=f"3DPW {split}",
            joint_set=js,
            pixels=pixels,
            visible=visible,
            joints_3d=joints_3d,
            mesh_joint_set=H36M,
            mesh_joints_3d=mesh_joints,
            vertices=self.meshes,
            num_vertices=next(iter(self._models.values())).num_vertices,
            ids=ids,
            protocol=BenchmarkProtocol("3DPW", ("mpjpe", "pa_mpjpe", "mpvpe"), H36M_EVAL_JOINTS),
        )

    def meshes(self, indices: Sequence[int]) -> torch.Tensor:
        """``(len(indices), 6890, 3)`` ground-truth SMPL meshes in the camera frame (metres)."""
        recs = [self.records[i] for i in indices]
        any_model = next(iter(self._models.values()))
        out = torch.empty(len(recs), any_model.num_vertices, 3, dtype=torch.float64)
        for g, model in self._models.items():
            sel = [k for k, r in enumerate(recs) if r["gender"] == g]
            if not sel:
                continue
            nb = model.num_betas
            shape = np.zeros((len(sel), nb))
            for row, k in enumerate(sel):
                s = recs[k]["shape"][:nb]
                shape[row, : len(s)] = s
            pose = torch.as_tensor(np.stack([recs[k]["pose"] for k in sel])).view(-1, 24, 3)
            trans = torch.as_tensor(np.stack([recs[k]["trans"] for k in sel]))
            out[sel] = model(pose, torch.as_tensor(shape), trans).double()
        return out
