"""SMPL, SMPL-H and MANO through smplx, for users who have the licensed model files.

meshgraph never downloads these files. SMPL comes from smpl.is.tue.mpg.de, SMPL-H and MANO
from mano.is.tue.mpg.de, each after accepting its licence. Point ``model_path`` at the file
itself or at the folder holding it under smplx's names (``SMPL_NEUTRAL.pkl``,
``SMPLH_MALE.pkl``/``.npz``, ``MANO_RIGHT.pkl``/``.npz``).

Parameters:

* ``pose``: ``(B, J, 3)`` axis-angle, joint 0 the global orientation; ``J`` = 24 (SMPL),
  52 (SMPL-H: 22 body + 2 x 15 hand joints), 16 (MANO). Hands use full axis-angle (no PCA), and
  a zero hand pose is the flat hand.
* ``shape``: ``(B, num_betas)`` shape coefficients (default 10); ``None`` = mean shape.
* ``translation``: ``(B, 3)``.

Joint sets: MANO provides ``"hand"`` (its 16 regressed joints in Hand-21 order, plus the
fingertip vertices smplx uses). SMPL and SMPL-H on their 6,890-vertex mesh provide ``"coco"``
and ``"h36m"`` built from their own joints and smplx's face-keypoint vertices:

* COCO: nose, eyes and ears are smplx's keypoint vertices; shoulders, elbows, wrists, hips,
  knees and ankles are SMPL's joints; pelvis and neck are the mid-hips and mid-shoulders.
* Human3.6M: SMPL's hip, knee, ankle, shoulder, elbow and wrist joints; Pelvis = mid-hips,
  Neck = mid-shoulders, Torso = their midpoint, Nose = the nose vertex, Head = the head-top
  vertex (the head vertex farthest from the neck along the neck-to-head direction at rest).

These approximate the regressors released with Pose2Mesh and SPIN (``J_regressor_h36m.npy``,
``J_regressor_coco.npy``, fitted to marker data); pass those in ``regressors`` (e.g.
``{"h36m": "J_regressor_h36m_correct.npy"}``, a ``(17, 6890)`` array) to use them instead.
Any joint set can be given that way, for any mesh size.

Rigs: :attr:`SMPLModel.bone_labels` names the pose joints as smplx does (``pelvis``,
``left_hip``, ..., ``right_thumb3``; MANO: ``right_wrist``, ``right_index1``, ...),
:attr:`~SMPLModel.bone_parents` is the kinematic tree and :meth:`~SMPLModel.rest_joints` the
rest joints, which is what the synthetic data generator needs (its pose tables reach these rigs
through :data:`meshgraph.data.poses.BONE_MAPS`). SMPL and SMPL-H are y-up and face +z;
:attr:`~SMPLModel.world_rotation` turns them into meshgraph's z-up world.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from meshgraph._optional import require
from meshgraph.bodies.base import BodyModel
from meshgraph.bodies.joint_sets import JointSet, get_joint_set
from meshgraph.io import check_pickle, load_array, load_arrays

__all__ = ["SMPLModel"]

_KINDS = {"smpl": 24, "smplh": 52, "mano": 16}
_WHERE = {
    "smpl": "smpl.is.tue.mpg.de (SMPL, after accepting its licence)",
    "smplh": "mano.is.tue.mpg.de (SMPL-H, after accepting its licence)",
    "mano": "mano.is.tue.mpg.de (MANO, after accepting its licence)",
}
# MANO's joints in smplx order: wrist, index 1-3, middle 1-3, pinky 1-3, ring 1-3, thumb 1-3.
_MANO_TO_HAND21 = {"thumb": (13, 14, 15), "index": (1, 2, 3), "middle": (4, 5, 6),
                   "ring": (10, 11, 12), "pinky": (7, 8, 9)}  # fmt: skip
_BODY_JOINTS = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)  # fmt: skip
# smplx's hand joint order: index, middle, pinky, ring, thumb; three joints each
_HAND_JOINTS = tuple(f"{f}{k}" for f in ("index", "middle", "pinky", "ring", "thumb")
                     for k in (1, 2, 3))  # fmt: skip
_SMPL_VERTICES = 6890
# meshgraph's world: x = the subject's left, y = backwards, z = up; SMPL: y up, facing +z
_Y_UP_TO_Z_UP = ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, 1.0, 0.0))


def _labels(kind: str, is_rhand: bool) -> list[str]:
    if kind == "smpl":
        return [*_BODY_JOINTS, "left_hand", "right_hand"]
    if kind == "smplh":
        hands = [f"{side}_{j}" for side in ("left", "right") for j in _HAND_JOINTS]
        return [*_BODY_JOINTS, *hands]
    side = "right" if is_rhand else "left"
    return [f"{side}_wrist", *(f"{side}_{j}" for j in _HAND_JOINTS)]


def _expected_file(kind: str, model_path: Path, gender: str, is_rhand: bool) -> Path:
    if not model_path.is_dir():
        return model_path
    if kind == "smpl":
        names = [f"SMPL_{gender.upper()}.pkl"]
    elif kind == "smplh":
        names = [f"SMPLH_{gender.upper()}.pkl", f"SMPLH_{gender.upper()}.npz"]
    else:
        side = "RIGHT" if is_rhand else "LEFT"
        names = [f"MANO_{side}.pkl", f"MANO_{side}.npz"]
    for name in names:
        if (model_path / name).exists():
            return model_path / name
    return model_path / names[0]


def _check_model_file(path: Path, kind: str) -> None:
    """Refuse a model file that could run code when smplx unpickles it.

    ``.pkl``: unpickled first with an allow-list (arrays, sparse matrices, chumpy objects);
    ``.npz``: every array read with ``allow_pickle=False`` (smplx reads it with pickles
    allowed).
    """
    what = f"{kind.upper()} model file"
    if path.suffix.lower() == ".npz":
        load_arrays(path, what=what)
    else:
        check_pickle(path, what=what)


class SMPLModel(BodyModel):
    """SMPL, SMPL-H or MANO behind the :class:`BodyModel` interface (needs smplx).

    Args:
        kind: ``"smpl"``, ``"smplh"`` or ``"mano"``.
        model_path: The model file, or a folder holding it under smplx's file name.
        gender: ``"neutral"``, ``"male"`` or ``"female"`` (SMPL, SMPL-H).
        is_rhand: Right (default) or left hand (MANO).
        num_betas: Number of shape coefficients.
        regressors: Extra joint regressors by joint-set name: ``(J, V)`` arrays or ``.npy``
            paths.
        dtype: Floating dtype.
        **smplx_kwargs: Passed to the smplx constructor (e.g. ``vertex_ids``).

    Raises:
        FileNotFoundError: If the model file is missing (the message says which file is
            expected where, and where it is obtained).
        ImportError: If smplx is not installed.
        ValueError: If the model file is empty or corrupt, or holds Python objects other than
            arrays (:class:`~meshgraph.io.UnsafeFileError`: checked before smplx unpickles
            it, so a crafted file cannot run code).
    """

    def __init__(
        self,
        kind: str,
        model_path: str | os.PathLike,
        *,
        gender: str = "neutral",
        is_rhand: bool = True,
        num_betas: int = 10,
        regressors: dict[str, Any] | None = None,
        dtype: torch.dtype = torch.float32,
        **smplx_kwargs: Any,
    ) -> None:
        super().__init__()
        kind = kind.lower()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}")
        path = _expected_file(kind, Path(model_path), gender, is_rhand)
        if not path.is_file():
            raise FileNotFoundError(
                f"{kind.upper()} model file not found: expected {path}. These files are "
                f"licensed and never downloaded by meshgraph; get them from {_WHERE[kind]} "
                "and pass the file or its folder as model_path."
            )
        smplx = require("smplx")
        _check_model_file(path, kind)
        self.kind = kind
        self.name = kind
        self.num_pose_joints = _KINDS[kind]
        self.num_betas = num_betas
        ext = path.suffix.lstrip(".")
        common: dict[str, Any] = {"num_betas": num_betas, "dtype": dtype, "batch_size": 1}
        if kind == "smpl":
            smplx_kwargs.setdefault("vertex_ids", _UnusedKeypointIds())
            model = smplx.SMPL(str(path), gender=gender, **common, **smplx_kwargs)
        elif kind == "smplh":
            smplx_kwargs.setdefault("vertex_ids", _UnusedKeypointIds())
            model = smplx.SMPLH(str(path), gender=gender, ext=ext, use_pca=False,
                                flat_hand_mean=True, **common, **smplx_kwargs)  # fmt: skip
        else:
            model = smplx.MANO(str(path), is_rhand=is_rhand, ext=ext, use_pca=False,
                               flat_hand_mean=True, **common, **smplx_kwargs)  # fmt: skip
        model.requires_grad_(False)
        self.model = model
        self.register_buffer("faces", torch.as_tensor(np.asarray(model.faces, dtype=np.int64)),
                             persistent=False)  # fmt: skip
        self._extra: dict[str, Tensor] = {}
        for name, value in (regressors or {}).items():
            js = get_joint_set(name)
            if isinstance(value, (str, os.PathLike)):
                arr = load_array(value, what=f"{js.name} joint regressor")
            else:
                arr = np.asarray(value)
            if arr.dtype.kind not in "iuf":
                raise TypeError(f"the {js.name} regressor must be real numbers, got {arr.dtype}")
            if arr.shape != (js.num_joints, self.num_vertices):
                raise ValueError(
                    f"the {js.name} regressor must have shape ({js.num_joints}, "
                    f"{self.num_vertices}), got {arr.shape}"
                )
            self._extra[js.name] = torch.as_tensor(arr, dtype=dtype)
        names = tuple(self._extra)
        if kind == "mano" and "hand" not in names:
            names = (*names, "hand")
        if kind != "mano" and self.num_vertices == _SMPL_VERTICES:
            names = (*names, *(n for n in ("coco", "h36m") if n not in names))
        self.joint_set_names = names
        self.is_hand = kind == "mano"
        self.side = ("R" if is_rhand else "L") if kind == "mano" else None
        self.bone_labels: list[str] = _labels(kind, is_rhand)
        parents = [int(p) for p in model.parents.tolist()]
        parents[0] = -1
        if len(parents) != len(self.bone_labels):
            raise ValueError(
                f"the {kind.upper()} file has {len(parents)} joints, expected "
                f"{len(self.bone_labels)}"
            )
        self.bone_parents: list[int] = parents

    @property
    def num_bones(self) -> int:
        """Number of pose joints (24, 52 or 16)."""
        return self.num_pose_joints

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the model."""
        return self.model.v_template.dtype

    @property
    def world_rotation(self) -> Tensor:
        """``(3, 3)`` rotation from smplx's coordinates to meshgraph's world frame.

        SMPL and SMPL-H are y-up and face +z: this is ``(x, y, z) -> (x, -z, y)``. MANO has
        no up direction (the identity).
        """
        if self.kind == "mano":
            return torch.eye(3, dtype=torch.float64)
        return torch.tensor(_Y_UP_TO_Z_UP, dtype=torch.float64)

    def rest_joints(self) -> Tensor:
        """``(num_bones, 3)`` joints of the mean shape at rest (the skeleton's heads)."""
        reg = self.model.J_regressor.detach().double()
        return reg @ self.model.v_template.detach().double()

    def template_vertices(self) -> Tensor:
        """``(V, 3)`` template vertices."""
        return self.model.v_template

    def forward(
        self, pose: Tensor, shape: Tensor | None = None, translation: Tensor | None = None
    ) -> Tensor:
        """Posed vertices ``(B, V, 3)`` (see the module docstring for the parameters)."""
        pose = self._check_params("pose", pose, (None, self.num_pose_joints, 3))
        b = pose.shape[0]
        dtype = self.model.v_template.dtype
        pose = pose.to(dtype)
        if shape is None:
            shape = torch.zeros(b, self.num_betas, dtype=dtype, device=pose.device)
        shape = self._check_params("shape", shape, (b, self.num_betas)).to(dtype)
        if translation is None:
            translation = torch.zeros(b, 3, dtype=dtype, device=pose.device)
        translation = self._check_params("translation", translation, (b, 3)).to(dtype)
        kw: dict[str, Tensor] = {
            "betas": shape,
            "global_orient": pose[:, 0],
            "transl": translation,
        }
        if self.kind == "smpl":
            kw["body_pose"] = pose[:, 1:].reshape(b, -1)
        elif self.kind == "smplh":
            kw["body_pose"] = pose[:, 1:22].reshape(b, -1)
            kw["left_hand_pose"] = pose[:, 22:37].reshape(b, -1)
            kw["right_hand_pose"] = pose[:, 37:52].reshape(b, -1)
        else:
            kw["hand_pose"] = pose[:, 1:].reshape(b, -1)
        return self.model(**kw).vertices

    def _build_regressor(self, joint_set: JointSet) -> Tensor:
        if joint_set.name in self._extra:
            return self._extra[joint_set.name]
        if joint_set.name in ("coco", "h36m"):
            return self._body_regressor(joint_set).to(self.model.v_template.dtype)
        # MANO -> Hand-21: its regressed joints plus smplx's fingertip vertices
        from smplx.vertex_ids import vertex_ids

        base = self.model.J_regressor.detach().cpu().double()
        tips = vertex_ids["mano"]
        v = self.num_vertices
        rows = torch.zeros(21, v, dtype=torch.float64)
        rows[0] = base[0]
        for f, finger in enumerate(("thumb", "index", "middle", "ring", "pinky")):
            for k, j in enumerate(_MANO_TO_HAND21[finger]):
                rows[1 + 4 * f + k] = base[j]
            if tips[finger] >= v:
                raise ValueError(
                    f"the MANO mesh has {v} vertices, no fingertip vertex {tips[finger]}"
                )
            rows[1 + 4 * f + 3, tips[finger]] = 1.0
        return rows.to(self.model.v_template.dtype)

    def _head_top(self) -> int:
        """The head vertex farthest from the neck along the neck-to-head direction at rest."""
        head, neck = _BODY_JOINTS.index("head"), _BODY_JOINTS.index("neck")
        joints = self.rest_joints()
        up = joints[head] - joints[neck]
        up = up / up.norm()
        weights = self.model.lbs_weights.detach()[:, head]
        cand = torch.nonzero(weights > 0.5).flatten()
        if cand.numel() == 0:
            raise ValueError("no vertex is skinned mainly to the head joint: no head top")
        verts = self.model.v_template.detach().double()[cand]
        return int(cand[((verts - joints[head]) @ up).argmax()])

    def _body_regressor(self, joint_set: JointSet) -> Tensor:
        """COCO or H36M rows from SMPL's joints and vertices (see the module docstring)."""
        from smplx.vertex_ids import vertex_ids

        face = vertex_ids["smplh"]  # SMPL's mesh: nose, eyes and ears (also SMPL-H's)
        base = self.model.J_regressor.detach().cpu().double()
        v = self.num_vertices
        j = {name: base[i] for i, name in enumerate(_BODY_JOINTS)}

        def vertex(i: int) -> Tensor:
            row = torch.zeros(v, dtype=torch.float64)
            row[i] = 1.0
            return row

        side = {"left": "L", "right": "R"}
        pelvis = (j["left_hip"] + j["right_hip"]) / 2
        neck = (j["left_shoulder"] + j["right_shoulder"]) / 2
        if joint_set.name == "coco":
            rows = {"nose": vertex(face["nose"]), "pelvis": pelvis, "neck": neck}
            for s, c in side.items():
                rows[f"{s}_eye"] = vertex(face[f"{c.lower()}eye"])
                rows[f"{s}_ear"] = vertex(face[f"{c.lower()}ear"])
                for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
                    rows[f"{s}_{part}"] = j[f"{s}_{part}"]
        else:
            rows = {"Pelvis": pelvis, "Neck": neck, "Torso": (pelvis + neck) / 2,
                    "Nose": vertex(face["nose"]), "Head": vertex(self._head_top())}  # fmt: skip
            for s, c in side.items():
                for part in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle"):
                    rows[f"{c}_{part.capitalize()}"] = j[f"{s}_{part}"]
        return torch.stack([rows[name] for name in joint_set.names])


class _UnusedKeypointIds(dict):
    """smplx's extra-keypoint vertex ids, all mapped to vertex 0.

    meshgraph uses only smplx's vertices, never its extra keypoints; this keeps model files
    with fewer vertices than SMPL's loadable.
    """

    def __missing__(self, key: str) -> int:
        return 0
