"""Pose2Mesh = PoseNet + MeshNet, with ``predict`` from pixel keypoints and one-file save/load."""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from meshgraph.bodies.base import BodyModel
from meshgraph.bodies.joint_sets import get_joint_set
from meshgraph.bodies.registry import parse_body_name
from meshgraph.coarsening import MeshHierarchy
from meshgraph.devices import check_same_device
from meshgraph.geometry import DEFAULT_BOX_ASPECT, normalize_keypoints, regress_joints
from meshgraph.geometry import fit_weak_perspective as fit_weak_perspective  # moved there
from meshgraph.io import atomic_write
from meshgraph.mesh import MeshTopology
from meshgraph.models.networks import FCBaseline, MeshNet, PoseNet
from meshgraph.nn.convs import CONVOLUTIONS, ConvFactory, conv_factory
from meshgraph.nn.vertex_map import VertexMap, _index_dtype

__all__ = ["Pose2Mesh", "Pose2MeshConfig", "Prediction"]

_FORMAT = "meshgraph-pose2mesh"
_VERSION = 1
#: ``predict`` needs at least this many visible joints.
MIN_VISIBLE_JOINTS = 4


@dataclass
class Pose2MeshConfig:
    """Everything that defines a Pose2Mesh network (saved with its weights).

    Attributes:
        body: Name of the body model the mesh comes from (provenance, e.g. ``"anny"``).
        body_spec: How to build that body again (:attr:`BodyModel.spec
            <meshgraph.bodies.BodyModel.spec>`, for :func:`~meshgraph.bodies.create_body`);
            ``None`` in models saved before it was recorded (then :attr:`body` is parsed).
        working_body: With an output map (:meth:`Pose2Mesh.with_output_map`): the body whose
            topology the network works on (:attr:`body` is then the one it answers in);
            ``None`` without a map.
        working_body_spec: The spec of :attr:`working_body`.
        joint_set: Input joint set (``"coco"``, ``"body29"``, ``"h36m"``, ``"hand"``).
        mesh_joint_set: Joints regressed from the output mesh (``"h36m"`` or ``"hand"``).
        num_levels: Hierarchy levels, the mesh included.
        layout: ``"compact"`` or ``"binary_tree"``.
        compat: ``None`` or ``"pose2mesh"`` (the release's matching and rescale).
        posenet_width: PoseNet hidden width (the paper: 4096).
        posenet_blocks: PoseNet residual blocks (the paper: 2; files saved before the field
            load with 2).
        posenet_dropout: PoseNet dropout.
        posenet_norm: PoseNet normalisation, ``"batch"`` or ``"none"``.
        joint_channels: MeshNet joint-graph widths.
        coarse_channels: MeshNet width at the coarse level.
        decoder_channels: MeshNet decoder widths, finest first (``None``: derived).
        coarse_level: Level of the fully connected lift (``None``: the coarsest).
        K: Chebyshev order (the joint graph's blocks, and the mesh's with ``conv="cheb"``).
        conv: The mesh convolution: ``"cheb"`` (:class:`~meshgraph.nn.MeshChebConv`, the
            paper's) or ``"spiral"`` (:class:`~meshgraph.nn.SpiralConv`, SpiralNet++).
        spiral_length: Spiral length of ``conv="spiral"``, the centre included.
        spiral_dilation: Spiral dilation of ``conv="spiral"``.
        variant: ``"coarse_to_fine"``, ``"direct"`` (all blocks at full resolution) or ``"fc"``
            (the paper's fully connected baseline, :class:`~meshgraph.models.FCBaseline`).
        fc_hidden: Hidden widths of the ``"fc"`` variant.
        canonical_frame: MeshNet works in the body frame of PoseNet's joints (not in the
            paper; see :class:`~meshgraph.models.MeshNet`).
        visibility_input: PoseNet and MeshNet get a third number per joint, 1 where the joint
            was detected and 0 where it is missing (whose coordinates are then 0), so that a
            missing joint is not mistaken for one at the box centre (not in the paper; train
            with :class:`~meshgraph.data.noise.DetectorNoise` so that joints go missing).
        exactness_input: PoseNet gets one more number per joint, the same for all of a
            sample's joints: 1 where its 2D keypoints are exact (ground truth, e.g. projected
            from motion capture or from a mesh), 0 where a detector found them (not in the
            paper); MeshNet reads PoseNet's answer. Trained on a mixture of both
            (``clean_fraction`` of :class:`~meshgraph.data.SyntheticPoseMeshDataset`), one
            network can answer each kind as a model trained for it would. Callers say which
            they give (``exact`` of :meth:`Pose2Mesh.forward` and :meth:`Pose2Mesh.predict`;
            default: detected). Models saved before it existed load with ``False``.
        mirror: The model predicts the mirror image of what its weights learned: the input's
            image x and the outputs' camera x are negated and the faces' winding reversed (see
            :meth:`Pose2Mesh.mirrored`; hands only).
        norm: Block normalisation.
        aspect: Input box aspect ratio (width / height) of the normalisation. The datasets
            normalise in the default box, so an ``isotropic_input`` model trained or
            evaluated on them keeps it (per-axis scores do not depend on it).
        box_scale: Input box enlargement of the normalisation.
        isotropic_input: The normalisation scores both axes by one spread, keeping the pose's
            width over its height (``normalize_keypoints(isotropic=True)``); ``False`` is
            the paper's per-axis scores. The data a model is trained and evaluated on must
            be normalised the same way (the datasets' ``isotropic_input``). Models saved
            before it existed load with ``False``.
    """

    body: str = "anny"
    body_spec: dict[str, Any] | None = None
    working_body: str | None = None
    working_body_spec: dict[str, Any] | None = None
    joint_set: str = "coco"
    mesh_joint_set: str = "h36m"
    num_levels: int = 8
    layout: str = "compact"
    compat: str | None = None
    posenet_width: int = 1024
    posenet_blocks: int = 2
    posenet_dropout: float = 0.5
    posenet_norm: str = "batch"
    joint_channels: tuple[int, ...] = (32, 64, 64)
    coarse_channels: int = 64
    decoder_channels: tuple[int, ...] | None = None
    coarse_level: int | None = None
    K: int = 3
    conv: str = "cheb"
    spiral_length: int = 9
    spiral_dilation: int = 1
    variant: str = "coarse_to_fine"
    fc_hidden: tuple[int, ...] = (1024, 1024)
    canonical_frame: bool = False
    visibility_input: bool = False
    exactness_input: bool = False
    mirror: bool = False
    norm: str = "batch"
    aspect: float = DEFAULT_BOX_ASPECT
    box_scale: float = 1.25
    isotropic_input: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse sizes and rates no network can have (the message names the field)."""
        for name in (
            "num_levels", "posenet_width", "posenet_blocks", "coarse_channels", "K",
            "spiral_length", "spiral_dilation",
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("joint_channels", "decoder_channels", "fc_hidden"):
            value = getattr(self, name)
            if value is not None and any(not isinstance(c, int) or c < 1 for c in value):
                raise ValueError(f"{name} must be positive integers, got {value!r}")
        if self.conv not in CONVOLUTIONS:
            raise ValueError(f"conv must be one of {sorted(CONVOLUTIONS)}, got {self.conv!r}")
        if not 0.0 <= self.posenet_dropout < 1.0:
            raise ValueError(f"posenet_dropout must be in [0, 1), got {self.posenet_dropout!r}")
        if not isinstance(self.isotropic_input, bool):
            raise TypeError(f"isotropic_input must be a bool, got {self.isotropic_input!r}")
        for name in ("aspect", "box_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")

    def conv_factory(self) -> ConvFactory:
        """The mesh convolution factory that :attr:`conv` and its options describe."""
        if self.conv == "spiral":
            return conv_factory("spiral", length=self.spiral_length, dilation=self.spiral_dilation)
        return conv_factory("cheb", K=self.K)


class Prediction(NamedTuple):
    """Output of :meth:`Pose2Mesh.predict` (batched).

    Attributes:
        vertices: ``(B, V, 3)`` root-relative vertices in camera axes (x right, y down, z
            forward), metres.
        joints_3d: ``(B, J, 3)`` PoseNet's root-relative 3D joints of the input joint set.
        mesh_joints_3d: ``(B, J', 3)`` joints regressed from the predicted mesh.
        camera: ``(B, 3)`` weak-perspective camera ``(s, tx, ty)``: pixel ``= s * X[:2] + t``.
        keypoints_2d: ``(B, J, 2)`` the input pixels.
        visible: ``(B, J)`` the joints used.
    """

    vertices: Tensor
    joints_3d: Tensor
    mesh_joints_3d: Tensor
    camera: Tensor
    keypoints_2d: Tensor
    visible: Tensor


def _as_real_tensor(values: Tensor | np.ndarray, name: str) -> Tensor:
    """A float64 tensor from real numbers; complex, boolean or non-numeric input is refused."""
    if isinstance(values, Tensor):
        if values.is_complex() or values.dtype == torch.bool:
            raise TypeError(f"{name} must be real numbers, got dtype {values.dtype}")
        return values.detach().cpu().to(torch.float64)
    try:
        arr = np.asarray(values)
    except ValueError as err:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array: {err}") from None
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be real numbers, got dtype {arr.dtype}")
    return torch.from_numpy(arr.astype(np.float64))


#: The visible joints must spread in two directions: the smaller principal spread must be at
#: least this fraction of the larger one (a real body or hand is far above it).
MIN_SPREAD_RATIO = 1e-3


def _check_visible(keypoints_2d: Tensor, visible: Tensor | None) -> None:
    """Refuse a visibility mask that is not ``(B, J)`` for ``(B, J, 2)`` keypoints."""
    if visible is not None and visible.shape != keypoints_2d.shape[:2]:
        raise ValueError(
            f"visible must have shape {tuple(keypoints_2d.shape[:2])} (batch, joints), "
            f"got {tuple(visible.shape)}"
        )


def _exact_channel(keypoints_2d: Tensor, exact: Tensor | bool | None) -> Tensor:
    """``(B, J, 1)``: each sample's exactness (``exact``: ``(B,)``, a bool or ``None``) per joint.

    Raises:
        ValueError: If a tensor ``exact`` is not ``(B,)`` for ``(B, J, 2)`` keypoints.
    """
    b, j = keypoints_2d.shape[:2]
    if exact is None or isinstance(exact, bool):
        return keypoints_2d.new_full((b, j, 1), float(bool(exact)))
    if exact.shape != (b,):
        raise ValueError(
            f"exact must have shape ({b},) (one flag per sample), got {tuple(exact.shape)}"
        )
    flag = exact.to(device=keypoints_2d.device, dtype=keypoints_2d.dtype)
    return flag.view(b, 1, 1).expand(b, j, 1)


def _check_spread(kp: Tensor, visible: Tensor) -> None:
    """Refuse samples whose visible joints lie on one point or one line (in any direction)."""
    w = visible.to(kp.dtype)[..., None]
    n = w.sum(1, keepdim=True)
    centred = (kp - (kp * w).sum(1, keepdim=True) / n) * w
    cov = centred.transpose(1, 2) @ centred / n  # (B, 2, 2)
    eig = torch.linalg.eigvalsh(cov).clamp_min(0).sqrt()  # principal spreads, ascending
    for b in range(kp.shape[0]):
        small, large = float(eig[b, 0]), float(eig[b, 1])
        if large == 0.0:
            raise ValueError(f"sample {b}: all visible joints lie on one point")
        if small <= MIN_SPREAD_RATIO * large:
            raise ValueError(
                f"sample {b}: all visible joints lie on one line (spread {small:.3g} across it "
                f"against {large:.3g} along it, in pixels)"
            )


class Pose2Mesh(nn.Module):
    """PoseNet lifts the 2D pose to 3D joints; MeshNet turns 2D + 3D joints into the mesh.

    Build one with :meth:`from_body` (a body model supplies the topology and the mesh-joint
    regressor) or restore a trained one with :meth:`load`.

    Args:
        config: The :class:`Pose2MeshConfig`.
        topology: The mesh topology the network works on (and answers in, without an
            output map).
        mesh_regressor: ``(J', V)`` regressor of ``config.mesh_joint_set`` on ``topology``
            (kept in the checkpoint).
        hierarchy: The mesh hierarchy (default: built from ``topology`` and the config).
        output_map: Optional :class:`~meshgraph.nn.vertex_map.VertexMap` from ``topology``
            to a larger mesh of the same body, which the model then answers in (see
            :meth:`with_output_map`).
        output_faces: ``(F, 3)`` faces of the output map's mesh (required with it).

    Raises:
        ValueError: If the regressor, the output map or its faces do not fit the topology.
    """

    def __init__(
        self,
        config: Pose2MeshConfig,
        topology: MeshTopology,
        mesh_regressor: Tensor,
        hierarchy: MeshHierarchy | None = None,
        output_map: VertexMap | None = None,
        output_faces: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.joint_set = get_joint_set(config.joint_set)
        self.mesh_joint_set = get_joint_set(config.mesh_joint_set)
        if mesh_regressor.shape != (self.mesh_joint_set.num_joints, topology.num_vertices):
            raise ValueError(
                f"mesh_regressor must have shape ({self.mesh_joint_set.num_joints}, "
                f"{topology.num_vertices}), got {tuple(mesh_regressor.shape)}"
            )
        if hierarchy is None:
            hierarchy = MeshHierarchy.build(
                topology,
                config.num_levels,
                layout=config.layout,
                compat=config.compat,  # type: ignore[arg-type]
            )
        self.topology = topology
        self.hierarchy = hierarchy
        # PoseNet reads the exactness channel, MeshNet PoseNet's answer to it: its first joint
        # block adds its input resampled to its width, which a channel more would change
        channels = 2 + int(config.visibility_input)
        self.posenet = PoseNet(
            self.joint_set.num_joints,
            config.posenet_width,
            num_blocks=config.posenet_blocks,
            dropout=config.posenet_dropout,
            norm=config.posenet_norm,
            in_channels=channels + int(config.exactness_input),
        )
        if config.variant not in ("coarse_to_fine", "direct", "fc"):
            raise ValueError(
                f"variant must be 'coarse_to_fine', 'direct' or 'fc', got {config.variant!r}"
            )
        self.meshnet: nn.Module
        if config.variant == "fc":  # the paper's fully connected baseline (no graph, no hierarchy)
            self.meshnet = FCBaseline(
                self.joint_set.num_joints,
                topology.num_vertices,
                hidden=config.fc_hidden,
                keypoint_channels=channels,
            )
        else:
            self.meshnet = MeshNet(
                self.joint_set,
                hierarchy,
                coarse_level=config.coarse_level,
                joint_channels=config.joint_channels,
                coarse_channels=config.coarse_channels,
                decoder_channels=config.decoder_channels,
                K=config.K,
                variant=config.variant,
                norm=config.norm,
                canonical_frame=config.canonical_frame,
                keypoint_channels=channels,
                conv=config.conv_factory(),
            )
        self.register_buffer("mesh_regressor", mesh_regressor.detach().float().clone())
        #: The provenance record of shipped weights (:meth:`pretrained`), else ``None``.
        self.provenance: dict[str, Any] | None = None
        if config.mirror and self.joint_set.flip_pairs:
            raise ValueError(
                f"mirror: the {self.joint_set.name} joint set has left/right joints, and "
                "mirroring a body would need a left/right map of its vertices (hands only)"
            )
        self.output_map: VertexMap | None = None
        self._set_output(output_map, output_faces)
        #: With a flip test (:meth:`flip_tested`): ``(V,)`` the mirror image of each vertex
        #: of the network's mesh; ``None`` without.
        self.vertex_flip: Tensor | None
        self.register_buffer("vertex_flip", None, persistent=False)
        #: ``(J,)`` the input joints' left/right swap (the flip test's), kept on the device.
        self.joint_flip: Tensor
        swap = torch.as_tensor(self.joint_set.flip_permutation(), dtype=torch.long)
        self.register_buffer("joint_flip", swap, persistent=False)

    def _set_output(self, output_map: VertexMap | None, output_faces: Tensor | None) -> None:
        """Install the output map (or none) and the faces of the mesh the model answers in."""
        if output_map is None:
            faces = self.topology.faces
        else:
            if output_map.num_sources != self.topology.num_vertices:
                raise ValueError(
                    f"the output map reads {output_map.num_sources} vertices, the network's "
                    f"mesh has {self.topology.num_vertices}"
                )
            if output_faces is None:
                raise ValueError("an output map needs the faces of its mesh (output_faces)")
            faces = torch.as_tensor(output_faces).long()
            if faces.dim() != 2 or faces.shape[1] != 3 or faces.shape[0] < 1:
                raise ValueError(f"output_faces must have shape (F, 3), got {tuple(faces.shape)}")
            if int(faces.min()) < 0 or int(faces.max()) >= output_map.num_targets:
                raise ValueError(
                    f"output_faces must index the output map's {output_map.num_targets} "
                    f"vertices, got values in [{int(faces.min())}, {int(faces.max())}]"
                )
        self.output_map = output_map
        faces = faces[:, [0, 2, 1]] if self.config.mirror else faces
        device = self.mesh_regressor.device
        if output_map is not None:
            output_map.to(device)
        self.register_buffer("faces", faces.clone().to(device), persistent=False)

    @classmethod
    def from_body(
        cls, body: BodyModel, config: Pose2MeshConfig | None = None, **kwargs: Any
    ) -> Pose2Mesh:
        """A new (untrained) network for ``body`` (config fields may be given as kwargs)."""
        config = config or Pose2MeshConfig(**kwargs)
        config.body = body.name
        config.body_spec = body.spec
        topology = body.topology
        reg = body.joint_regressor(config.mesh_joint_set).detach().cpu()
        return cls(config, topology, reg)

    @classmethod
    def pretrained(
        cls,
        name: str = "body",
        *,
        side: str | None = None,
        directory: str | os.PathLike | None = None,
        map_location: Any = "cpu",
        full_mesh: bool = True,
        flip_test: bool = False,
    ) -> Pose2Mesh:
        """The trained model ``name`` that ships with meshgraph (``"body"`` or ``"hand"``).

        See :mod:`meshgraph.models.pretrained`; its provenance (command, commit, data,
        hardware, held-out metrics) is the returned model's ``provenance`` attribute.
        ``side="left"`` gives the hand model mirrored (:meth:`mirrored`, exact for Anny's
        hands); the shipped hand is a right hand. The body network works on Anny's
        1,229-vertex topology and answers on the full 13,718-vertex mesh through a fitted
        :class:`~meshgraph.nn.vertex_map.VertexMap`; ``full_mesh=False`` gives the 1,229
        vertices (:meth:`without_output_map`). ``flip_test=True`` (the body) averages each
        answer with the answer to the mirrored input (:meth:`flip_tested`).

        Raises:
            ValueError: For an unknown name or side, or a weight file that holds another model.
            FileNotFoundError: If this installation ships no such weights.
        """
        from meshgraph.models.pretrained import load_pretrained

        return load_pretrained(name, side=side, directory=directory, map_location=map_location,
                               full_mesh=full_mesh, flip_test=flip_test)  # fmt: skip

    def _body_spec(self) -> dict[str, Any]:
        """The body's spec (family, part, side, topology), else ``{}``.

        The recorded spec, else the one read from the body's name; ``{}`` for a name that says
        no family.
        """
        try:
            return dict(self.config.body_spec or parse_body_name(self.config.body))
        except ValueError:
            return {}

    def mirrored(self) -> Pose2Mesh:
        """A copy that predicts the other hand: a right-hand model becomes a left-hand one.

        The copy negates the image x of its input, runs the same weights, negates the camera
        x of the joints and vertices it returns, and reverses the winding of its faces. For
        Anny's hands this is exact: ``AnnyModel("hand.L")`` is ``AnnyModel("hand.R")``
        mirrored vertex for vertex (same order, same joint regressor), so the copy is what a
        model trained on left hands mirrored from the right ones would be. Its
        ``config.body`` names the other side (``anny-hand.R`` <-> ``anny-hand.L``), so that
        ``meshgraph evaluate`` measures it on that hand. Mirroring the copy again gives the
        original model back.

        Raises:
            ValueError: For a body model (a joint set with left/right joints), or a hand
                whose other side is not known to be its exact mirror image (only Anny's).
        """
        import copy

        if self.joint_set.flip_pairs:
            raise ValueError(
                "mirrored(): only hands can be mirrored (the "
                f"{self.joint_set.name} joint set has left/right joints)"
            )
        body = self.config.body
        spec = self._body_spec()
        side = spec.get("side")
        if spec.get("family") != "anny" or spec.get("part") != "hand" or side not in ("R", "L"):
            raise ValueError(
                f"mirrored(): {body!r} is not one of Anny's hands, whose left hand is exactly "
                "the right one mirrored; train the other side instead"
            )
        other = {"R": "L", "L": "R"}[side]
        topology = spec.get("topology")
        if topology is not None:
            topology = topology.replace(f"hand.{side}", f"hand.{other}")
        out = copy.deepcopy(self)
        out.config = replace(
            self.config,
            mirror=not self.config.mirror,
            body=f"anny-hand.{other}" if topology is None else f"anny-hand-{topology}",
            body_spec=None if self.config.body_spec is None else
            {**spec, "side": other, "topology": topology},
        )  # fmt: skip
        out.faces = self.faces[:, [0, 2, 1]].clone()
        return out

    def with_output_map(
        self,
        output_map: VertexMap,
        faces: Tensor,
        *,
        body: str | None = None,
        body_spec: dict[str, Any] | None = None,
    ) -> Pose2Mesh:
        """A copy that answers on a larger mesh of the same body, through ``output_map``.

        The network is unchanged: it still works on its own mesh, and ``output_map`` (for
        instance :func:`~meshgraph.data.transfer.fit_topology_map` from Anny's 1,229-vertex
        body to its full 13,718-vertex mesh) turns each prediction into the larger mesh. The
        joints (``mesh_joints_3d``) are still regressed from the network's own mesh.
        :meth:`without_output_map` undoes it.

        Args:
            output_map: Map from this model's mesh (:attr:`topology`) to the larger one.
            faces: ``(F, 3)`` faces of the larger mesh.
            body: Name of the larger mesh's body model (default: unchanged).
            body_spec: Its spec (:attr:`BodyModel.spec <meshgraph.bodies.BodyModel.spec>`).

        Raises:
            ValueError: If the map does not read this model's mesh, or the faces do not
                index the map's output vertices.
        """
        import copy

        # a map replaces the one there is: the copy without it is already a copy
        out = self.without_output_map() if self.output_map is not None else copy.deepcopy(self)
        working = out.config
        out._set_output(output_map, faces)
        out.config = replace(
            working,
            body=body or working.body,
            body_spec=body_spec,
            working_body=working.body,
            working_body_spec=working.body_spec,
        )
        return out

    def flip_tested(self, template: Tensor | None = None, *, atol: float = 1e-3) -> Pose2Mesh:
        """A copy that averages each answer with its answer to the mirrored input (flip test).

        The copy runs the network twice, on the 2D joints and on the same joints mirrored
        (image x negated, left and right swapped), mirrors the second answer back (camera x
        negated, each vertex moved to its mirror image's place, joints swapped back) and
        returns the mean of the two: the usual test-time flip of 2D pose estimators, here for
        the whole mesh. It costs a second pass (in the same batch) and makes the prediction
        exactly mirror-equivariant. The model itself is left as it is.

        Args:
            template: ``(V, 3)`` rest vertices of the network's mesh, left/right symmetric
                along x (:func:`~meshgraph.geometry.mirror_permutation` pairs the
                vertices). Default: the template of the body model the network works on
                (``config.working_body_spec`` or ``config.body_spec``, built with
                :func:`~meshgraph.bodies.create_body`).
            atol: Largest mismatch (metres) of a vertex and its mirror image's partner.

        Raises:
            ValueError: For a joint set without left/right joints (a hand), a template of
                another vertex count, or a template that is not mirror symmetric.
        """
        import copy

        from meshgraph.geometry import mirror_permutation

        if not (self.joint_set.flip_pairs and self.mesh_joint_set.flip_pairs):
            raise ValueError(
                f"flip test: the {self.joint_set.name} joint set has no left/right joints to "
                "swap (a hand's mirror image is the other hand: see mirrored())"
            )
        if template is None:
            from meshgraph.bodies.registry import create_body, parse_body_name

            name = self.config.working_body or self.config.body
            spec = self.config.working_body_spec or (
                self.config.body_spec if self.config.working_body is None else None
            )
            body = create_body(spec or parse_body_name(name))
            # in meshgraph's world frame, where x runs across the body (SMPL's is y-up)
            template = body.template_vertices().double() @ body.world_rotation.double().T
        n = self.topology.num_vertices
        if not isinstance(template, Tensor) or template.dim() != 2 or template.shape[0] != n:
            shape = tuple(template.shape) if isinstance(template, Tensor) else type(template)
            raise ValueError(f"template must have shape ({n}, 3) (the network's mesh), got {shape}")
        perm = mirror_permutation(template, atol=atol)
        out = copy.deepcopy(self)
        out.vertex_flip = perm.to(self.mesh_regressor.device)
        return out

    def without_output_map(self) -> Pose2Mesh:
        """A copy that answers on the network's own mesh (the model itself if it has no map)."""
        import copy

        if self.output_map is None:
            return self
        out = copy.deepcopy(self)
        out._set_output(None, None)
        out.config = replace(
            self.config,
            body=self.config.working_body or self.config.body,
            body_spec=self.config.working_body_spec,
            working_body=None,
            working_body_spec=None,
        )
        return out

    @property
    def num_vertices(self) -> int:
        """Vertices of the output mesh (the output map's, if there is one)."""
        if self.output_map is not None:
            return self.output_map.num_targets
        return self.topology.num_vertices

    @property
    def part(self) -> str:
        """``"hand"`` for a hand model (its mesh joints are Hand-21), else ``"body"``."""
        return "hand" if self.mesh_joint_set.name == "hand" else "body"

    def network_input(
        self,
        keypoints_2d: Tensor,
        visible: Tensor | None = None,
        exact: Tensor | bool | None = None,
    ) -> Tensor:
        """What PoseNet and MeshNet read from normalised joints, their visibility and exactness.

        Without ``config.visibility_input`` and ``config.exactness_input`` the joints as
        given. With the first, one more channel: 1 for detected joints and 0 for missing ones
        (whose coordinates are zeroed). With the second, one more (the last, which only
        PoseNet reads): 1 for every joint of a sample whose keypoints are exact, 0 for
        detected ones.

        Args:
            keypoints_2d: ``(B, J, 2)`` normalised joints.
            visible: Optional ``(B, J)`` mask of the detected joints (default: all).
            exact: Whether each sample's keypoints are exact: ``(B,)`` bool or one bool for
                all (default: ``False``, detected). Models without the channel ignore it.

        Returns:
            ``(B, J, 2)`` as given, or ``(B, J, 3)`` or ``(B, J, 4)``.

        Raises:
            ValueError: If ``visible`` does not have the keypoints' batch and joint sizes, or
                ``exact`` not the batch's size.
        """
        _check_visible(keypoints_2d, visible)
        flag = _exact_channel(keypoints_2d, exact)
        channels = [keypoints_2d]
        if self.config.visibility_input:
            if visible is None:
                v = keypoints_2d.new_ones(keypoints_2d.shape[:2])
            else:
                v = visible.to(device=keypoints_2d.device, dtype=keypoints_2d.dtype)
            channels = [keypoints_2d * v[..., None], v[..., None]]
        if self.config.exactness_input:
            channels.append(flag)
        return channels[0] if len(channels) == 1 else torch.cat(channels, dim=-1)

    def forward(
        self,
        keypoints_2d: Tensor,
        visible: Tensor | None = None,
        exact: Tensor | bool | None = None,
    ) -> dict[str, Tensor]:
        """From normalised 2D joints ``(B, J, 2)``.

        Args:
            keypoints_2d: ``(B, J, 2)`` normalised joints
                (:func:`~meshgraph.geometry.normalize_keypoints`: 0 where not visible).
            visible: Optional ``(B, J)`` mask of the detected joints (default: all). With
                ``config.visibility_input`` it becomes the networks' third input channel
                (see :meth:`network_input`); other models ignore it.
            exact: Whether each sample's keypoints are exact (``(B,)`` bool, or one bool;
                default: detected). With ``config.exactness_input`` it becomes PoseNet's last
                input channel; other models ignore it.

        Returns:
            ``joints_3d`` ``(B, J, 3)``, ``vertices`` ``(B, V, 3)``, ``mesh_joints_3d``
            ``(B, J', 3)`` (all root-relative, camera axes, metres). A flip-tested model
            (:meth:`flip_tested`) returns the mean of its answers to the input and to the
            input mirrored.
        """
        check_same_device(keypoints_2d, self.mesh_regressor, "keypoints_2d", "Pose2Mesh model")
        if self.vertex_flip is None:
            joints, verts = self._network(keypoints_2d, visible, exact)
        else:  # flip test: the mirrored input in the same batch, its answer mirrored back
            b = keypoints_2d.shape[0]
            swap = self.joint_flip
            mirrored = (keypoints_2d * keypoints_2d.new_tensor([-1.0, 1.0]))[:, swap]
            if visible is not None:
                _check_visible(keypoints_2d, visible)  # the caller's shapes, not the pair's
                visible = torch.cat([visible, visible[:, swap]])
            if isinstance(exact, Tensor):
                _exact_channel(keypoints_2d, exact)  # the caller's batch size, not the pair's
                exact = torch.cat([exact, exact])
            joints, verts = self._network(torch.cat([keypoints_2d, mirrored]), visible, exact)
            flip = verts.new_tensor([-1.0, 1.0, 1.0])
            joints = 0.5 * (joints[:b] + (joints[b:] * flip)[:, swap])
            verts = 0.5 * (verts[:b] + (verts[b:] * flip)[:, self.vertex_flip])
        mesh_joints = regress_joints(verts, self.mesh_regressor, validate=False)
        if self.output_map is not None:
            verts = self.output_map(verts)
        return {"joints_3d": joints, "vertices": verts, "mesh_joints_3d": mesh_joints}

    def _network(
        self, keypoints_2d: Tensor, visible: Tensor | None, exact: Tensor | bool | None
    ) -> tuple[Tensor, Tensor]:
        """PoseNet's joints and MeshNet's vertices (the network's mesh) for one batch."""
        if self.config.mirror:  # the image mirrored: x negated (z-scored, so exactly)
            keypoints_2d = keypoints_2d * keypoints_2d.new_tensor([-1.0, 1.0])
        keypoints_2d = self.network_input(keypoints_2d, visible, exact)
        joints = self.posenet(keypoints_2d)
        if self.config.exactness_input:  # PoseNet's channel only (see __init__)
            keypoints_2d = keypoints_2d[..., :-1]
        verts = self.meshnet(keypoints_2d, joints)
        if self.config.mirror:  # and the 3D answer mirrored back
            flip = verts.new_tensor([-1.0, 1.0, 1.0])
            joints, verts = joints * flip, verts * flip
        return joints, verts

    @torch.no_grad()
    def predict(
        self,
        keypoints: Tensor | np.ndarray,
        confidence_threshold: float = 0.1,
        *,
        exact: bool = False,
    ) -> Prediction:
        """Mesh from pixel keypoints of ``config.joint_set``, in that set's order.

        Args:
            keypoints: ``(J, 2)`` / ``(B, J, 2)`` pixels, or ``(J, 3)`` / ``(B, J, 3)`` with a
                confidence per joint (joints below ``confidence_threshold`` are ignored).
            confidence_threshold: Visibility threshold on the confidences.
            exact: The keypoints are exact (ground truth: projected from motion capture or a
                mesh), not a detector's. Models with ``config.exactness_input`` answer each
                kind as trained for it; others ignore it.

        Joints below the threshold (or with a NaN confidence) are ignored whatever their
        coordinates hold, NaN included.

        Raises:
            TypeError: If the keypoints are not real numbers (complex, boolean, strings).
            ValueError: On a wrong shape or joint count, NaN/inf on a visible joint, fewer
                than 4 visible joints, or all visible joints on one point or one line (in any
                direction: the smaller principal spread is at most
                :data:`MIN_SPREAD_RATIO` of the larger).
        """
        kp = _as_real_tensor(keypoints, "keypoints")
        if kp.dim() == 2:
            kp = kp.unsqueeze(0)
        j = self.joint_set.num_joints
        if kp.dim() != 3 or kp.shape[1] != j or kp.shape[2] not in (2, 3):
            raise ValueError(
                f"keypoints must have shape ({j}, 2|3) or (B, {j}, 2|3) for the "
                f"{self.joint_set.name} joint set ({', '.join(self.joint_set.names)}), "
                f"got {tuple(kp.shape)}"
            )
        if kp.shape[0] == 0:
            raise ValueError("keypoints hold no sample (batch size 0)")
        if not math.isfinite(confidence_threshold):
            raise ValueError(f"confidence_threshold must be finite, got {confidence_threshold}")
        if kp.shape[2] == 3:
            visible = kp[..., 2] >= confidence_threshold  # a NaN confidence: not visible
            kp = kp[..., :2]
        else:
            visible = torch.ones(kp.shape[:2], dtype=torch.bool)
        if not bool(torch.isfinite(kp[visible]).all()):
            raise ValueError("keypoints contain NaN or inf on visible joints")
        # joints that are not used may hold anything (NaN, inf): zero them before any arithmetic
        kp = torch.where(visible[..., None], kp, torch.zeros((), dtype=kp.dtype))
        count = visible.sum(1)
        if bool((count < MIN_VISIBLE_JOINTS).any()):
            raise ValueError(
                f"too few visible joints: {int(count.min())} (at least {MIN_VISIBLE_JOINTS} needed)"
            )
        _check_spread(kp, visible)
        norm, _ = normalize_keypoints(
            kp,
            visible,
            aspect=self.config.aspect,
            scale=self.config.box_scale,
            isotropic=self.config.isotropic_input,
        )
        was_training = self.training
        self.eval()
        try:
            dtype = next(self.parameters()).dtype
            device = next(self.parameters()).device
            out = self(norm.to(device=device, dtype=dtype), visible.to(device), bool(exact))
        finally:
            self.train(was_training)
        camera = fit_weak_perspective(out["joints_3d"].double().cpu(), kp, visible)
        return Prediction(
            out["vertices"], out["joints_3d"], out["mesh_joints_3d"], camera, kp, visible
        )

    # ------------------------------------------------------------------ persistence
    def checkpoint(self) -> dict[str, Any]:
        """Everything :meth:`load` needs: config, weights, faces, hierarchy."""
        arrays = self.hierarchy.to_arrays()
        hier = {k: (str(v) if v.dtype.kind == "U" else torch.from_numpy(v.copy()))
                for k, v in arrays.items()}  # fmt: skip
        ckpt = {
            "format": _FORMAT,
            "version": _VERSION,
            "config": asdict(self.config),
            "state_dict": self.state_dict(),
            "faces": self.topology.faces.clone(),
            "num_vertices": self.topology.num_vertices,
            "hierarchy": hier,
        }
        if self.vertex_flip is not None:
            index = _index_dtype(self.topology.num_vertices)
            ckpt["vertex_flip"] = self.vertex_flip.cpu().to(index)
        if self.output_map is not None:
            faces = self.faces[:, [0, 2, 1]] if self.config.mirror else self.faces
            ckpt["output_map"] = {
                **self.output_map.to_arrays(),
                "faces": faces.cpu().to(_index_dtype(self.output_map.num_targets)),
            }
        return ckpt

    def save(self, path: str | os.PathLike) -> Path:
        """Save to one file, atomically (temporary file, then rename)."""
        checkpoint = self.checkpoint()
        return atomic_write(path, lambda fh: torch.save(checkpoint, fh))

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> Pose2Mesh:
        """Rebuild from :meth:`checkpoint` output.

        The model gets the floating dtype and the device of the saved weights (a float64
        model reloads as float64; weights stored as float16 or bfloat16 load as float32).

        Raises:
            ValueError: If ``ckpt`` is not a complete Pose2Mesh checkpoint of this version.
        """
        if not isinstance(ckpt, dict) or ckpt.get("format") != _FORMAT:
            raise ValueError("not a meshgraph Pose2Mesh checkpoint")
        if ckpt.get("version") != _VERSION:
            raise ValueError(f"checkpoint version {ckpt.get('version')}, expected {_VERSION}")
        missing = [k for k in ("config", "state_dict", "faces", "num_vertices", "hierarchy")
                   if k not in ckpt]  # fmt: skip
        if missing:
            raise ValueError(f"incomplete Pose2Mesh checkpoint: no {', '.join(missing)}")
        state = ckpt["state_dict"]
        if ckpt.get("int8_rows"):  # the largest matrices of shipped weights, stored as int8
            from meshgraph.models.pretrained import from_int8_rows

            stored = ckpt["int8_rows"]
            if not isinstance(stored, dict) or not isinstance(state, dict):
                raise ValueError("int8_rows must map weight names to int8 rows")
            state = dict(state)
            for key, entry in stored.items():
                if key in state or not isinstance(entry, dict):
                    raise ValueError(f"int8_rows: {key!r} is also in the state dict, or not rows")
                state[key] = from_int8_rows(entry)
        floats = [v for v in state.values() if isinstance(v, Tensor) and v.is_floating_point()]
        if "mesh_regressor" not in state or not floats:
            raise ValueError("incomplete Pose2Mesh checkpoint: the weights are missing")
        cfg = dict(ckpt["config"])
        for key in ("joint_channels", "decoder_channels", "fc_hidden"):
            if cfg.get(key) is not None:
                cfg[key] = tuple(cfg[key])
        try:
            config = Pose2MeshConfig(**cfg)
        except TypeError as err:
            raise ValueError(f"the checkpoint's config does not fit this version: {err}") from None
        topology = MeshTopology(ckpt["faces"].cpu(), num_vertices=int(ckpt["num_vertices"]))
        arrays = {
            k: (np.array(v) if isinstance(v, str) else v.cpu().numpy())
            for k, v in ckpt["hierarchy"].items()
        }
        hierarchy = MeshHierarchy.from_arrays(arrays, topology=topology, source="the checkpoint")
        output_map = faces = None
        if ckpt.get("output_map") is not None:
            arrays = ckpt["output_map"]
            if "faces" not in arrays:
                raise ValueError("incomplete output map: no faces")
            output_map, faces = VertexMap.from_arrays(arrays), arrays["faces"].cpu().long()
        model = cls(config, topology, state["mesh_regressor"].cpu(), hierarchy, output_map, faces)
        dtype = floats[0].dtype
        if dtype in (torch.float16, torch.bfloat16):  # half storage (shipped weights): compute
            dtype = torch.float32  # in float32, the weights cast on loading
        model = model.to(dtype=dtype, device=floats[0].device)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise ValueError(f"the weights do not fit the saved config ({first})") from None
        if ckpt.get("vertex_flip") is not None:
            perm = torch.as_tensor(ckpt["vertex_flip"]).cpu().long()
            n = topology.num_vertices
            if perm.shape != (n,) or not torch.equal(perm.sort().values, torch.arange(n)):
                raise ValueError(f"vertex_flip is not a permutation of the {n} vertices")
            model.vertex_flip = perm.to(floats[0].device)
        return model

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: Any = "cpu") -> Pose2Mesh:
        """Load a model saved by :meth:`save` (no body model or other file needed).

        The file is read with ``weights_only=True``: it cannot run code.

        Args:
            path: The ``.pt`` file.
            map_location: Where the weights go, as for :func:`torch.load`: a device or its
                name, a dict such as ``{"cuda:0": "cpu"}``, or a callable.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If it is not a readable Pose2Mesh model (empty, truncated, another
                format), or holds objects other than tensors
                (:class:`~meshgraph.io.UnsafeFileError`).
        """
        from meshgraph.devices import check_device
        from meshgraph.io import load_torch

        if isinstance(map_location, str | torch.device):
            map_location = check_device(map_location)
        ckpt = load_torch(path, what="Pose2Mesh model file", map_location=map_location)
        try:
            return cls.from_checkpoint(ckpt)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
            raise ValueError(f"{path}: not a usable Pose2Mesh model ({err})") from None
