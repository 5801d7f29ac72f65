"""Anny (Apache-2.0 code, CC0 MakeHuman assets): the default, licence-free body and hand model.

``AnnyModel("body")`` is the full body (13,718 vertices, 104 bones); ``AnnyModel("hand.R")``
and ``AnnyModel("hand.L")`` are the hands (1,609 vertices, 21 bones). A simplified body
topology (``topology="notoes_collapse10pc"``: 1,229 vertices, same rig) makes tests fast.

Parameters (all float32 by default):

* ``pose``: ``(B, num_bones, 3)`` axis-angle rotations about world-aligned axes (the output
  frame: z up, the body facing -y, its left at +x), each about its bone's head and carried
  along by the parent bones (Anny's ``local-ref`` parameterisation, expressed in the output
  frame). Bone 0 (``root``) is the global orientation; zeros give Anny's rest A-pose.
* ``shape``: ``(B, 6)`` phenotypes ``gender, age, muscle, weight, height, proportions`` in
  ``[0, 1]`` (0.5 = average).
* ``translation``: ``(B, 3)`` position of the root (zeros: root at the origin).

Joint regressors (``(J, V)``, non-negative, rows summing to one, so they commute with
translations) are defined as follows and fitted once per model (cached on disk):

* ``coco`` (body): the 17 COCO keypoints of ``anny.KeypointsRegressor.coco`` (fitted
  against it for simplified topologies), pelvis = mean of the hips, neck = mean of the
  shoulders.
* ``body29`` (body): COCO-19's rows, then per side the heel (the skin vertices within 1.5 cm
  of the foot's rearmost point in its lowest 4 cm at rest), the big toe's tip (the vertices of
  ``toe1-2`` within 3 mm of its far end), the index and pinky knuckles (heads of
  ``finger2-1`` and ``finger5-1``) and the thumb's knuckle (MCP: head of ``finger1-2``),
  those three fitted like the ``h36m`` rig joints below. On renders of Anny bodies these are
  the points nearest to mediapipe BlazePose's landmarks of the same names (24 photos, median
  distance in % of the body's height in the image: heel 1.4 to 2.0, foot tip 1.0 to 1.5,
  index and pinky knuckles 2.3 to 3.3, thumb MCP 2.0 to 2.8 against 3.8 to 4.2 for its IP
  joint and 4.0 to 4.6 for its tip). A simplified topology fits all ten to the full mesh's,
  like its COCO rows.
* ``h36m`` (body): rig joints (bone heads): hips ``upperleg01``, knees ``lowerleg01``, ankles
  ``foot``, shoulders ``upperarm01``, elbows ``lowerarm01``, wrists ``wrist``, neck ``neck01``,
  torso: the spine bone head closest to the middle of pelvis and neck at rest; pelvis = mean
  of the hip joints; nose = COCO nose; head = the top of the skull (vertices within 1 cm of the
  highest head vertex at rest). Each rig joint is a non-negative least-squares fit over
  vertices skinned to the bones meeting there, on random poses of the average shape: the
  joints then move rigidly with the rig, while for other phenotypes they sit at a
  shape-dependent offset from Anny's own joint centres (about 3 cm on average over the whole
  phenotype range, measured; a fixed regressor cannot follow those centres across shapes).
* ``hand`` (hands): wrist = ``wrist`` head; per finger the heads of ``finger*-1``,
  ``finger*-2``, ``finger*-3`` (thumb: CMC, MCP, IP; others: MCP, PIP, DIP), fitted the same
  way, and the fingertip = the vertices of the distal bone within 3 mm of its far end.
"""

from __future__ import annotations

import hashlib
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from meshgraph._optional import require
from meshgraph.bodies.base import BodyModel, axis_angle_to_matrix, fit_joint_regressor
from meshgraph.bodies.joint_sets import JointSet
from meshgraph.coarsening import _atomic_save_npz, default_cache_dir
from meshgraph.geometry import regress_joints
from meshgraph.io import load_arrays

__all__ = ["AnnyModel"]

