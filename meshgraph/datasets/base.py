"""What every real-dataset loader shares: reading the published files, and the samples.

A loader reads a dataset's own files (JSON, pickle) into arrays once, then serves samples that
follow the dataset protocol (:mod:`meshgraph.data.protocol`): the normalised 2D input, its
visibility and pixels, and whatever ground truth the dataset has, root-relative, in camera
axes and metres. Keys a dataset cannot provide (3D joints of COCO photos, meshes without the
licensed SMPL files) are left out, and :func:`~meshgraph.training.evaluate.evaluate_benchmark`
scores what is there.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from meshgraph.bodies.joint_sets import JointSet, get_joint_set
from meshgraph.geometry import normalize_keypoints

__all__ = [
    "BenchmarkProtocol",
    "DatasetFileError",
    "KeypointDataset",
    "read_json",
    "with_missing_joints",
]


class DatasetFileError(ValueError):
    """A dataset file that is missing, unreadable or not in the published layout.

    The message names the file and the layout that was expected.
    """


def read_json(path: str | os.PathLike, layout: str) -> Any:
    """Read one JSON file of a dataset.

    Args:
        path: The file.
        layout: What the file should hold (said in the error message).

    Raises:
        DatasetFileError: If the file is missing or not valid JSON (the message names the file
            and ``layout``).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetFileError(f"dataset file not found: {path} (expected {layout})")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DatasetFileError(f"{path} is not readable JSON ({err}); expected {layout}") from err


def field(record: Any, key: str, path: Path, layout: str) -> Any:
    """``record[key]``, or a :class:`DatasetFileError` naming the file, the key and the layout."""
    if not isinstance(record, dict) or key not in record:
        raise DatasetFileError(f"{path}: an entry has no {key!r} (expected {layout})")
    return record[key]


def images_and_annotations(path: Path, layout: str) -> tuple[dict[Any, Any], list[Any]]:
    """A COCO-style file's ``images`` (by their ``id``) and ``annotations``.

    COCO, 3DPW and Human3.6M (the Pose2Mesh release) share this shape:
    ``{"images": [{"id", ...}], "annotations": [{"image_id", ...}]}``.

    Raises:
        DatasetFileError: A missing or unreadable file, missing keys, or lists that are not
            lists (the message names the file and ``layout``).
    """
    data = read_json(path, layout)
    images = field(data, "images", path, layout)
    anns = field(data, "annotations", path, layout)
    if not isinstance(images, list) or not isinstance(anns, list):
        raise DatasetFileError(
            f"{path}: 'images' and 'annotations' must be lists (expected {layout})"
        )
    return {field(im, "id", path, layout): im for im in images}, anns


def image_of(ann: Any, images: dict[Any, Any], path: Path, layout: str) -> Any:
    """The image an annotation refers to, or an error naming the file and the annotation."""
    image_id = field(ann, "image_id", path, layout)
    if image_id not in images:
        raise DatasetFileError(
            f"{path}: annotation {ann.get('id')} refers to image {image_id}, which is not in "
            "'images'"
        )
    return images[image_id]


