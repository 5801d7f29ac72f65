"""PoseNet (2D -> 3D joints), MeshNet (joints -> mesh, coarse to fine) and the FC baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from meshgraph.bodies.joint_sets import JointSet, get_joint_set, joint_graph
from meshgraph.geometry import frame_from_joints
from meshgraph.nn.blocks import ChebBlock, MeshBlock, MeshDecoder
from meshgraph.nn.convs import ChebConvFactory, ConvFactory, scale_weights_
from meshgraph.nn.pool import MeshUnpool

if TYPE_CHECKING:  # pragma: no cover
    from meshgraph.coarsening import MeshHierarchy

__all__ = [
    "FRAME_JOINTS",
    "FCBaseline",
    "MeshNet",
    "PoseNet",
    "default_decoder_channels",
    "joint_frame",
]

_VARIANTS = ("coarse_to_fine", "direct")


class _ResidualMLPBlock(nn.Module):
    def __init__(self, width: int, dropout: float, norm: str) -> None:
        super().__init__()

        def bn() -> nn.Module:
            return nn.BatchNorm1d(width) if norm == "batch" else nn.Identity()

        self.layers = nn.Sequential(
            bn(), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, width),
            bn(), nn.ReLU(), nn.Dropout(dropout), nn.Linear(width, width),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


class PoseNet(nn.Module):
    """Pose2Mesh's PoseNet: lifts normalised 2D joints to root-relative 3D joints.

    ``Linear(2J -> W)``, two residual blocks of ``[BatchNorm, ReLU, Dropout, Linear(W)] x 2``,
    ``Linear(W -> 3J)``. The paper uses ``W = 4096`` (67 M parameters for 17 joints); the
    default here is 1024 (4.3 M), which trains in minutes on a CPU and, on the synthetic
    data, was within the noise of wider networks in our runs (see the Pose2Mesh example).
    Four blocks instead of two (``Pose2MeshConfig.posenet_blocks``) lifted the body within
    1.3 mm of two, at 1.6 times the training time (``python -m benchmarks.posenet_options``).

    Args:
        num_joints: ``J``.
        width: Hidden width ``W``.
        num_blocks: Residual blocks.
        dropout: Dropout probability.
        norm: ``"batch"`` (the paper) or ``"none"``.
        in_channels: Numbers per joint: 2 (x, y), one more with a visibility channel and one
            more with an exactness channel (see :class:`~meshgraph.models.Pose2Mesh`).

    Shapes:
        - input: ``(B, J, in_channels)`` normalised 2D joints
        - output: ``(B, J, 3)`` root-relative 3D joints (metres)
    """

    def __init__(
        self,
        num_joints: int,
        width: int = 1024,
        num_blocks: int = 2,
        dropout: float = 0.5,
        norm: str = "batch",
        in_channels: int = 2,
    ) -> None:
        super().__init__()
        if norm not in ("batch", "none"):
            raise ValueError(f"norm must be 'batch' or 'none', got {norm!r}")
        if in_channels not in (2, 3, 4):
            raise ValueError(f"in_channels must be 2, 3 or 4, got {in_channels!r}")
        self.num_joints = num_joints
        self.in_channels = in_channels
        self.inp = nn.Linear(in_channels * num_joints, width)
        self.blocks = nn.Sequential(
            *(_ResidualMLPBlock(width, dropout, norm) for _ in range(num_blocks))
        )
        self.out = nn.Linear(width, 3 * num_joints)

    def forward(self, keypoints_2d: Tensor) -> Tensor:
        """Lift ``(B, J, in_channels)`` to ``(B, J, 3)``."""
        if keypoints_2d.dim() != 3 or keypoints_2d.shape[1:] != (self.num_joints, self.in_channels):
            raise ValueError(
                f"keypoints must have shape (B, {self.num_joints}, {self.in_channels}), "
                f"got {tuple(keypoints_2d.shape)}"
            )
        b = keypoints_2d.shape[0]
        h = self.blocks(self.inp(keypoints_2d.reshape(b, -1)))
        return self.out(h).view(b, self.num_joints, 3)


def default_decoder_channels(
    sizes: Sequence[int], top_level: int, coarse: int = 128, fine: int = 32
) -> list[int]:
    """Decoder widths per level (finest first), from ``fine`` at level 0 to ``coarse`` at the top.

    Geometric interpolation in the vertex count, rounded to multiples of 8, so that the
    finest (most numerous) levels are the narrowest. Derived from the hierarchy's sizes: no
    mesh size is hard-coded.

    Example:
        >>> default_decoder_channels([13718, 7246, 3829, 2018, 1072, 565, 304, 166], 7)
        [32, 40, 48, 56, 72, 88, 104, 128]
    """
    if not 0 <= top_level < len(sizes):
        raise ValueError(f"top_level must be in [0, {len(sizes) - 1}], got {top_level}")
    if top_level == 0:
        return [fine]
    lo, hi = math.log(sizes[top_level]), math.log(sizes[0])
    out = []
    for level in range(top_level + 1):
        t = 0.0 if hi == lo else (hi - math.log(sizes[level])) / (hi - lo)
        width = fine * (coarse / fine) ** t
        out.append(max(8, round(width / 8.0) * 8))
    return out


#: Joints that define the canonical frame of :func:`joint_frame`: (up_from, up_to, side_from,
#: side_to) by joint name, per joint set.
FRAME_JOINTS: dict[str, tuple[str, str, str, str]] = {
    "coco": ("pelvis", "neck", "right_hip", "left_hip"),
    "body29": ("pelvis", "neck", "right_hip", "left_hip"),
    "h36m": ("Pelvis", "Neck", "R_Hip", "L_Hip"),
    "hand": ("wrist", "middle_1", "pinky_1", "index_1"),
}


def joint_frame(joints: Tensor, joint_set: str | JointSet, eps: float = 1e-6) -> Tensor:
    """A rotation per sample that follows the body (or hand) in ``joints`` ``(B, J, 3)``.

    Columns: the *side* axis (right hip -> left hip; pinky -> index knuckle), made orthogonal
    to the *up* axis (pelvis -> neck; wrist -> middle knuckle), the up axis, and their cross
    product. ``joints @ R`` gives the joints in that body frame; ``y @ R.T`` maps body-frame
    points back. Rotating the joints by ``Q`` turns the frame into ``Q @ R``. A side axis
    parallel to the up axis (degenerate input) falls back to a fixed perpendicular.

    Example:
        >>> j = torch.zeros(1, 19, 3)
        >>> j[0, 18] = torch.tensor([0.0, 0.0, 1.0])  # neck above the pelvis (joint 17)
        >>> j[0, 11], j[0, 12] = torch.tensor([1.0, 0, 0]), torch.tensor([-1.0, 0, 0])
        >>> joint_frame(j, "coco")[0]  # columns: side +x, up +z, side x up = -y
        tensor([[ 1.,  0.,  0.],
                [ 0.,  0., -1.],
                [ 0.,  1.,  0.]])
    """
    js = get_joint_set(joint_set)
    if js.name not in FRAME_JOINTS:
        raise ValueError(f"no body frame defined for joint set {js.name!r}")
    a, b, c, d = (js.names.index(n) for n in FRAME_JOINTS[js.name])
    return frame_from_joints(joints, up=(a, b), side=(c, d), eps=eps)


class MeshNet(nn.Module):
    """Pose2Mesh's MeshNet: joints to mesh, coarse to fine.

    A joint-graph GCN, a fully connected lift to a coarse mesh level, then a
    :class:`~meshgraph.nn.MeshDecoder` up to the full mesh.

    Input per joint: the normalised 2D joint and the 3D joint (5 channels). The 3D part is
    detached, as in Pose2Mesh, so the mesh loss does not train PoseNet through it.

    The output head starts at 1 % of its Glorot scale, so the first meshes are near the
    root instead of metres away: measured on the Anny hand (8 samples, Adam, 100 steps), the
    default scale left the vertex L1 at 154 mm and PA-MPVPE at 45 mm, the small head reached
    6 mm and 9 mm.

    With ``canonical_frame=True`` (not in the paper) the 3D joints are first turned into the
    body frame of :func:`joint_frame` and the predicted mesh is turned back, so the graph
    network never has to produce a global rotation: rotating the 3D input joints rotates the
    output mesh exactly.

    Variants (the paper's ablation):

    * ``"coarse_to_fine"``: the decoder works level by level from ``coarse_level`` up.
    * ``"direct"``: the coarse features are copied straight to the full mesh (nearest
      neighbour through every level) and all decoder blocks run at full resolution.

    Args:
        joint_set: The input joint set (its graph: bones, flip pairs, self-loops).
        hierarchy: The mesh hierarchy (either layout; the output is in mesh order).
        coarse_level: Level the fully connected layer maps to (default: the coarsest).
        joint_channels: Widths of the joint-graph blocks.
        coarse_channels: Width at the coarse level.
        decoder_channels: Decoder widths per level, finest first (default:
            :func:`default_decoder_channels`).
        K: Chebyshev order (the joint graph's blocks, and the mesh's by default).
        variant: ``"coarse_to_fine"`` or ``"direct"``.
        norm: Block normalisation (``"batch"``, ``"group"``, ``"none"``).
        canonical_frame: Work in the body frame of the 3D joints (see above).
        keypoint_channels: Numbers per 2D joint: 2, or 3 with a visibility channel.
        conv: The convolution factory of the mesh blocks and head (:mod:`meshgraph.nn.convs`;
            default: Chebyshev of order ``K``). The joint-graph blocks stay Chebyshev: a
            joint graph has no faces to order spirals by.

    Shapes:
        - keypoints_2d: ``(B, J, keypoint_channels)``, joints_3d: ``(B, J, 3)``
        - output: ``(B, V, 3)`` vertices in mesh order
    """

    def __init__(
        self,
        joint_set: str | JointSet,
        hierarchy: MeshHierarchy,
        *,
        coarse_level: int | None = None,
        joint_channels: Sequence[int] = (32, 64, 64),
        coarse_channels: int = 64,
        decoder_channels: Sequence[int] | None = None,
        K: int = 3,
        variant: str = "coarse_to_fine",
        norm: str = "batch",
        canonical_frame: bool = False,
        keypoint_channels: int = 2,
        conv: ConvFactory | None = None,
    ) -> None:
        super().__init__()
        if keypoint_channels not in (2, 3):
            raise ValueError(f"keypoint_channels must be 2 or 3, got {keypoint_channels!r}")
        self.keypoint_channels = keypoint_channels
        factory = conv or ChebConvFactory(K)
        if canonical_frame and get_joint_set(joint_set).name not in FRAME_JOINTS:
            raise ValueError(f"canonical_frame needs one of the joint sets {list(FRAME_JOINTS)}")
        self.canonical_frame = bool(canonical_frame)
        if variant not in _VARIANTS:
            raise ValueError(f"variant must be one of {_VARIANTS}, got {variant!r}")
        self.joint_set = get_joint_set(joint_set)
        self.hierarchy = hierarchy
        top = hierarchy.num_levels - 1 if coarse_level is None else int(coarse_level)
        if not 0 <= top < hierarchy.num_levels:
            raise ValueError(f"coarse_level must be in [0, {hierarchy.num_levels - 1}], got {top}")
        self.variant = variant
        self.coarse_level = top
        jg = joint_graph(self.joint_set)
        widths = [keypoint_channels + 3, *joint_channels]
        self.joint_blocks = nn.Sequential(
            *(
                ChebBlock(widths[i], widths[i + 1], K, jg, norm=norm)
                for i in range(len(joint_channels))
            )
        )
        j = self.joint_set.num_joints
        self.coarse_vertices = hierarchy.sizes[top]
        self.coarse_channels = coarse_channels
        self.fc = nn.Linear(j * widths[-1], self.coarse_vertices * coarse_channels)
        if decoder_channels is None:
            decoder_channels = default_decoder_channels(hierarchy.sizes, top)
        if len(decoder_channels) != top + 1:
            raise ValueError(
                f"decoder_channels needs {top + 1} entries (levels 0 to {top}), "
                f"got {len(decoder_channels)}"
            )
        if variant == "coarse_to_fine":
            self.decoder = MeshDecoder(
                hierarchy, coarse_channels, decoder_channels, 3, K, head_init_scale=0.01,
                conv=factory, norm=norm,
            )  # fmt: skip
        else:
            # the coarse features copied to the full mesh, then the same sequence of block
            # widths, every block at full resolution
            self.upsample = nn.ModuleList(MeshUnpool(hierarchy, lv) for lv in range(top, 0, -1))
            widths = [coarse_channels, *list(decoder_channels)[::-1]]
            fine = hierarchy.topologies[0]
            self.direct_blocks = nn.ModuleList(
                MeshBlock(widths[i], widths[i + 1], fine, conv=factory, norm=norm)
                for i in range(len(widths) - 1)
            )
            self.direct_head = factory(widths[-1], 3, fine)
            scale_weights_(self.direct_head, 0.01)

    def _upsample_to_fine(self, x: Tensor) -> Tensor:
        for unpool in self.upsample:
            x = unpool(x)
        return x

    def forward(self, keypoints_2d: Tensor, joints_3d: Tensor) -> Tensor:
        """Vertices ``(B, V, 3)`` (mesh order) from 2D and 3D joints."""
        j = self.joint_set.num_joints
        c = self.keypoint_channels
        if keypoints_2d.shape[1:] != (j, c) or joints_3d.shape[1:] != (j, 3):
            raise ValueError(
                f"expected keypoints (B, {j}, {c}) and joints (B, {j}, 3), got "
                f"{tuple(keypoints_2d.shape)} and {tuple(joints_3d.shape)}"
            )
        joints_3d = joints_3d.detach()
        frame = None
        if self.canonical_frame:
            frame = joint_frame(joints_3d, self.joint_set)
            joints_3d = joints_3d @ frame
        x = torch.cat([keypoints_2d, joints_3d], dim=-1)
        x = self.joint_blocks(x)
        b = x.shape[0]
        coarse = self.fc(x.reshape(b, -1)).view(b, self.coarse_vertices, self.coarse_channels)
        if self.variant == "coarse_to_fine":
            out = self.decoder(coarse)
        else:
            h = self._upsample_to_fine(coarse)
            for block in self.direct_blocks:
                h = block(h)
            out = self.direct_head(h)
        out = self.hierarchy.from_layout(out)
        if frame is None:
            return out
        # out @ frame^T, as (frame @ out^T)^T: a (3, 3) x (3, V) product per sample took 0.6
        # against 1.2 ms forward and backward for the body quick batch (2 CPU cores)
        return (frame @ out.transpose(1, 2)).transpose(1, 2).contiguous()


class FCBaseline(nn.Module):
    """The paper's fully connected baseline: an MLP from 2D + 3D joints to vertex coordinates.

    Args:
        num_joints: ``J``.
        num_vertices: ``V``.
        hidden: Hidden widths.
        keypoint_channels: Numbers per 2D joint: 2, or 3 with a visibility channel.

    Shapes:
        - keypoints_2d: ``(B, J, keypoint_channels)``, joints_3d: ``(B, J, 3)``
        - output: ``(B, V, 3)``
    """

    def __init__(
        self,
        num_joints: int,
        num_vertices: int,
        hidden: Sequence[int] = (1024, 1024),
        keypoint_channels: int = 2,
    ) -> None:
        super().__init__()
        if keypoint_channels not in (2, 3):
            raise ValueError(f"keypoint_channels must be 2 or 3, got {keypoint_channels!r}")
        self.keypoint_channels = keypoint_channels
        layers: list[nn.Module] = []
        width = (keypoint_channels + 3) * num_joints
        for h in hidden:
            layers += [nn.Linear(width, h), nn.BatchNorm1d(h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, 3 * num_vertices))
        with torch.no_grad():
            layers[-1].weight.mul_(0.01)  # start near the root, as MeshNet does
        self.mlp = nn.Sequential(*layers)
        self.num_joints, self.num_vertices = num_joints, num_vertices

    def forward(self, keypoints_2d: Tensor, joints_3d: Tensor) -> Tensor:
        """Vertices ``(B, V, 3)``."""
        b = keypoints_2d.shape[0]
        x = torch.cat([keypoints_2d, joints_3d.detach()], dim=-1).reshape(b, -1)
        if x.shape[1] != (self.keypoint_channels + 3) * self.num_joints:
            raise ValueError(
                f"expected {self.num_joints} joints, got input of shape {tuple(x.shape)}"
            )
        return self.mlp(x).view(b, self.num_vertices, 3)