_KINDS = ("body", "hand.R", "hand.L")
_FIT_VERSION = 4
# the left hand's regressor is the right hand's (its mirror image): a new cache key for it
_MIRRORED = "|mirror-of-right"
_H36M_BONES = {
    "R_Hip": "upperleg01.R", "R_Knee": "lowerleg01.R", "R_Ankle": "foot.R",
    "L_Hip": "upperleg01.L", "L_Knee": "lowerleg01.L", "L_Ankle": "foot.L",
    "Neck": "neck01", "L_Shoulder": "upperarm01.L", "L_Elbow": "lowerarm01.L",
    "L_Wrist": "wrist.L", "R_Shoulder": "upperarm01.R", "R_Elbow": "lowerarm01.R",
    "R_Wrist": "wrist.R",
}  # fmt: skip


#: The methods of ``anny.Anny`` that :meth:`AnnyModel.run` calls one by one.
_ANNY_STEPS = (
    "get_tensor_inputs", "_get_phenotype_blendshape_coefficients", "get_rest_model",
    "get_bone_transforms", "get_skinned_vertices",
)  # fmt: skip


def _local_ref_kinematics(
    model: Any, rest_poses: Tensor, deltas: Tensor
) -> tuple[Tensor, Tensor] | None:
    """Forward kinematics of Anny's ``local-ref`` parameterisation, on 3x3 and 3-vector parts.

    The formulas of Anny 0.6's ``anny.utils.kinematics.forward_kinematic`` (with ``R_c, h_c``
    the rest orientation and head of bone ``c`` of parent ``p``, ``U_c`` its reference
    orientation and ``[D_c | d_c]`` its delta): ``A_c = U_c R_c^T`` (``A_0 = I``),
    ``q_c = A_p (h_c - h_p)``, ``K_c = [U_p^T D_c U_c | U_p^T (d_c + q_c)]``, the posed pose
    ``W_0 = [U_0^T D_0 U_0 | U_0^T d_0]``, ``W_c = W_p K_c`` level by level down the tree, and
    the skinning transform ``T_c = W_c P_c^{-1}``. Anny multiplies 4x4 matrices as broadcast
    sums; ``torch.matmul`` on the 3x3 blocks took 3.7 against 8.5 ms for 128 bodies of 104
    bones on 2 CPU cores. ``None`` for another parameterisation or a model without the
    kinematic chain attributes.
    """
    if getattr(model, "pose_parameterization", None) != "local-ref" or not hasattr(
        model, "kinematic_chain_levels"
    ):
        return None
    levels = model.kinematic_chain_levels
    local, order, inverse, parent = model.kinematic_chain_indices
    rot, head = rest_poses[..., :3, :3], rest_poses[..., :3, 3]
    delta, shift = deltas[..., :3, :3], deltas[..., :3, 3]
    b, nb = rot.shape[:2]
    ref = model.reference_bone_orientations
    ref = rot if ref is None else ref.to(rot.dtype).expand(b, -1, -1, -1)
    offsets = head - head[:, parent]
    a = ref @ rot.transpose(-1, -2)
    a[:, 0] = torch.eye(3, dtype=rot.dtype, device=rot.device)
    q = (a[:, parent] @ offsets[..., None])[..., 0]
    ref_parent_t = ref[:, parent].transpose(-1, -2)
    k_rot = ref_parent_t @ delta @ ref
    k_shift = (ref_parent_t @ (shift + q)[..., None])[..., 0]
    root_t = ref[:, 0].transpose(-1, -2)
    w_rot = [(root_t @ delta[:, 0] @ ref[:, 0])[:, None]]
    w_shift = [(root_t @ shift[:, 0, :, None])[:, None, :, 0]]
    k_rot, k_shift = k_rot[:, order], k_shift[:, order]
    for first, last in levels[1:]:
        p_rot, p_shift = w_rot[-1][:, local[first:last]], w_shift[-1][:, local[first:last]]
        w_rot.append(p_rot @ k_rot[:, first:last])
        w_shift.append((p_rot @ k_shift[:, first:last, :, None])[..., 0] + p_shift)
    pose_rot = torch.cat(w_rot, 1)[:, inverse]
    pose_shift = torch.cat(w_shift, 1)[:, inverse]
    t_rot = pose_rot @ rot.transpose(-1, -2)
    t_shift = pose_shift - (t_rot @ head[..., None])[..., 0]

    def homogeneous(r: Tensor, t: Tensor) -> Tensor:
        out = torch.zeros(b, nb, 4, 4, dtype=r.dtype, device=r.device)
        out[..., :3, :3] = r
        out[..., :3, 3] = t
        out[..., 3, 3] = 1.0
        return out

    return homogeneous(t_rot, t_shift), homogeneous(pose_rot, pose_shift)