def array(value: Any, shape: tuple[int | None, ...], path: Path, what: str) -> np.ndarray:
    """A float64 array of ``shape`` (``None``: any size) from JSON numbers, or a clear error."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise DatasetFileError(f"{path}: {what} must be numbers, got {str(value)[:60]}") from err
    if arr.ndim != len(shape) or any(
        s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)
    ):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise DatasetFileError(f"{path}: {what} must have shape {want}, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise DatasetFileError(f"{path}: {what} contains NaN or inf")
    return arr


@dataclass(frozen=True)
class BenchmarkProtocol:
    """How a dataset is scored: the paper's table row.

    Attributes:
        name: The row's name, e.g. ``"Human3.6M P2"``.
        metrics: The metrics of the row, in order (keys of
            :func:`~meshgraph.training.evaluate.evaluate_benchmark`'s result).
        eval_joints: Indices of the mesh joint set that are scored (``None``: all), after
            aligning the root.
    """

    name: str
    metrics: tuple[str, ...]
    eval_joints: tuple[int, ...] | None = None


#: Human3.6M-17 without pelvis, torso and nose: the 14 joints of the Human3.6M and 3DPW rows.
H36M_EVAL_JOINTS: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 8, 10, 11, 12, 13, 14, 15, 16)


class KeypointDataset(Dataset):
    """Samples of the dataset protocol from arrays that a loader has read.

    Args:
        name: The dataset's name.
        joint_set: The 2D input's joint set.
        pixels: ``(N, J, 2)`` 2D keypoints in pixels.
        visible: ``(N, J)`` bool: the joints that count (a detector's confidence above its
            threshold, COCO's ``v > 0``).
        joints_3d: ``(N, J, 3)`` 3D input joints in camera axes and metres, or ``None``.
        mesh_joint_set: The mesh joint set of ``mesh_joints_3d``.
        mesh_joints_3d: ``(N, J', 3)`` ground-truth mesh joints (camera axes, metres), or
            ``None``.
        vertices: ``(N, V, 3)`` ground-truth vertices (camera axes, metres), a function
            giving them for a list of indices (meshes computed per batch), or ``None``.
        num_vertices: ``V`` when ``vertices`` is a function.
        ids: One name per sample (image file, annotation id), for messages and results.
        protocol: How the dataset is scored.
        is_hand: Hands (F-scores are reported).
        isotropic_input: Normalise the keypoints with one spread for both axes, for a model
            whose ``config.isotropic_input`` is set (see :attr:`isotropic_input`).
        exact: The 2D keypoints are exact (the ground truth's projection), not a detector's;
            every sample's ``exact`` says so, and :func:`~meshgraph.training.evaluate` tells a
            model trained with ``exactness_input``. Settable later (:attr:`exact`).

    Raises:
        ValueError: On arrays of mismatched shapes, or a sample whose 2D input cannot be
            normalised (fewer than 2 visible joints; the message names the sample).
    """

    def __init__(
        self,
        *,
        name: str,
        joint_set: str | JointSet,
        pixels: np.ndarray,
        visible: np.ndarray,
        joints_3d: np.ndarray | None = None,
        mesh_joint_set: str | JointSet | None = None,
        mesh_joints_3d: np.ndarray | None = None,
        vertices: np.ndarray | Callable[[Sequence[int]], Tensor] | None = None,
        num_vertices: int | None = None,
        ids: Sequence[str] | None = None,
        protocol: BenchmarkProtocol | None = None,
        is_hand: bool = False,
        isotropic_input: bool = False,
        exact: bool = False,
    ) -> None:
        self.name = name
        self.exact = exact
        self.joint_set = get_joint_set(joint_set)
        self.mesh_joint_set = None if mesh_joint_set is None else get_joint_set(mesh_joint_set)
        self.protocol = protocol or BenchmarkProtocol(name, ("mpjpe", "pa_mpjpe"))
        self.is_hand = is_hand
        n, j = len(pixels), self.joint_set.num_joints
        if pixels.shape != (n, j, 2):
            raise ValueError(f"{name}: pixels must have shape (N, {j}, 2), got {pixels.shape}")
        if visible.shape != (n, j):
            raise ValueError(f"{name}: visible must have shape ({n}, {j}), got {visible.shape}")
        self.ids = [str(i) for i in (ids if ids is not None else range(n))]
        if len(self.ids) != n:
            raise ValueError(f"{name}: {len(self.ids)} ids for {n} samples")
        self.pixels = torch.as_tensor(pixels, dtype=torch.float32)
        self.visible = torch.as_tensor(visible, dtype=torch.bool)
        self._isotropic_input = bool(isotropic_input)
        self._normalise()
        self.root_3d: Tensor | None = None
        self.joints_3d = None
        if joints_3d is not None:
            if joints_3d.shape != (n, j, 3):
                raise ValueError(f"{name}: joints_3d must be (N, {j}, 3), got {joints_3d.shape}")
            jt = torch.as_tensor(joints_3d, dtype=torch.float64)
            self.joints_3d = (jt - jt[:, self.joint_set.root, None]).float()
        self.mesh_joints_3d = None
        if mesh_joints_3d is not None:
            if self.mesh_joint_set is None:
                raise ValueError(f"{name}: mesh_joints_3d needs mesh_joint_set")
            jm = self.mesh_joint_set.num_joints
            if mesh_joints_3d.shape != (n, jm, 3):
                raise ValueError(
                    f"{name}: mesh_joints_3d must be (N, {jm}, 3), got {mesh_joints_3d.shape}"
                )
            mt = torch.as_tensor(mesh_joints_3d, dtype=torch.float64)
            self.root_3d = mt[:, self.mesh_joint_set.root].clone()
            self.mesh_joints_3d = (mt - self.root_3d[:, None]).float()
        self._vertices = vertices
        if vertices is not None and not callable(vertices):
            if vertices.ndim != 3 or len(vertices) != n or vertices.shape[2] != 3:
                raise ValueError(f"{name}: vertices must be (N, V, 3), got {vertices.shape}")
            num_vertices = vertices.shape[1]
        self.num_vertices = num_vertices if vertices is not None else None
        if vertices is not None and self.root_3d is None:
            raise ValueError(f"{name}: vertices need mesh_joints_3d (their root)")

    def _normalise(self) -> None:
        """``keypoints_2d`` and ``box`` from ``pixels`` and ``visible``."""
        n, j = self.pixels.shape[:2]
        keypoints, boxes = torch.empty(n, j, 2), torch.empty(n, 4)
        iso = self._isotropic_input
        for start in range(0, n, 4096):
            sl = slice(start, start + 4096)
            try:
                kp, box = normalize_keypoints(
                    self.pixels[sl].double(), self.visible[sl], isotropic=iso
                )
            except ValueError:
                for i in range(start, min(start + 4096, n)):
                    try:
                        normalize_keypoints(
                            self.pixels[i : i + 1].double(), self.visible[i : i + 1]
                        )
                    except ValueError as err:
                        raise ValueError(f"{self.name}, sample {self.ids[i]}: {err}") from err
                raise
            keypoints[sl], boxes[sl] = kp.float(), box.float()
        self.keypoints_2d, self.box = keypoints, boxes

    @property
    def isotropic_input(self) -> bool:
        """Whether ``keypoints_2d`` is normalised with one spread for both axes.

        As :attr:`Pose2MeshConfig.isotropic_input <meshgraph.models.Pose2MeshConfig>`: set
        it to the model's before evaluating (setting it normalises the keypoints again).
        """
        return self._isotropic_input

    @isotropic_input.setter
    def isotropic_input(self, value: bool) -> None:
        if bool(value) != self._isotropic_input:
            self._isotropic_input = bool(value)
            self._normalise()

    @property
    def exact(self) -> bool:
        """Whether the 2D keypoints are exact (each sample's ``exact``), not a detector's."""
        return self._exact

    @exact.setter
    def exact(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"{self.name}: exact must be a bool, got {value!r}")
        self._exact = value

    @property
    def has_vertices(self) -> bool:
        """Whether samples carry ground-truth vertices."""
        return self._vertices is not None

    def __len__(self) -> int:
        """Number of samples."""
        return len(self.pixels)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """One sample (see :mod:`meshgraph.data.protocol` for the keys)."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {self.name} of {len(self)}")
        batch = self.__getitems__([index % len(self)])
        return {k: v[0] for k, v in batch.items()}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Tensor]:
        """A batch of samples at once."""
        idx = torch.as_tensor(list(indices), dtype=torch.long)
        out = {
            "keypoints_2d": self.keypoints_2d[idx],
            "visible": self.visible[idx],
            "keypoints_2d_pixels": self.pixels[idx],
            "box": self.box[idx],
            "exact": torch.full((len(idx),), self._exact, dtype=torch.bool),
        }
        if self.joints_3d is not None:
            out["joints_3d"] = self.joints_3d[idx]
        if self.mesh_joints_3d is not None and self.root_3d is not None:
            out["mesh_joints_3d"] = self.mesh_joints_3d[idx]
            out["root"] = self.root_3d[idx].float()
        if self._vertices is not None and self.root_3d is not None:
            if callable(self._vertices):
                verts = torch.as_tensor(self._vertices(idx.tolist()), dtype=torch.float64)
            else:
                verts = torch.as_tensor(self._vertices[idx.numpy()], dtype=torch.float64)
            out["vertices"] = (verts - self.root_3d[idx, None]).float()
        return out

    def __repr__(self) -> str:
        parts = [f"{len(self)} samples", f"{self.joint_set.name} input"]
        if self.mesh_joints_3d is not None and self.mesh_joint_set is not None:
            parts.append(f"{self.mesh_joint_set.name} 3D joints")
        if self.has_vertices:
            parts.append(f"{self.num_vertices}-vertex meshes")
        if self._exact:
            parts.append("exact 2D")
        return f"{type(self).__name__}({self.name!r}: {', '.join(parts)})"


def project_pinhole(points: np.ndarray, focal: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Pixels of camera-frame points: ``x / z * f + c`` (float64, ``(..., 3) -> (..., 2)``).

    Raises:
        ValueError: If a point is not in front of the camera.
    """
    z = points[..., 2:3]
    if not (z > 0).all():
        raise ValueError("a 3D point lies on or behind the camera plane (z <= 0)")
    return points[..., :2] / z * focal + centre


def with_missing_joints(dataset: KeypointDataset, joint_set: str | JointSet) -> KeypointDataset:
    """The dataset as input for a model whose joint set extends the dataset's.

    A Body-29 model evaluated on a benchmark that has COCO-19 keypoints: the joints the
    dataset lacks come as missing (``visible`` False, normalised coordinates 0), at the pixels
    of the joint each hangs from by a bone, as :func:`~meshgraph.keypoint_formats.to_body29`
    gives them. The 3D input joints are dropped (the dataset has none for the new joints), so
    PoseNet's MPJPE is not reported; the mesh metrics are unchanged in meaning.

    Raises:
        ValueError: If ``joint_set`` does not start with the dataset's joints, in order.
    """
    import copy

    new, old = get_joint_set(joint_set), dataset.joint_set
    if not new.extends(old):
        raise ValueError(
            f"the {new.name} joint set does not extend {dataset.name}'s {old.name} keypoints"
        )
    parent = new.anchors(old.num_joints)
    out = copy.copy(dataset)
    n = len(dataset)
    out.joint_set = new
    out.pixels = torch.cat([dataset.pixels, dataset.pixels[:, parent]], dim=1)
    out.visible = torch.cat([dataset.visible, torch.zeros(n, len(parent), dtype=torch.bool)], 1)
    out.keypoints_2d = torch.cat([dataset.keypoints_2d, torch.zeros(n, len(parent), 2)], dim=1)
    out.joints_3d = None
    return out
