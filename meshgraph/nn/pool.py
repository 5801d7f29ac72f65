"""Pooling and unpooling between the levels of a :class:`~meshgraph.coarsening.MeshHierarchy`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from meshgraph.devices import check_same_device
from meshgraph.nn._layout import gather_vertices, is_vertex_major

if TYPE_CHECKING:  # pragma: no cover
    from meshgraph.coarsening import MeshHierarchy

__all__ = [
    "MeshPool",
    "MeshUnpool",
    "binary_tree_pool",
    "binary_tree_unpool",
    "cluster_pool",
    "cluster_unpool",
    "pair_pool",
]

_REDUCES = ("max", "mean")


def _check_features(x: Tensor, n: int, what: str) -> tuple[Tensor, bool]:
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in (2, 3) or x.shape[-2] != n:
        raise ValueError(f"x must have shape (B, {n}, F) or ({n}, F) {what}, got {tuple(x.shape)}")
    return (x, True) if x.dim() == 3 else (x.unsqueeze(0), False)


def cluster_pool(x: Tensor, cluster: Tensor, num_clusters: int, reduce: str = "max") -> Tensor:
    """Reduce features over clusters: ``out[:, c] = reduce(x[:, i] for i with cluster[i] == c)``.

    Works for any cluster map (clusters of any size); a cluster with no member gets zeros.

    Args:
        x: ``(B, N, F)`` or ``(N, F)`` features.
        cluster: ``(N,)`` int64 cluster id of every vertex, in ``[0, num_clusters)``.
        num_clusters: Number of clusters ``M``.
        reduce: ``"max"`` or ``"mean"``.

    Returns:
        ``(B, M, F)`` or ``(M, F)``.

    Example:
        >>> import torch
        >>> x = torch.tensor([[1.0], [5.0], [2.0]])
        >>> cluster_pool(x, torch.tensor([0, 0, 1]), 2).tolist()
        [[5.0], [2.0]]
    """
    if reduce not in _REDUCES:
        raise ValueError(f"reduce must be one of {_REDUCES}, got {reduce!r}")
    if cluster.dim() != 1:
        raise ValueError(f"cluster must have shape (N,), got {tuple(cluster.shape)}")
    xb, batched = _check_features(x, cluster.shape[0], "matching the cluster map")
    b, _, f = xb.shape
    index = cluster.view(1, -1, 1).expand_as(xb)
    if reduce == "mean":
        out = xb.new_zeros(b, num_clusters, f)
        out = out.scatter_reduce(1, index, xb, "mean", include_self=False)
    else:
        # start from -inf and include it: with include_self=False, PyTorch's backward still
        # counts the initial value as a tied candidate, so a cluster whose max is exactly the
        # initial 0 (common after a ReLU) got a share of its gradient taken away
        out = xb.new_full((b, num_clusters, f), float("-inf"))
        out = out.scatter_reduce(1, index, xb, "amax", include_self=True)
        empty = torch.bincount(cluster, minlength=num_clusters).view(1, -1, 1) == 0
        out = torch.where(empty, torch.zeros((), dtype=out.dtype, device=out.device), out)
    return out if batched else out[0]


def cluster_unpool(x: Tensor, cluster: Tensor) -> Tensor:
    """Copy each cluster's features to its members: ``out[:, i] = x[:, cluster[i]]``.

    Args:
        x: ``(B, M, F)`` or ``(M, F)`` coarse features.
        cluster: ``(N,)`` cluster id of every fine vertex.

    Returns:
        ``(B, N, F)`` or ``(N, F)``.
    """
    if not isinstance(x, Tensor) or x.dim() not in (2, 3):
        raise ValueError(f"x must have shape (B, M, F) or (M, F), got {getattr(x, 'shape', x)}")
    return gather_vertices(x, cluster)


def binary_tree_pool(x: Tensor, reduce: str = "max") -> Tensor:
    """Pool the children ``2k`` and ``2k + 1`` into parent ``k`` (binary-tree layout).

    Args:
        x: ``(B, 2M, F)`` or ``(2M, F)``.
        reduce: ``"max"`` or ``"mean"``.

    Returns:
        ``(B, M, F)`` or ``(M, F)``.
    """
    if reduce not in _REDUCES:
        raise ValueError(f"reduce must be one of {_REDUCES}, got {reduce!r}")
    if not isinstance(x, Tensor) or x.dim() not in (2, 3) or x.shape[-2] % 2:
        raise ValueError(
            f"x must have shape (B, 2M, F) or (2M, F) with an even vertex count, "
            f"got {tuple(getattr(x, 'shape', ()))}"
        )
    if is_vertex_major(x):  # reduce the (V, B, F) buffer and keep its layout
        buf = x.transpose(0, 1).unflatten(0, (x.shape[1] // 2, 2))
        out = buf.amax(dim=1) if reduce == "max" else buf.mean(dim=1)
        return out.transpose(0, 1)
    pairs = x.unflatten(-2, (x.shape[-2] // 2, 2))
    return pairs.amax(dim=-2) if reduce == "max" else pairs.mean(dim=-2)


def binary_tree_unpool(x: Tensor) -> Tensor:
    """Copy parent ``k`` to its children ``2k`` and ``2k + 1`` (binary-tree layout).

    Args:
        x: ``(B, M, F)`` or ``(M, F)``.

    Returns:
        ``(B, 2M, F)`` or ``(2M, F)``.
    """
    if not isinstance(x, Tensor) or x.dim() not in (2, 3):
        raise ValueError(f"x must have shape (B, M, F) or (M, F), got {getattr(x, 'shape', x)}")
    if is_vertex_major(x):
        return x.transpose(0, 1).repeat_interleave(2, dim=0).transpose(0, 1)
    return x.repeat_interleave(2, dim=-2)


def pair_pool(x: Tensor, pairs: Tensor, reduce: str = "max") -> Tensor:
    """Pool clusters of one or two vertices given as member pairs (heavy-edge matching).

    ``out[:, c] = reduce(x[:, pairs[0, c]], x[:, pairs[1, c]])``; a singleton cluster lists
    its vertex twice. Same values and gradients as :func:`cluster_pool` on such clusters, with
    two gathers instead of a scatter.

    Args:
        x: ``(B, N, F)`` or ``(N, F)`` features.
        pairs: ``(2, M)`` int64 member indices.
        reduce: ``"max"`` or ``"mean"``.

    Returns:
        ``(B, M, F)`` or ``(M, F)``.

    Example:
        >>> import torch
        >>> x = torch.tensor([[1.0], [5.0], [2.0]])
        >>> pair_pool(x, torch.tensor([[0, 2], [1, 2]])).tolist()
        [[5.0], [2.0]]
    """
    if reduce not in _REDUCES:
        raise ValueError(f"reduce must be one of {_REDUCES}, got {reduce!r}")
    if pairs.dim() != 2 or pairs.shape[0] != 2:
        raise ValueError(f"pairs must have shape (2, M), got {tuple(pairs.shape)}")
    first, second = gather_vertices(x, pairs[0]), gather_vertices(x, pairs[1])
    if reduce == "max":
        return torch.maximum(first, second)
    return (first + second) * 0.5


def _cluster_pairs(cluster: Tensor, num_clusters: int) -> Tensor | None:
    """``(2, M)``: the two members of every cluster (a singleton twice).

    ``None`` if some cluster has no member or more than two.
    """
    if cluster.numel() == 0:
        return None
    counts = torch.bincount(cluster, minlength=num_clusters)
    if counts.numel() != num_clusters or bool((counts < 1).any() or (counts > 2).any()):
        return None
    order = torch.argsort(cluster, stable=True)
    start = torch.cumsum(counts, 0) - counts
    return torch.stack([order[start], order[start + counts - 1]])


class MeshPool(nn.Module):
    """Pool features from ``level`` to ``level + 1`` of a hierarchy.

    Compact layout: the max (or mean) over each cluster of the cluster map. Heavy-edge
    matching makes clusters of one or two vertices; for such maps the two members of every
    cluster are looked up once and pooling is an element-wise max of two gathers (a singleton
    is its own pair), which is about 3 times faster, forward and backward, than the general
    scatter-max (:func:`cluster_pool`, used for any other map). Binary-tree layout: the max (or
    mean) of children ``2k`` and ``2k + 1``.

    Args:
        hierarchy: The :class:`~meshgraph.coarsening.MeshHierarchy`.
        level: Level of the input, ``0 <= level < num_levels - 1``.
        reduce: ``"max"`` or ``"mean"``.

    Shapes:
        - input: ``(B, N_level, F)`` or ``(N_level, F)``
        - output: ``(B, N_{level+1}, F)`` or ``(N_{level+1}, F)``

    Example:
        >>> from meshgraph import MeshHierarchy
        >>> from meshgraph.generators import grid_mesh
        >>> h = MeshHierarchy.build(grid_mesh(4, 4), num_levels=2)
        >>> MeshPool(h, 0)
        MeshPool(level=0, 16 -> 8, reduce='max', layout='compact')
    """

    def __init__(self, hierarchy: MeshHierarchy, level: int, reduce: str = "max") -> None:
        super().__init__()
        if not 0 <= level < hierarchy.num_levels - 1:
            raise ValueError(f"level must be in [0, {hierarchy.num_levels - 2}], got {level}")
        if reduce not in _REDUCES:
            raise ValueError(f"reduce must be one of {_REDUCES}, got {reduce!r}")
        self.level = level
        self.reduce = reduce
        self.layout = hierarchy.layout
        self.in_vertices = hierarchy.sizes[level]
        self.out_vertices = hierarchy.sizes[level + 1]
        cluster = hierarchy.clusters[level].clone()
        self.register_buffer("cluster", cluster, persistent=False)
        pairs = _cluster_pairs(cluster, self.out_vertices)
        self.register_buffer("pairs", pairs, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Pool ``x`` (see the class docstring for shapes)."""
        _check_features(x, self.in_vertices, f"at level {self.level}")
        check_same_device(x, self.cluster, "x", "MeshPool")
        if self.layout == "binary_tree":
            return binary_tree_pool(x, self.reduce)
        if self.pairs is not None:
            return pair_pool(x, self.pairs, self.reduce)
        return cluster_pool(x, self.cluster, self.out_vertices, self.reduce)

    def __repr__(self) -> str:
        return (
            f"MeshPool(level={self.level}, {self.in_vertices} -> {self.out_vertices}, "
            f"reduce={self.reduce!r}, layout={self.layout!r})"
        )


