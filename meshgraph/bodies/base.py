"""The body-model interface and helpers shared by the Anny and SMPL-family models."""

from __future__ import annotations

import abc
import functools
from typing import Any

import numpy as np
import scipy.optimize
import torch
from torch import Tensor, nn

from meshgraph.bodies.joint_sets import JointSet, get_joint_set
from meshgraph.geometry import axis_angle_to_matrix as axis_angle_to_matrix  # moved there
from meshgraph.mesh import MeshTopology

__all__ = ["BodyModel", "fit_joint_regressor"]


def fit_joint_regressor(
    vertices: np.ndarray, joints: np.ndarray, candidates: list[np.ndarray]
) -> np.ndarray:
    """Fit a sparse, non-negative, affine (rows sum to 1) joint regressor.

    For each joint ``j`` it solves ``min ||sum_c w_c v_c - j||^2`` over the samples, subject
    to ``w >= 0`` and ``sum_c w_c = 1``, with ``w`` non-zero only on ``candidates[j]``. Rows
    that sum to one make the regressor commute with translations; non-negative weights keep
    each joint inside the hull of its vertices.

    Args:
        vertices: ``(N, V, 3)`` meshes (several poses and shapes).
        joints: ``(N, J, 3)`` the joints to reproduce on the same samples.
        candidates: ``J`` integer arrays of allowed vertex indices.

    Returns:
        ``(J, V)`` float64 regressor.
    """
    n, v, _ = vertices.shape
    if joints.shape[0] != n or joints.shape[2] != 3 or len(candidates) != joints.shape[1]:
        raise ValueError("vertices, joints and candidates do not match")
    reg = np.zeros((joints.shape[1], v))
    for j, cand in enumerate(candidates):
        cand = np.asarray(cand, dtype=np.int64)
        if cand.size == 0:
            raise ValueError(f"joint {j} has no candidate vertices")
        a = vertices[:, cand, :].transpose(0, 2, 1).reshape(3 * n, cand.size)
        y = joints[:, j, :].reshape(3 * n)
        scale = 10.0 * np.sqrt(n)  # strong sum-to-one row
        a = np.vstack([a, scale * np.ones((1, cand.size))])
        y = np.concatenate([y, [scale]])
        w, _ = scipy.optimize.nnls(a, y, maxiter=50 * cand.size)
        total = w.sum()
        reg[j, cand] = w / total if total > 0 else 1.0 / cand.size
    return reg


