"""Mesh losses for a fixed topology, batched ``(B, V, 3)``, with validity masks.

Each loss is a function plus a thin :class:`torch.nn.Module`:

* :func:`vertex_loss`: L1 over vertex coordinates.
* :func:`joint_loss`: L1 between joints regressed from the predicted mesh and target joints.
* :func:`normal_vector_loss`: the Pose2Mesh normal-vector loss: for each face, the mean
  absolute cosine between the three predicted (unit) edge vectors and the ground-truth unit
  face normal. It pushes predicted faces to lie in the target faces' planes. It is *not*
  pytorch3d's ``mesh_normal_consistency`` (which compares the normals of neighbouring faces
  of one mesh).
* :func:`edge_length_loss`: mean absolute difference of every face's three edge lengths.
* :func:`laplacian_loss`: uniform-Laplacian smoothing, absolute or relative to a target.

Masks: ``mask`` is ``(B,)`` (per sample), ``(B, N)`` (per vertex / joint / face) or anything
that broadcasts to the per-element loss; 0 drops an element. ``reduction="mean"`` averages
over the *valid* elements (the Pose2Mesh release averaged over all elements, masked ones
counted as zeros; the two agree when everything is valid).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from meshgraph.devices import check_same_device
from meshgraph.mesh import MeshTopology, check_vertices

__all__ = [
    "EdgeLengthLoss",
    "JointLoss",
    "LaplacianLoss",
    "NormalVectorLoss",
    "VertexLoss",
    "edge_length_loss",
    "joint_loss",
    "laplacian_loss",
    "normal_vector_loss",
    "regress_joints",
    "vertex_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_pair(pred: Tensor, target: Tensor, last: int | None = 3) -> None:
    for name, t in (("pred", pred), ("target", target)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor")
        if t.dim() != 3 or (last is not None and t.shape[-1] != last):
            raise ValueError(f"{name} must have shape (B, N, {last}), got {tuple(t.shape)}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    check_same_device(pred, target, "pred", "target")


def _reduce(loss: Tensor, mask: Tensor | None, reduction: str) -> Tensor:
    """Apply the mask to an elementwise ``(B, N, C)`` loss and reduce it."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if mask is None:  # no weights to apply: skip the multiplication (and its backward)
        if reduction == "none":
            return loss
        if reduction == "sum" or loss.numel() == 0:
            return loss.sum()  # an empty mean is 0, as with a mask
        return loss.mean()
    if not isinstance(mask, Tensor):
        raise TypeError(f"mask must be a tensor, got {type(mask).__name__}")
    weight = mask.to(loss.dtype)
    if weight.dim() == 1:
        weight = weight.view(-1, 1, 1)
    elif weight.dim() == 2:
        weight = weight.unsqueeze(-1)
    try:
        torch.broadcast_shapes(weight.shape, loss.shape)
    except RuntimeError as err:
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the loss "
            f"{tuple(loss.shape)} (use (B,), (B, N) or (B, N, C))"
        ) from err
    weighted = loss * weight
    if reduction == "none":
        return weighted
    if reduction == "sum":
        return weighted.sum()
    count = weight.expand_as(loss).sum()
    return weighted.sum() / count.clamp_min(1e-12)


def vertex_loss(
    pred: Tensor, target: Tensor, mask: Tensor | None = None, reduction: str = "mean"
) -> Tensor:
    """L1 distance between predicted and target vertex coordinates.

    Args:
        pred: ``(B, V, 3)`` predicted vertices.
        target: ``(B, V, 3)`` target vertices.
        mask: Optional validity, ``(B,)``, ``(B, V)`` or ``(B, V, 3)``.
        reduction: ``"mean"`` (over valid coordinates), ``"sum"`` or ``"none"``.

    Returns:
        A scalar, or ``(B, V, 3)`` for ``reduction="none"``.

    Example:
        >>> p = torch.zeros(1, 2, 3)
        >>> vertex_loss(p, p + 0.5)
        tensor(0.5000)
    """
    _check_pair(pred, target)
    return _reduce((pred - target).abs(), mask, reduction)


def regress_joints(vertices: Tensor, regressor: Tensor) -> Tensor:
    """Joints ``J = R V`` from vertices ``(B, V, 3)`` and a ``(J, V)`` regressor.

    The regressor may be dense or a torch sparse (COO/CSR) matrix.

    Returns:
        ``(B, J, 3)`` joints.
    """
    vertices = check_vertices(vertices, None, name="vertices")
    if regressor.dim() != 2 or regressor.shape[1] != vertices.shape[1]:
        raise ValueError(
            f"regressor must have shape (J, {vertices.shape[1]}) for vertices "
            f"{tuple(vertices.shape)}, got {tuple(regressor.shape)}"
        )
    b, v, _ = vertices.shape
    flat = vertices.transpose(0, 1).reshape(v, b * 3)
    reg = regressor.to(vertices.dtype)
    joints = torch.sparse.mm(reg, flat) if reg.is_sparse or reg.is_sparse_csr else reg @ flat
    return joints.view(-1, b, 3).transpose(0, 1)