class MeshUnpool(nn.Module):
    """Copy features from ``level`` to its children at ``level - 1`` (nearest neighbour).

    Args:
        hierarchy: The :class:`~meshgraph.coarsening.MeshHierarchy`.
        level: Level of the input, ``1 <= level < num_levels``.

    Shapes:
        - input: ``(B, N_level, F)`` or ``(N_level, F)``
        - output: ``(B, N_{level-1}, F)`` or ``(N_{level-1}, F)``
    """

    def __init__(self, hierarchy: MeshHierarchy, level: int) -> None:
        super().__init__()
        if not 1 <= level < hierarchy.num_levels:
            raise ValueError(f"level must be in [1, {hierarchy.num_levels - 1}], got {level}")
        self.level = level
        self.layout = hierarchy.layout
        self.in_vertices = hierarchy.sizes[level]
        self.out_vertices = hierarchy.sizes[level - 1]
        self.register_buffer("cluster", hierarchy.clusters[level - 1].clone(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Unpool ``x`` (see the class docstring for shapes)."""
        _check_features(x, self.in_vertices, f"at level {self.level}")
        check_same_device(x, self.cluster, "x", "MeshUnpool")
        if self.layout == "binary_tree":
            return binary_tree_unpool(x)
        return cluster_unpool(x, self.cluster)

    def __repr__(self) -> str:
        return (
            f"MeshUnpool(level={self.level}, {self.in_vertices} -> {self.out_vertices}, "
            f"layout={self.layout!r})"
        )
