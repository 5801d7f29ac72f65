"""FreiHAND's evaluation set in its published layout (``FreiHAND_pub_v2_eval``).

The files, in ``ROOT/``, each a JSON list with one entry per image, in image order::

    evaluation_K.json      3 x 3 camera intrinsics
    evaluation_xyz.json    21 x [x, y, z]: the joints in the camera frame, metres, in the
                           order wrist, then thumb, index, middle, ring, pinky (root to tip)
    evaluation_verts.json  778 x [x, y, z]: the MANO mesh in the camera frame, metres

All hands are right hands. The row (as in Pose2Mesh and the FreiHAND challenge) is PA-MPVPE,
PA-MPJPE (after a similarity Procrustes per sample) and the F-scores at 5 mm and 15 mm.
The vertex metrics need a model that predicts MANO's 778-vertex mesh; without
``evaluation_verts.json`` only the joint metrics are scored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from meshgraph.bodies.joint_sets import HAND
from meshgraph.datasets.base import (
    BenchmarkProtocol,
    DatasetFileError,
    KeypointDataset,
    array,
    read_json,
)
from meshgraph.datasets.detections import read_detections

__all__ = ["FreiHAND"]


def _list(path: Path, per: tuple[int, int], what: str, required: bool = True) -> np.ndarray | None:
    layout = f"a JSON list of {per[0]} x {per[1]} {what}, one per image"
    if not required and not path.is_file():
        return None
    data = read_json(path, layout)
    if not isinstance(data, list) or not data:
        raise DatasetFileError(f"{path}: expected {layout}")
    return array(data, (len(data), *per), path, what)


class FreiHAND(KeypointDataset):
    """FreiHAND's evaluation images as samples of the dataset protocol (right hands).

    Args:
        root: The folder of ``evaluation_K.json``, ``evaluation_xyz.json`` and (optionally)
            ``evaluation_verts.json``.
        keypoints: ``"gt"`` (the joints projected with K) or a detections file: a list of
            21 x [x, y(, confidence)] in image order, or records ``{"image_id",
            "keypoints"}`` (the Pose2Mesh release's ``hrnet_output_on_testset.json``).
        limit: Keep only the first ``limit`` images.
        threshold: Detections below this confidence are not visible.

    Raises:
        DatasetFileError: A missing or malformed file, or files of different lengths.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        keypoints: str | os.PathLike = "gt",
        limit: int | None = None,
        threshold: float = 0.1,
    ) -> None:
        root = Path(root)
        k = _list(root / "evaluation_K.json", (3, 3), "intrinsics")
        xyz = _list(root / "evaluation_xyz.json", (21, 3), "joints (metres)")
        verts = _list(root / "evaluation_verts.json", (778, 3), "vertices (metres)", False)
        assert k is not None and xyz is not None
        sizes = {"evaluation_K.json": len(k), "evaluation_xyz.json": len(xyz)}
        if verts is not None:
            sizes["evaluation_verts.json"] = len(verts)
        if len(set(sizes.values())) != 1:
            raise DatasetFileError(f"{root}: the files have different lengths {sizes}")
        total = len(xyz)
        n = total if limit is None else min(limit, total)
        if (xyz[..., 2] <= 0).any():
            raise DatasetFileError(
                f"{root / 'evaluation_xyz.json'}: a joint lies behind the camera"
            )
        uvw = np.einsum("nij,nkj->nki", k, xyz)
        pixels = uvw[..., :2] / uvw[..., 2:]
        visible = np.ones((total, 21), dtype=bool)
        if str(keypoints) != "gt":
            det = Path(keypoints)
            data = read_json(det, "2D detections")
            records = isinstance(data, list) and bool(data) and isinstance(data[0], dict)
            pixels, visible = read_detections(
                det,
                [str(i) for i in range(total)],
                HAND,
                id_key="image_id" if records else None,
                threshold=threshold,
            )
        xyz, pixels, visible = xyz[:n], pixels[:n], visible[:n]
        ids = [f"{i:08d}" for i in range(n)]
        metrics = ("pa_mpvpe", "pa_mpjpe", "f5", "f15") if verts is not None else ("pa_mpjpe",)
        super().__init__(
            name="FreiHAND evaluation",
            joint_set=HAND,
            pixels=pixels,
            visible=visible,
            joints_3d=xyz,
            mesh_joint_set=HAND,
            mesh_joints_3d=xyz,
            vertices=None if verts is None else verts[:n],
            ids=ids,
            protocol=BenchmarkProtocol("FreiHAND", metrics),
            is_hand=True,
        )