def joint_loss(
    pred_vertices: Tensor,
    target_joints: Tensor,
    regressor: Tensor,
    mask: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """L1 between joints regressed from the predicted mesh and target joints.

    Args:
        pred_vertices: ``(B, V, 3)``.
        target_joints: ``(B, J, 3)``.
        regressor: ``(J, V)`` joint regressor (dense or sparse).
        mask: Optional validity, ``(B,)``, ``(B, J)`` or ``(B, J, 3)``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    joints = regress_joints(pred_vertices, regressor)
    _check_pair(joints, target_joints)
    return _reduce((joints - target_joints).abs(), mask, reduction)


def _face_edges(vertices: Tensor, faces: Tensor) -> Tensor:
    """The edges ``b - a``, ``c - a``, ``c - b`` of every face ``(a, b, c)``: ``(F, 3, B, 3)``.

    Gathered vertex-major, ``(V, B, 3)``, where each index picks a contiguous row of the whole
    batch (and the backward pass adds rows back with ``index_add_``); a mesh decoder's output
    is already laid out so. Indexing the ``(B, V, 3)`` axis instead scatters element by element
    in the backward pass, several times slower on the CPU.
    """
    rows = vertices.transpose(0, 1).contiguous()  # a no-op for (V, B, 3) storage
    f = faces.to(vertices.device)
    start = f[:, (0, 0, 1)].reshape(-1)
    end = f[:, (1, 2, 2)].reshape(-1)
    edges = rows.index_select(0, end) - rows.index_select(0, start)
    return edges.view(f.shape[0], 3, *rows.shape[1:])


def _as_batch_first(loss: Tensor) -> Tensor:
    """``(F, 3, B)`` per-edge values as the documented ``(B, F, 3)`` (a view)."""
    return loss.permute(2, 0, 1)


def _faces_of(topology: MeshTopology | Tensor, num_vertices: int) -> Tensor:
    """The ``(F, 3)`` faces, checked against the ``num_vertices`` of the vertex tensors."""
    if isinstance(topology, MeshTopology):
        if topology.num_vertices != num_vertices:
            raise ValueError(
                f"the vertices have {num_vertices} vertices but the topology has "
                f"{topology.num_vertices}"
            )
        return topology.faces
    if (
        not isinstance(topology, Tensor)
        or topology.dim() != 2
        or topology.shape[1] != 3
        or topology.is_floating_point()
        or topology.is_complex()
        or topology.dtype == torch.bool
    ):
        raise TypeError("faces must be a MeshTopology or an (F, 3) integer tensor")
    if topology.numel() and (int(topology.min()) < 0 or int(topology.max()) >= num_vertices):
        raise ValueError(
            f"face indices must lie in [0, {num_vertices - 1}] for {num_vertices} vertices, got "
            f"[{int(topology.min())}, {int(topology.max())}]"
        )
    return topology.long()


def normal_vector_loss(
    pred: Tensor,
    target: Tensor,
    faces: MeshTopology | Tensor,
    mask: Tensor | None = None,
    reduction: str = "mean",
    eps: float = 1e-8,
) -> Tensor:
    """Pose2Mesh's normal-vector loss.

    For every face ``(a, b, c)``: ``n`` is the unit normal of the *target* face and
    ``e_1, e_2, e_3`` the unit vectors of the *predicted* edges ``b - a``, ``c - a``,
    ``c - b``; the loss is ``|<e_k, n>|`` per edge (``(B, F, 3)`` elements), averaged.

    Args:
        pred: ``(B, V, 3)`` predicted vertices.
        target: ``(B, V, 3)`` target vertices.
        faces: A :class:`~meshgraph.mesh.MeshTopology` of ``V`` vertices, or ``(F, 3)`` integer
            faces indexing ``[0, V)``.
        mask: Optional validity, ``(B,)``, ``(B, F)`` or ``(B, F, 3)``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"`` (``(B, F, 3)``).
        eps: Guards the normalisation of zero-length edges and normals.
    """
    _check_pair(pred, target)
    f = _faces_of(faces, pred.shape[1])
    edges = _face_edges(pred, f)  # (F, 3, B, 3)
    target_edges = _face_edges(target, f)
    normal = torch.linalg.cross(target_edges[:, 0], target_edges[:, 1], dim=-1)
    normal = nn.functional.normalize(normal, dim=-1, eps=eps)  # (F, B, 3)
    # <e / max(|e|, eps), n>, without materialising the unit edges
    cos = (edges * normal.unsqueeze(1)).sum(-1) / edges.norm(dim=-1).clamp_min(eps)
    return _reduce(_as_batch_first(cos.abs()), mask, reduction)


def edge_length_loss(
    pred: Tensor,
    target: Tensor,
    faces: MeshTopology | Tensor,
    mask: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Mean absolute difference of the three edge lengths of every face.

    Edges ``b - a``, ``c - a``, ``c - b`` of each face ``(a, b, c)``; elements ``(B, F, 3)``.

    Args:
        pred: ``(B, V, 3)`` predicted vertices.
        target: ``(B, V, 3)`` target vertices.
        faces: A :class:`~meshgraph.mesh.MeshTopology` of ``V`` vertices, or ``(F, 3)`` integer
            faces indexing ``[0, V)``.
        mask: Optional validity, ``(B,)``, ``(B, F)`` or ``(B, F, 3)``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    _check_pair(pred, target)
    f = _faces_of(faces, pred.shape[1])
    lengths = _face_edges(pred, f).norm(dim=-1)  # (F, 3, B)
    target_lengths = _face_edges(target, f).norm(dim=-1)
    return _reduce(_as_batch_first((lengths - target_lengths).abs()), mask, reduction)


def laplacian_loss(
    pred: Tensor,
    topology: MeshTopology,
    target: Tensor | None = None,
    mask: Tensor | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Uniform-Laplacian smoothing term.

    The uniform Laplacian coordinate of vertex ``i`` is ``delta_i = v_i - mean_{j ~ i} v_j``
    (0 for isolated vertices). Without ``target`` the loss is ``||delta_i(pred)||``; with it,
    ``||delta_i(pred) - delta_i(target)||`` (keeps the target's local shape). Elements are
    ``(B, V, 1)``.

    Args:
        pred: ``(B, V, 3)``.
        topology: The mesh.
        target: Optional ``(B, V, 3)``.
        mask: Optional validity, ``(B,)`` or ``(B, V)``.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    if target is None:
        _check_pair(pred, pred)
        x = pred
    else:
        _check_pair(pred, target)
        x = pred - target
    if x.shape[1] != topology.num_vertices:
        raise ValueError(
            f"pred has {x.shape[1]} vertices but the topology has {topology.num_vertices}"
        )
    adj = topology.weighted_adjacency(x.dtype)
    if adj.device != x.device:
        adj = adj.to(x.device)
    b, v, _ = x.shape
    flat = x.transpose(0, 1).reshape(v, b * 3)
    deg = topology.degree.to(device=x.device, dtype=x.dtype).clamp_min(1e-12).unsqueeze(1)
    mean_nb = torch.sparse.mm(adj, flat) / deg
    has_nb = (topology.degree > 0).to(device=x.device, dtype=x.dtype).unsqueeze(1)
    delta = (flat - mean_nb) * has_nb
    norms = delta.view(v, b, 3).norm(dim=-1).t().unsqueeze(-1)  # (B, V, 1)
    return _reduce(norms, mask, reduction)


class VertexLoss(nn.Module):
    """Module form of :func:`vertex_loss`."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """See :func:`vertex_loss`."""
        return vertex_loss(pred, target, mask, self.reduction)


class JointLoss(nn.Module):
    """Module form of :func:`joint_loss`; the regressor is a (non-persistent) buffer."""

    def __init__(self, regressor: Tensor, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("regressor", regressor, persistent=False)
        self.reduction = reduction

    def forward(
        self, pred_vertices: Tensor, target_joints: Tensor, mask: Tensor | None = None
    ) -> Tensor:
        """See :func:`joint_loss`."""
        return joint_loss(pred_vertices, target_joints, self.regressor, mask, self.reduction)


class NormalVectorLoss(nn.Module):
    """Module form of :func:`normal_vector_loss` for a fixed topology."""

    def __init__(self, topology: MeshTopology, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("faces", topology.faces.clone(), persistent=False)
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """See :func:`normal_vector_loss`."""
        return normal_vector_loss(pred, target, self.faces, mask, self.reduction)


class EdgeLengthLoss(nn.Module):
    """Module form of :func:`edge_length_loss` for a fixed topology."""

    def __init__(self, topology: MeshTopology, reduction: str = "mean") -> None:
        super().__init__()
        self.register_buffer("faces", topology.faces.clone(), persistent=False)
        self.reduction = reduction

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> Tensor:
        """See :func:`edge_length_loss`."""
        return edge_length_loss(pred, target, self.faces, mask, self.reduction)


class LaplacianLoss(nn.Module):
    """Module form of :func:`laplacian_loss` for a fixed topology."""

    def __init__(self, topology: MeshTopology, reduction: str = "mean") -> None:
        super().__init__()
        self.topology = topology
        self.reduction = reduction

    def forward(
        self, pred: Tensor, target: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """See :func:`laplacian_loss`."""
        return laplacian_loss(pred, self.topology, target, mask, self.reduction)