class BodyModel(nn.Module, abc.ABC):
    """A parametric body (or hand) model with a fixed mesh topology.

    Subclasses set ``faces`` (``(F, 3)`` int64 buffer) and implement :meth:`forward` and
    :meth:`_build_regressor`. Joint regressors are ``(J, V)`` dense tensors, computed once per
    joint set and cached.

    Attributes:
        name: Model identifier (``"anny"``, ``"anny-hand"``, ``"smpl"``, ...).
        joint_set_names: The joint sets this model provides regressors for.
    """

    name: str = "body"
    joint_set_names: tuple[str, ...] = ()
    #: Whether the model is a single hand, and which (``"L"``/``"R"``; ``None`` for bodies).
    is_hand: bool = False
    side: str | None = None
    faces: Tensor

    def __init__(self) -> None:
        super().__init__()
        self._regressors: dict[str, Tensor] = {}

    @property
    def part(self) -> str:
        """``"hand"`` for a single hand, else ``"body"``."""
        return "hand" if self.is_hand else "body"

    @property
    def input_joint_set(self) -> str:
        """The default 2D input joint set: ``"hand"`` for hands, ``"coco"`` for bodies."""
        return "hand" if self.is_hand else "coco"

    @property
    def mesh_joint_set(self) -> str:
        """The joints regressed from the mesh: ``"hand"`` for hands, ``"h36m"`` for bodies."""
        return "hand" if self.is_hand else "h36m"

    @property
    def spec(self) -> dict[str, Any]:
        """How to build this body again with :func:`~meshgraph.bodies.create_body`.

        A JSON-able dict: ``family`` (its registered name), ``part``, ``side`` and
        ``topology``. Subclasses add what their builder needs; files users bring (a licensed
        ``model_path``) are not recorded.
        """
        return {"family": self.name, "part": self.part, "side": self.side, "topology": None}

    @property
    def num_vertices(self) -> int:
        """Number of mesh vertices ``V``."""
        return int(self.template_vertices().shape[0])

    @functools.cached_property
    def topology(self) -> MeshTopology:
        """The mesh topology (built once)."""
        return MeshTopology(self.faces.cpu(), num_vertices=self.num_vertices)

    @property
    def world_rotation(self) -> Tensor:
        """``(3, 3)`` rotation from the model's coordinates to meshgraph's world frame.

        The world frame: x is the subject's left, y points backwards, z up. The identity
        unless a model says otherwise (SMPL is y-up).
        """
        return torch.eye(3, dtype=torch.float64)

    def rest_joints(self) -> Tensor:
        """``(num_bones, 3)`` rest-pose joints of the model's rig (the synthetic data needs it).

        Raises:
            NotImplementedError: For a model without a rig.
        """
        raise NotImplementedError(f"{type(self).__name__} exposes no rig")

    @abc.abstractmethod
    def template_vertices(self) -> Tensor:
        """``(V, 3)`` vertices of the neutral shape in the rest pose."""

    @abc.abstractmethod
    def forward(
        self, pose: Tensor, shape: Tensor | None = None, translation: Tensor | None = None
    ) -> Tensor:
        """Posed vertices ``(B, V, 3)``."""

    def posed_vertices(
        self,
        indices: Tensor,
        pose: Tensor,
        shape: Tensor | None = None,
        translation: Tensor | None = None,
    ) -> Tensor:
        """Posed positions ``(B, S, 3)`` of the vertices ``indices`` only.

        The same numbers as ``self(pose, shape, translation)[:, indices]`` up to float
        rounding. This default poses the whole mesh; a model may pose only the vertices asked
        for (:class:`~meshgraph.bodies.AnnyModel` does), which is what joints regressed from a
        few hundred vertices need.

        Args:
            indices: ``(S,)`` integer vertex indices in ``[0, V)``.
            pose: The model's pose parameters, as for :meth:`forward`.
            shape: Its shape parameters (``None``: the neutral shape).
            translation: ``(B, 3)`` root translation (``None``: none).

        Raises:
            TypeError: If ``indices`` is not an integer tensor.
            ValueError: If it is not one-dimensional or an index is out of range.
        """
        indices = self._check_indices(indices)
        return self(pose, shape, translation)[:, indices.to(self.faces.device)]

    def _check_indices(self, indices: Tensor) -> Tensor:
        if not isinstance(indices, Tensor) or indices.is_floating_point() or indices.is_complex():
            what = indices.dtype if isinstance(indices, Tensor) else type(indices).__name__
            raise TypeError(f"indices must be an integer tensor, got {what}")
        if indices.dim() != 1:
            raise ValueError(f"indices must be one-dimensional, got shape {tuple(indices.shape)}")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_vertices):
            raise ValueError(
                f"indices must lie in [0, {self.num_vertices}), got "
                f"[{int(indices.min())}, {int(indices.max())}]"
            )
        return indices.long()

    @abc.abstractmethod
    def _build_regressor(self, joint_set: JointSet) -> Tensor:
        """Build the ``(J, V)`` regressor of ``joint_set``."""

    def joint_regressor(self, joint_set: str | JointSet) -> Tensor:
        """The ``(J, V)`` regressor from this model's vertices to ``joint_set`` (cached).

        Raises:
            ValueError: If the joint set is unknown or this model does not provide it.
        """
        js = get_joint_set(joint_set)
        if js.name not in self.joint_set_names:
            raise ValueError(
                f"{self.name} has no regressor for joint set {js.name!r}; it provides "
                f"{list(self.joint_set_names)}"
            )
        if js.name not in self._regressors:
            reg = self._build_regressor(js)
            if reg.shape != (js.num_joints, self.num_vertices):
                raise RuntimeError(f"regressor for {js.name} has shape {tuple(reg.shape)}")
            self._regressors[js.name] = reg
        reg = self._regressors[js.name]
        return reg.to(device=self.faces.device)

    def regress_joints(self, vertices: Tensor, joint_set: str | JointSet) -> Tensor:
        """Joints ``(B, J, 3)`` of ``joint_set`` from vertices ``(B, V, 3)``."""
        from meshgraph.geometry import regress_joints

        if vertices.shape[-2] != self.num_vertices:
            raise ValueError(
                f"vertices have {vertices.shape[-2]} vertices, {self.name} has {self.num_vertices}"
            )
        return regress_joints(vertices, self.joint_regressor(joint_set))

    @staticmethod
    def _check_params(name: str, value: Tensor, shape: tuple[int | None, ...]) -> Tensor:
        if not isinstance(value, Tensor) or not value.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor")
        if value.dim() != len(shape) or any(
            s is not None and s != d for s, d in zip(shape, value.shape, strict=True)
        ):
            want = ", ".join("B" if s is None else str(s) for s in shape)
            raise ValueError(f"{name} must have shape ({want}), got {tuple(value.shape)}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{name} contains NaN or inf")
        return value
