"""Human3.6M in the annotation layout of the Pose2Mesh and I2L-MeshNet releases.

The files, in ``ROOT/annotations/`` (one set per subject ``S``)::

    Human36M_subjectS_data.json      COCO layout: "images" with id, file_name, subject,
                                     action_idx, subaction_idx, cam_idx, frame_idx (and
                                     width, height); "annotations" with id, image_id, bbox
    Human36M_subjectS_camera.json    {cam_idx: {"R": 3x3, "t": [3] (mm), "f": [2], "c": [2]}}
    Human36M_subjectS_joint_3d.json  {action_idx: {subaction_idx: {frame_idx: 17 x [x, y, z]}}}
                                     world coordinates, mm, Human3.6M-17 order
    Human36M_subjectS_smpl_param.json  (only with SMPL) {action_idx: {subaction_idx:
                                     {frame_idx: {"pose": [72], "shape": [10], "trans": [3]}}}}

A camera maps world points to its frame as ``R @ X + t`` and to pixels as ``X / Z * f + c``.

Protocols (as in the releases): protocol 2 tests on subjects 9 and 11, protocol 1 on subject
11 (trained on 1, 5, 6, 7, 8 and on those and 9); the test set takes every 64th frame of all
four cameras. Both score the 14 joints of :data:`~meshgraph.datasets.base.H36M_EVAL_JOINTS`
after aligning the pelvis: MPJPE and PA-MPJPE (protocol 1's row is PA-MPJPE).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from meshgraph.bodies.base import BodyModel
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
    read_json,
)
from meshgraph.datasets.detections import read_detections

__all__ = ["Human36M"]

_SUBJECTS = {
    (1, "train"): (1, 5, 6, 7, 8, 9),
    (1, "test"): (11,),
    (2, "train"): (1, 5, 6, 7, 8),
    (2, "test"): (9, 11),
}
_DATA = (
    'COCO layout {"images": [{"id", "file_name", "subject", "action_idx", "subaction_idx", '
    '"cam_idx", "frame_idx"}], "annotations": [{"id", "image_id", "bbox"}]}'
)
_CAMERA = '{cam_idx: {"R": 3x3, "t": [3], "f": [2], "c": [2]}}'
_JOINTS = "{action_idx: {subaction_idx: {frame_idx: 17 x [x, y, z] (mm)}}}"
_SMPL = '{action_idx: {subaction_idx: {frame_idx: {"pose": [72], "shape": [10], "trans": [3]}}}}'


def _nested(table: Any, keys: Sequence[Any]) -> Any:
    node = table
    for key in keys:
        if not isinstance(node, dict) or str(key) not in node:
            return None
        node = node[str(key)]
    return node


class Human36M(KeypointDataset):
    """Human3.6M test (or training) frames as samples of the dataset protocol.

    Args:
        root: The dataset folder (holding ``annotations/``).
        protocol: 1 or 2.
        split: ``"test"`` (the protocol's test subjects) or ``"train"``.
        joint_set: The 2D input: ``"h36m"`` (the Human3.6M-17 joints projected, or detected)
            or ``"coco"`` (COCO-19 regressed from the SMPL fits, as the Pose2Mesh release
            does: needs ``smpl``).
        keypoints: ``"gt"`` (the exact 2D joints) or a detections file (see
            :func:`~meshgraph.datasets.detections.read_detections`; the release's
            ``absnet_output_on_testset.json``), matched to frames by image file name.
        stride: Every ``stride``-th frame (default 64 for the test split, 5 for training).
        subjects: Override the protocol's subjects.
        smpl: An SMPL body model (:class:`~meshgraph.bodies.SMPLModel`, the user's licensed
            file) for the mesh ground truth from ``_smpl_param.json`` (and COCO input).
        limit: Keep only the first ``limit`` frames (in file-name order).

    Raises:
        DatasetFileError: A missing or malformed file (the message names it and the layout).
        ValueError: A bad protocol, split, joint set or stride, or COCO input without SMPL.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        protocol: int = 2,
        split: str = "test",
        joint_set: str = "h36m",
        keypoints: str | os.PathLike = "gt",
        stride: int | None = None,
        subjects: Sequence[int] | None = None,
        smpl: BodyModel | None = None,
        limit: int | None = None,
    ) -> None:
        if (protocol, split) not in _SUBJECTS:
            raise ValueError(
                f"protocol must be 1 or 2 and split 'train' or 'test', got {protocol!r}, {split!r}"
            )
        js = get_joint_set(joint_set)
        if js.name not in ("h36m", "coco"):
            raise ValueError(f"Human3.6M gives 'h36m' or 'coco' input, not {js.name!r}")
        if js.name == "coco" and smpl is None:
            raise ValueError(
                "COCO input on Human3.6M is regressed from the SMPL fits: pass smpl= (an "
                "SMPLModel built from your licensed SMPL file), or use joint_set='h36m'"
            )
        stride = stride if stride is not None else (64 if split == "test" else 5)
        if stride < 1:
            raise ValueError(f"stride must be positive, got {stride}")
        root = Path(root)
        annot = root / "annotations"
        if not annot.is_dir():
            raise DatasetFileError(
                f"no annotations folder at {annot}: Human3.6M needs ROOT/annotations/"
                "Human36M_subjectS_{data,camera,joint_3d}.json (the Pose2Mesh release's layout)"
            )
        subjects = tuple(subjects) if subjects is not None else _SUBJECTS[(protocol, split)]
        frames: list[dict[str, Any]] = []
        for s in subjects:
            frames += self._subject(annot, int(s), stride, smpl is not None)
        frames.sort(key=lambda f: f["file_name"])
        if limit is not None:
            frames = frames[:limit]
        if not frames:
            raise DatasetFileError(
                f"{annot}: no frames of subjects {list(subjects)} at stride {stride}"
            )
        joints = np.stack([f["joints"] for f in frames]) / 1000.0  # camera frame, metres
        focal = np.stack([f["f"] for f in frames])[:, None]
        centre = np.stack([f["c"] for f in frames])[:, None]
        names = [f["file_name"] for f in frames]
        vertices = None
        joints_3d = joints
        if smpl is not None:
            vertices = self._meshes(smpl, frames)
        if js.name == "coco":
            assert vertices is not None
            joints_3d = (
                smpl.regress_joints(  # type: ignore[union-attr]
                    _tensor(vertices), "coco"
                )
                .double()
                .numpy()
            )
        pixels = project_pinhole(joints_3d, focal, centre)
        visible = np.ones(pixels.shape[:2], dtype=bool)
        if str(keypoints) != "gt":
            pixels, visible = read_detections(keypoints, names, js)
        self.frames = frames
        self.protocol_number = protocol
        super().__init__(
            name=f"Human3.6M P{protocol} {split}",
            joint_set=js,
            pixels=pixels,
            visible=visible,
            joints_3d=joints_3d,
            mesh_joint_set=H36M,
            mesh_joints_3d=joints,
            vertices=vertices,
            ids=names,
            protocol=BenchmarkProtocol(
                f"Human3.6M P{protocol}",
                ("mpjpe", "pa_mpjpe") if protocol == 2 else ("pa_mpjpe", "mpjpe"),
                H36M_EVAL_JOINTS,
            ),
        )

    @staticmethod
    def _subject(annot: Path, s: int, stride: int, with_smpl: bool) -> list[dict[str, Any]]:
        stem = annot / f"Human36M_subject{s}"
        data_path = Path(f"{stem}_data.json")
        by_id, anns = images_and_annotations(data_path, _DATA)
        cams_path = Path(f"{stem}_camera.json")
        cams = read_json(cams_path, _CAMERA)
        joints_path = Path(f"{stem}_joint_3d.json")
        joints = read_json(joints_path, _JOINTS)
        smpl_path = Path(f"{stem}_smpl_param.json")
        params = read_json(smpl_path, _SMPL) if with_smpl else None
        cameras: dict[str, tuple[np.ndarray, ...]] = {}
        out = []
        for ann in anns:
            img = image_of(ann, by_id, data_path, _DATA)
            keys = [
                field(img, k, data_path, _DATA)
                for k in ("action_idx", "subaction_idx", "frame_idx")
            ]
            if int(keys[2]) % stride:
                continue
            cam = str(field(img, "cam_idx", data_path, _DATA))
            if cam not in cameras:
                c = field(cams, cam, cams_path, _CAMERA)
                cameras[cam] = (
                    array(field(c, "R", cams_path, _CAMERA), (3, 3), cams_path, "R"),
                    array(field(c, "t", cams_path, _CAMERA), (3,), cams_path, "t"),
                    array(field(c, "f", cams_path, _CAMERA), (2,), cams_path, "f"),
                    array(field(c, "c", cams_path, _CAMERA), (2,), cams_path, "c"),
                )
            r, t, f, c = cameras[cam]
            world = _nested(joints, keys)
            if world is None:
                raise DatasetFileError(
                    f"{joints_path} has no joints for action {keys[0]}, subaction {keys[1]}, "
                    f"frame {keys[2]} (expected {_JOINTS})"
                )
            world = array(world, (17, 3), joints_path, "the joints of a frame")
            frame: dict[str, Any] = {
                "file_name": str(field(img, "file_name", data_path, _DATA)),
                "joints": world @ r.T + t,
                "R": r,
                "t": t,
                "f": f,
                "c": c,
                "subject": s,
            }
            if params is not None:
                p = _nested(params, keys)
                if p is None:  # the release has no fit for some frames: they are skipped
                    continue
                frame["smpl"] = {
                    "pose": array(field(p, "pose", smpl_path, _SMPL), (72,), smpl_path, "pose"),
                    "shape": array(
                        field(p, "shape", smpl_path, _SMPL), (None,), smpl_path, "shape"
                    ),
                    "trans": array(field(p, "trans", smpl_path, _SMPL), (3,), smpl_path, "trans"),
                }
            out.append(frame)
        return out

    @staticmethod
    def _meshes(smpl: BodyModel, frames: list[dict[str, Any]]) -> np.ndarray:
        """SMPL meshes in each frame's camera (metres), as the releases place them."""
        import torch

        from meshgraph.geometry import axis_angle_to_matrix, matrix_to_axis_angle

        out = []
        for fr in frames:
            p = fr["smpl"]
            pose = torch.as_tensor(p["pose"], dtype=torch.float64).view(1, -1, 3).clone()
            shape = torch.as_tensor(p["shape"], dtype=torch.float64).view(1, -1)
            if bool((shape.abs() > 3).any()):  # the releases' rule for failed fits
                shape = torch.zeros_like(shape)
            nb = getattr(smpl, "num_betas", shape.shape[1])
            shape = torch.nn.functional.pad(shape, (0, max(0, nb - shape.shape[1])))[:, :nb]
            r = torch.as_tensor(fr["R"], dtype=torch.float64)
            pose[0, 0] = matrix_to_axis_angle(r @ axis_angle_to_matrix(pose[0, 0]))
            verts = smpl(pose.to(smpl.dtype), shape.to(smpl.dtype)).double()[0]
            # the root joint (fixed by the shape) turns about itself, not about the origin:
            # move it to where the world-to-camera transform puts the fitted root
            rest = smpl(torch.zeros_like(pose).to(smpl.dtype), shape.to(smpl.dtype)).double()[0]
            root = smpl.model.J_regressor[0].double() @ rest  # type: ignore[union-attr]
            trans = torch.as_tensor(p["trans"], dtype=torch.float64)
            shift = r @ trans + torch.as_tensor(fr["t"], dtype=torch.float64) / 1000.0
            shift = shift - root + r @ root
            out.append((verts + shift).numpy())
        return np.stack(out)


def _tensor(a: np.ndarray) -> Any:
    import torch

    return torch.as_tensor(a)