def _cache_is_empty(path: Path) -> bool:
    return not path.exists() or not any(path.iterdir())


class AnnyModel(BodyModel):
    """The Anny body or hand model behind the :class:`BodyModel` interface.

    Args:
        kind: ``"body"``, ``"hand.R"`` or ``"hand.L"``.
        topology: An Anny topology name (default: the full mesh of ``kind``), e.g.
            ``"notoes_collapse10pc"`` for a 1,229-vertex body.
        dtype: Floating dtype of the model.
        anny_cache_dir: Where Anny keeps its cache (about 0.8 GB, built in about a minute on
            first use): default ``$ANNY_CACHE_DIR`` or ``~/.cache/anny``.
        regressor_cache_dir: Where fitted joint regressors are kept (default
            :func:`meshgraph.coarsening.default_cache_dir`); ``False`` disables the cache.

    Raises:
        ImportError: If anny is not installed (``pip install anny``).
        ValueError: For an unknown ``kind``.
    """

    def __init__(
        self,
        kind: str = "body",
        topology: str | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        anny_cache_dir: str | os.PathLike | None = None,
        regressor_cache_dir: str | os.PathLike | bool | None = None,
    ) -> None:
        super().__init__()
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        anny = require("anny")
        if anny_cache_dir is not None:
            anny.paths.set_anny_cache_path(anny_cache_dir)
        cache = anny.paths.get_anny_cache_path()
        if _cache_is_empty(cache):
            print(
                f"meshgraph: Anny is building its cache in {cache} (about 0.8 GB, a minute or "
                "two, once); set ANNY_CACHE_DIR or anny_cache_dir= to put it elsewhere.",
                file=sys.stderr,
                flush=True,
            )
        if kind == "body":
            rig, topo = "anny", topology or "anny"
            self.name = "anny" if topo == "anny" else f"anny-{topo}"
            self.joint_set_names = ("coco", "body29", "h36m")
        else:
            side = kind.split(".")[1]
            rig, topo = f"anny-hand.{side}", topology or f"hand.{side}"
            self.name = f"anny-hand.{side}" if topo == f"hand.{side}" else f"anny-hand-{topo}"
            self.joint_set_names = ("hand",)
        self.kind, self.anny_topology = kind, topo
        self.is_hand = kind != "body"
        self.side = kind.split(".")[1] if self.is_hand else None
        self.model = anny.Anny(rig=rig, topology=topo).to(dtype)
        self.model.requires_grad_(False)
        self.bone_labels: list[str] = list(self.model.bone_labels)
        self.bone_parents: list[int] = [int(p) for p in self.model.bone_parents]
        self.phenotype_labels: list[str] = list(self.model.phenotype_labels)
        self.register_buffer("faces", self.model.faces.long().clone(), persistent=False)
        ref = self.model.reference_bone_orientations
        if ref is None:
            with torch.no_grad():
                zero = torch.zeros(1, self.num_bones, 4, 4, dtype=dtype)
                zero[..., 0, 0] = zero[..., 1, 1] = zero[..., 2, 2] = zero[..., 3, 3] = 1.0
                ref = self.model(pose_parameters=zero)["rest_bone_poses"][0, :, :3, :3]
        self._root_reference = ref[0].detach().clone()
        # whether _local_ref_kinematics reproduces Anny's (None: not compared yet)
        self._fast_kinematics: bool | None = None
        self._regressor_cache = regressor_cache_dir
        self._anny_version = getattr(anny, "__version__", "unknown")

    # ------------------------------------------------------------------ interface
    @property
    def spec(self) -> dict[str, Any]:
        """How to build this model again (:func:`~meshgraph.bodies.create_body`)."""
        default = "anny" if self.side is None else f"hand.{self.side}"
        topology = None if self.anny_topology == default else self.anny_topology
        return {"family": "anny", "part": self.part, "side": self.side, "topology": topology}

    @property
    def num_bones(self) -> int:
        """Number of rig bones (104 for the body, 21 for a hand)."""
        return len(self.bone_labels)

    @property
    def dtype(self) -> torch.dtype:
        """Floating dtype of the model."""
        return self.model.template_vertices.dtype

    def template_vertices(self) -> Tensor:
        """``(V, 3)`` vertices of Anny's template mesh (rest pose, default phenotypes)."""
        return self.model.template_vertices

    def _phenotypes(self, shape: Tensor | None, batch: int, ref: Tensor) -> Tensor:
        if shape is None:
            return torch.full((batch, 6), 0.5, dtype=ref.dtype, device=ref.device)
        shape = self._check_params("shape", shape, (batch, len(self.phenotype_labels)))
        if bool((shape < 0).any() or (shape > 1).any()):
            bad = torch.nonzero((shape < 0) | (shape > 1))[0].tolist()
            raise ValueError(
                f"phenotypes must lie in [0, 1]; shape[{bad[0]}, {bad[1]}] "
                f"({self.phenotype_labels[bad[1]]}) = {shape[bad[0], bad[1]].item():.3f}"
            )
        return shape.to(ref.dtype)

    def pose_matrices(self, pose: Tensor, translation: Tensor | None = None) -> Tensor:
        """``(B, num_bones, 4, 4)`` Anny pose parameters from axis-angles and a translation."""
        pose = self._check_params("pose", pose, (None, self.num_bones, 3))
        b = pose.shape[0]
        # Anny's local-ref deltas act in the axes of the root's reference orientation U0
        # (the identity for the body, not for the hand rigs): conjugate so that every rotation
        # is about world-aligned axes of the output frame.
        u0 = self._root_reference.to(device=pose.device, dtype=pose.dtype)
        mats = torch.zeros(b, self.num_bones, 4, 4, dtype=pose.dtype, device=pose.device)
        mats[..., :3, :3] = u0 @ axis_angle_to_matrix(pose) @ u0.T
        mats[..., 3, 3] = 1.0
        if translation is not None:
            translation = self._check_params("translation", translation, (b, 3))
            mats[:, 0, :3, 3] = translation.to(pose.dtype) @ u0.T
        return mats

    def run(
        self, pose: Tensor, shape: Tensor | None = None, translation: Tensor | None = None
    ) -> dict[str, Tensor]:
        """Anny's full output as a dict.

        Keys: ``vertices`` ``(B, V, 3)``, ``bone_poses`` ``(B, nb, 4, 4)`` (world pose of every
        bone, its head at ``[..., :3, 3]``) and the rest-pose data.
        """
        rest, transforms, poses = self._posed_rig(pose, shape, translation)
        if rest is None:  # an Anny without the pieces: its own forward
            return transforms
        b = transforms.shape[0]
        vertices = self.model.get_skinned_vertices(
            rest_vertices=rest["rest_vertices"].expand(b, -1, -1), bone_transforms=transforms
        )
        return {**rest, "vertices": vertices, "bone_poses": poses}

    def forward(
        self, pose: Tensor, shape: Tensor | None = None, translation: Tensor | None = None
    ) -> Tensor:
        """Posed vertices ``(B, V, 3)`` (see the module docstring for the parameters)."""
        return self.run(pose, shape, translation)["vertices"]

    def _posed_rig(
        self, pose: Tensor, shape: Tensor | None, translation: Tensor | None
    ) -> tuple[dict[str, Tensor] | None, Any, Tensor | None]:
        """Anny's rest model, bone transforms and bone poses, as its forward makes them.

        The steps of ``anny.Anny.forward`` (blend-shape coefficients, rest model, forward
        kinematics), so that the skinning can be left to the caller. Returns ``(None, Anny's
        whole output, None)`` for an Anny version without these methods.
        """
        pose = self._check_params("pose", pose, (None, self.num_bones, 3))
        mats = self.pose_matrices(pose.to(self.dtype), translation)
        phen = self._phenotypes(shape, mats.shape[0], mats)
        m = self.model
        if not all(hasattr(m, a) for a in _ANNY_STEPS):
            return None, m(pose_parameters=mats, phenotype_kwargs=phen), None
        params, phenotypes, local, facial = m.get_tensor_inputs(mats, phen, None, None)
        coeffs = m._get_phenotype_blendshape_coefficients(phenotypes, local, facial)
        rest = m.get_rest_model(coeffs)
        transforms, poses = self._kinematics(params, rest["rest_bone_poses"])
        return rest, transforms, poses

    def _kinematics(self, deltas: Tensor, rest_poses: Tensor) -> tuple[Tensor, Tensor]:
        """``(bone transforms, bone poses)``, both ``(B, nb, 4, 4)``: Anny's forward kinematics.

        :func:`_local_ref_kinematics` where it gives Anny's own numbers: the first call
        compares the two on a fixed random pose of every bone (not on the caller's pose, which
        may be the rest pose, where different formulas can agree) and keeps the faster one if
        they agree, Anny's otherwise (another parameterisation or another Anny version).
        Either way every call, the first included, returns the kept one's numbers: a sample
        does not depend on what was computed before it.
        """
        m = self.model
        if self._fast_kinematics is None:
            g = torch.Generator().manual_seed(0)
            probe = torch.zeros(1, self.num_bones, 4, 4, dtype=deltas.dtype)
            probe[0, :, :3, :3] = axis_angle_to_matrix(
                0.5 * torch.randn(self.num_bones, 3, generator=g, dtype=deltas.dtype)
            )
            probe[0, 0, :3, 3] = torch.randn(3, generator=g, dtype=deltas.dtype)
            probe[0, :, 3, 3] = 1.0
            probe = probe.to(deltas.device)
            mine = _local_ref_kinematics(m, rest_poses[:1], probe)
            theirs = m.get_bone_transforms(probe, rest_poses[:1])
            self._fast_kinematics = mine is not None and all(
                torch.allclose(a, b, atol=1e-4, rtol=1e-4)
                for a, b in zip(mine, theirs, strict=True)
            )
        if not self._fast_kinematics:
            return m.get_bone_transforms(deltas, rest_poses)
        mine = _local_ref_kinematics(m, rest_poses, deltas)
        assert mine is not None
        return mine

    def posed_vertices(
        self,
        indices: Tensor,
        pose: Tensor,
        shape: Tensor | None = None,
        translation: Tensor | None = None,
    ) -> Tensor:
        """Posed positions ``(B, S, 3)`` of the vertices ``indices`` only (see the base class).

        Anny's rest model and bone transforms, then linear blend skinning of these vertices
        alone: one ``(S, bones) x (bones, B*12)`` product blends their bone transforms. For
        128 samples on 2 CPU cores, the 178 vertices of the COCO regressor of the 1,229-vertex
        body took about 1 ms to skin, against 6 ms for the whole mesh. From half the mesh up
        (the COCO regressor of the full mesh reads 8,241 of its 13,718 vertices), the whole
        mesh is posed with Anny's own skinning and indexed, which is then as fast.
        """
        indices = self._check_indices(indices)
        if 2 * len(indices) > self.num_vertices:  # the base class: the whole mesh, indexed
            return super().posed_vertices(indices, pose, shape, translation)
        rest, transforms, _ = self._posed_rig(pose, shape, translation)
        if rest is None:  # an Anny without the pieces: the whole mesh, indexed
            return transforms["vertices"][:, indices.to(self.faces.device)]
        ids = indices.to(transforms.device)
        b = transforms.shape[0]
        # (S, bones) @ (bones, B*12): each vertex's blended 3x4 transform, (S, B, 3, 4)
        top = transforms[..., :3, :].permute(1, 0, 2, 3).reshape(self.num_bones, b * 12)
        blended = (self._skinning_weights(ids, transforms.dtype) @ top).view(len(ids), b, 3, 4)
        rest_v = rest["rest_vertices"][:, ids].expand(b, -1, -1).transpose(0, 1)  # (S, B, 3)
        out = blended[..., 3].clone()
        for c in range(3):  # the rotation part times the rest position, as fused multiply-adds
            out.addcmul_(blended[..., c], rest_v[..., c : c + 1])
        return out.transpose(0, 1)

    def _skinning_weights(self, ids: Tensor, dtype: torch.dtype) -> Tensor:
        """``(S, bones)`` dense skinning weights of the vertices ``ids``."""
        m = self.model
        cols = m.vertex_bone_indices[ids].long()
        rows = torch.arange(len(ids), device=ids.device)[:, None].expand_as(cols)
        dense = torch.zeros(len(ids), self.num_bones, dtype=dtype, device=ids.device)
        return dense.index_put_((rows, cols), m.vertex_bone_weights[ids].to(dtype), accumulate=True)

    def bone_heads(self, output: dict[str, Tensor]) -> Tensor:
        """``(B, nb, 3)`` posed bone heads (joint centres) from :meth:`run`'s output."""
        return output["bone_poses"][..., :3, 3]

    def rest_joints(self) -> Tensor:
        """``(num_bones, 3)`` bone heads in the rest pose, default phenotypes."""
        with torch.no_grad():
            return self.bone_heads(self.run(torch.zeros(1, self.num_bones, 3)))[0]

    # ------------------------------------------------------------------ regressors
    def _bone(self, label: str) -> int:
        return self.bone_labels.index(label)

    def _skinning(self) -> tuple[np.ndarray, np.ndarray]:
        idx = self.model.vertex_bone_indices.cpu().numpy()
        w = self.model.vertex_bone_weights.detach().cpu().double().numpy()
        return idx, w

    def _vertices_of(self, bones: list[int], threshold: float) -> np.ndarray:
        idx, w = self._skinning()
        weight = np.zeros(idx.shape[0])
        for b in bones:
            weight = np.maximum(weight, np.where(idx == b, w, 0.0).sum(1))
        return np.flatnonzero(weight > threshold)

    def _joint_candidates(self, bone: int) -> np.ndarray:
        """Vertices skinned to a bone or its parent: where the joint at its head sits."""
        bones = [bone] + ([self.bone_parents[bone]] if self.bone_parents[bone] > 0 else [])
        return self._vertices_of(bones, 0.05)

    def _fit_samples(self) -> dict[str, Tensor]:
        pose, shape = self._fit_inputs()
        with torch.no_grad():
            return self.run(pose.to(self.dtype), shape.to(self.dtype))

    def _tip_vertices(self, bone: int, cap: float) -> np.ndarray:
        """Vertices of a bone within ``cap`` (metres) of its far end, along the bone."""
        verts = self.template_vertices().detach().cpu().double().numpy()
        own = self._vertices_of([bone], 0.5)
        with torch.no_grad():
            rest = self.run(torch.zeros(1, self.num_bones, 3, dtype=self.dtype))
        head = self.bone_heads(rest)[0, bone].double().cpu().numpy()
        direction = verts[own].mean(0) - head
        direction /= np.linalg.norm(direction)
        proj = (verts[own] - head) @ direction
        return own[proj >= proj.max() - cap]

    def _head_top(self) -> np.ndarray:
        verts = self.template_vertices().detach().cpu().double().numpy()
        own = self._vertices_of([self._bone("head")], 0.5)
        return own[verts[own, 2] >= verts[own, 2].max() - 0.01]

    def _coco_full(self) -> tuple[Tensor, list[str]]:
        anny = require("anny")
        kp = anny.KeypointsRegressor.coco(self.model)
        return kp.regression_weights.detach().double().cpu(), list(kp.labels)

    def _build_regressor(self, joint_set: JointSet) -> Tensor:
        path = self._regressor_path(joint_set)
        if path is not None:
            try:
                reg = load_arrays(path, what="regressor cache")["regressor"]
                if reg.dtype.kind == "f" and reg.shape == (joint_set.num_joints, self.num_vertices):
                    return torch.from_numpy(reg).to(self.dtype)
            except (OSError, ValueError, KeyError):
                pass  # missing, unreadable or unsafe: refit below
        reg = self._fit_regressor(joint_set)
        if path is not None:
            try:
                _atomic_save_npz(path, {"regressor": reg})
            except OSError as err:  # a read-only or full cache: work on without it
                warnings.warn(f"could not write the regressor cache {path} ({err}); continuing "
                              "without it", RuntimeWarning, stacklevel=2)  # fmt: skip
        return torch.from_numpy(reg).to(self.dtype)

    def _regressor_path(self, joint_set: JointSet) -> Path | None:
        if self._regressor_cache is False:
            return None
        folder = (
            default_cache_dir()
            if self._regressor_cache in (None, True)
            else Path(self._regressor_cache)  # type: ignore[arg-type]
        )
        mirrored = _MIRRORED if self.kind == "hand.L" else ""
        key = hashlib.sha256(
            f"{self._anny_version}|{self.kind}|{self.anny_topology}|{joint_set.name}|"
            f"{_FIT_VERSION}|{self.num_vertices}{mirrored}".encode()
        ).hexdigest()[:20]
        return folder / f"regressor-{self.name}-{joint_set.name}-{key}.npz"

    def _mirror_source(self) -> AnnyModel | None:
        """The right hand, if this is the left hand and its mirror image vertex for vertex.

        Then both regress the same joints from the same vertices, and a right-hand network
        mirrors exactly into a left-hand one (only on the hands' default topologies).
        """
        if self.kind != "hand.L" or self.anny_topology != "hand.L":
            return None
        right = AnnyModel("hand.R", dtype=self.dtype, regressor_cache_dir=self._regressor_cache)
        flip = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
        mirrored = right.template_vertices().double() * flip
        own = self.template_vertices().double().to(mirrored.device)
        return right if torch.allclose(own, mirrored, rtol=0, atol=1e-6) else None

    def _fit_regressor(self, joint_set: JointSet) -> np.ndarray:
        if joint_set.name == "hand":
            right = self._mirror_source()
            if right is not None:
                return right.joint_regressor(joint_set).double().cpu().numpy()
        out = self._fit_samples()
        verts = out["vertices"].double().cpu().numpy()
        heads = self.bone_heads(out).double().cpu().numpy()
        v = self.num_vertices
        if joint_set.name == "hand":
            side = self.kind.split(".")[1]
            rows = np.zeros((21, v))
            targets, cands, fit_rows = [], [], []
            wrist = self._bone(f"wrist.{side}")
            targets.append(heads[:, wrist])
            cands.append(self._joint_candidates(wrist))
            fit_rows.append(0)
            for f in range(5):
                for k in range(3):
                    b = self._bone(f"finger{f + 1}-{k + 1}.{side}")
                    targets.append(heads[:, b])
                    cands.append(self._joint_candidates(b))
                    fit_rows.append(1 + 4 * f + k)
                tip = self._tip_vertices(self._bone(f"finger{f + 1}-3.{side}"), 0.003)
                rows[1 + 4 * f + 3, tip] = 1.0 / tip.size
            fitted = fit_joint_regressor(verts, np.stack(targets, 1), cands)
            rows[fit_rows] = fitted
            return rows
        full = None  # a simplified topology's rows are fitted to the full mesh's
        if self.anny_topology == "anny":
            coco_w, labels = self._coco_full()
            coco = coco_w[[labels.index(n) for n in _COCO17]].numpy()
        else:
            full = AnnyModel("body", dtype=torch.float64, regressor_cache_dir=False)
            coco = self._fit_coco_simplified(full)
        if joint_set.name in ("coco", "body29"):
            lh, rh = _COCO17.index("left_hip"), _COCO17.index("right_hip")
            ls, rs = _COCO17.index("left_shoulder"), _COCO17.index("right_shoulder")
            pelvis = 0.5 * (coco[lh] + coco[rh])
            neck = 0.5 * (coco[ls] + coco[rs])
            coco19 = np.vstack([coco, pelvis, neck])
            if joint_set.name == "coco":
                return coco19
            if full is None:
                return np.vstack([coco19, self._body29_extra(out)])
            return np.vstack([coco19, self._fit_simplified(full._body29_extra(), full)])
        # Human3.6M-17
        rows = np.zeros((17, v))
        names = joint_set.names
        targets, cands, fit_rows = [], [], []
        for jname, bone_label in _H36M_BONES.items():
            b = self._bone(bone_label)
            targets.append(heads[:, b])
            cands.append(self._joint_candidates(b))
            fit_rows.append(names.index(jname))
        spine = self._torso_bone(heads)
        targets.append(heads[:, spine])
        cands.append(self._joint_candidates(spine))
        fit_rows.append(names.index("Torso"))
        fitted = fit_joint_regressor(verts, np.stack(targets, 1), cands)
        rows[fit_rows] = fitted
        rows[names.index("Pelvis")] = 0.5 * (
            rows[names.index("L_Hip")] + rows[names.index("R_Hip")]
        )
        rows[names.index("Nose")] = coco[_COCO17.index("nose")]
        top = self._head_top()
        rows[names.index("Head"), top] = 1.0 / top.size
        return rows

    def _torso_bone(self, heads: np.ndarray) -> int:
        with torch.no_grad():
            rest = self.bone_heads(self.run(torch.zeros(1, self.num_bones, 3, dtype=self.dtype)))
        rest = rest[0].double().cpu().numpy()
        hips = 0.5 * (rest[self._bone("upperleg01.L")] + rest[self._bone("upperleg01.R")])
        middle = 0.5 * (hips + rest[self._bone("neck01")])
        spines = [i for i, n in enumerate(self.bone_labels) if n.startswith("spine")]
        return min(spines, key=lambda i: float(np.linalg.norm(rest[i] - middle)))

    def _body29_extra(self, out: dict[str, Tensor] | None = None) -> np.ndarray:
        """Body-29's ten rows beyond COCO-19 on the full body mesh (see the module docstring).

        ``out``: :meth:`_fit_samples`'s output, where the caller has it already.
        """
        v = self.num_vertices
        rows = np.zeros((10, v))
        verts = self.template_vertices().detach().cpu().double().numpy()
        out = self._fit_samples() if out is None else out
        heads = self.bone_heads(out).double().cpu().numpy()
        targets, cands, fit_rows = [], [], []
        for k, side in enumerate("LR"):
            foot = self._vertices_of([self._bone(f"foot.{side}")], 0.5)
            low = foot[verts[foot, 2] <= verts[foot, 2].min() + 0.04]
            back = verts[low[np.argmax(verts[low, 1])]]  # the body faces -y: the rear is +y
            near = foot[np.linalg.norm(verts[foot] - back, axis=1) <= 0.015]
            rows[k, near] = 1.0 / near.size
            tip = self._tip_vertices(self._bone(f"toe1-2.{side}"), 0.003)
            rows[2 + k, tip] = 1.0 / tip.size
            for row, label in ((4, "finger2-1"), (6, "finger5-1"), (8, "finger1-2")):
                b = self._bone(f"{label}.{side}")
                targets.append(heads[:, b])
                cands.append(self._joint_candidates(b))
                fit_rows.append(row + k)
        rows[fit_rows] = fit_joint_regressor(
            out["vertices"].double().cpu().numpy(), np.stack(targets, 1), cands
        )
        return rows

    def _fit_coco_simplified(self, full: AnnyModel) -> np.ndarray:
        """COCO rows for a simplified topology: fitted to the ``full`` mesh's keypoints."""
        coco_w, labels = full._coco_full()
        return self._fit_simplified(coco_w[[labels.index(n) for n in _COCO17]].numpy(), full)

    def _fit_simplified(self, rows: np.ndarray, full: AnnyModel) -> np.ndarray:
        """Rows for a simplified topology fitted to the ``full`` mesh's keypoints ``rows @ V``.

        Each keypoint is fitted over the 40 vertices nearest to it at rest, on random poses.
        """
        weights = torch.as_tensor(rows, dtype=torch.float64)
        gen_pose, gen_shape = self._fit_inputs()
        with torch.no_grad():
            full_verts = full(gen_pose, gen_shape)
            targets = regress_joints(full_verts, weights).numpy()
            own = self(gen_pose.to(self.dtype), gen_shape.to(self.dtype)).double().numpy()
        rest = self.template_vertices().detach().double().cpu().numpy()
        full_rest = full.template_vertices().detach().double().cpu().numpy()
        cands = []
        for j in range(weights.shape[0]):
            kp = weights[j].numpy() @ full_rest
            dist = np.linalg.norm(rest - kp, axis=1)
            cands.append(np.argsort(dist)[:40])
        return fit_joint_regressor(own, targets, cands)

    def _fit_inputs(self, n: int = 64, seed: int = 0) -> tuple[Tensor, Tensor]:
        gen = torch.Generator().manual_seed(seed)
        pose = 0.3 * torch.randn(n, self.num_bones, 3, generator=gen, dtype=torch.float64)
        pose[:, 0] = 0.0
        # Average shape only: a fixed non-negative regressor cannot follow the rig's joints
        # across phenotypes (measured: about 3 cm whatever shapes it is fitted on), but fitted
        # on poses of one shape it moves rigidly with the rig (drift < 0.1 mm).
        shape = torch.full((n, 6), 0.5, dtype=torch.float64)
        return pose, shape


_COCO17 = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
]  # fmt: skip
