"""Heavy-edge ("Graclus") coarsening of fixed topologies, and the level hierarchy.

One coarsening step matches each vertex with at most one neighbour, greedily:

1. Vertices are visited in ascending order of their weighted degree ``d_i = sum_j W_ij``
   (self-loops included). The sort is stable, so vertices of equal degree are visited in
   ascending index order.
2. An unmatched vertex ``i`` is matched with the unmatched neighbour ``j`` that maximises the
   normalised-cut score ``(2 W_ij + W_ii + W_jj) / (d_i + d_j)``; among equal scores the
   neighbour with the smallest index wins. A vertex with no unmatched neighbour stays alone
   (a singleton).
3. Cluster ids are given in visit order, from 0.

The coarse graph is ``W' = P^T W P`` (``P`` the 0/1 cluster matrix), so from level 1 on the
graph has self-loops (the weight inside each cluster) and integer weights above 1. Each level
has about half the vertices of the one below (a bit more, because of singletons).

Two layouts of the levels are offered (``layout=``):

* ``"compact"`` (default): each level holds exactly its real vertices. Pooling is a scatter
  (max or mean) over the fine-to-coarse cluster map; unpooling copies each parent's features to
  its children.
* ``"binary_tree"``: the padded layout of the Pose2Mesh release. From the coarsest level up,
  each coarse vertex gets exactly two children, isolated fake vertices are added where a vertex
  was a singleton, and every level is permuted so that coarse vertex ``k`` has children
  ``2k`` and ``2k + 1``. Every level is exactly half the one below; pooling is a reshape. The
  permutation of each level (and its inverse) maps data to and from mesh order.

``compat="pose2mesh"`` reproduces the matching order of the Pose2Mesh release, quirks included
(NumPy's default unstable ``argsort`` of the column sums, level-0 degrees without the diagonal,
``W_ii`` read as the first stored entry of row ``i``, ``1e-9`` added to ``d_i + d_j``) and makes
the levels' default Laplacian rescale ``"pose2mesh"``. Unlike the release it accepts isolated
vertices. The default, ``compat=None``, does the clean thing described above.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from meshgraph.io import atomic_write
from meshgraph.mesh import GraphTopology, MeshTopology

__all__ = [
    "LAYOUTS",
    "MeshHierarchy",
    "coarsen",
    "default_cache_dir",
    "heavy_edge_matching",
]

Layout = Literal["compact", "binary_tree"]
Compat = Literal["pose2mesh"] | None
#: The supported hierarchy layouts.
LAYOUTS: tuple[str, ...] = ("compact", "binary_tree")
_COMPATS = (None, "pose2mesh")
_FORMAT_VERSION = 1


def _check_compat(compat: str | None) -> None:
    if compat not in _COMPATS:
        raise ValueError(f"compat must be None or 'pose2mesh', got {compat!r}")


def _as_csr(adjacency: sp.spmatrix | sp.sparray | GraphTopology) -> sp.csr_matrix:
    if isinstance(adjacency, GraphTopology):
        return adjacency.adjacency
    csr = sp.csr_matrix(adjacency, dtype=np.float64)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.sort_indices()
    if csr.shape[0] != csr.shape[1]:
        raise ValueError(f"adjacency must be square, got shape {csr.shape}")
    return csr


def heavy_edge_matching(
    adjacency: sp.spmatrix | sp.sparray | GraphTopology,
    *,
    compat: Compat = None,
    first_level: bool = True,
) -> np.ndarray:
    """One step of heavy-edge matching with the normalised-cut score.

    See the module docstring for the rule.

    Args:
        adjacency: Symmetric non-negative ``(N, N)`` weights (SciPy sparse or a topology).
        compat: ``None`` (clean, stable order) or ``"pose2mesh"`` (the release's quirks).
        first_level: Only used by ``compat="pose2mesh"``: the release takes the degrees
            without the diagonal on the first level and with it afterwards.

    Returns:
        ``(N,)`` int64 cluster id of every vertex, ids ``0 .. M-1`` in visit order; each
        cluster has one or two vertices.

    Example:
        >>> import scipy.sparse as sp
        >>> path = sp.csr_matrix(([1.0] * 6, ([0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2])), (4, 4))
        >>> heavy_edge_matching(path).tolist()
        [0, 0, 1, 1]
    """
    _check_compat(compat)
    w = _as_csr(adjacency)
    n = w.shape[0]
    indptr, indices, data = w.indptr, w.indices, w.data
    rows = np.repeat(np.arange(n), np.diff(indptr))
    colsum = np.asarray(w.sum(axis=0)).reshape(-1)
    if compat == "pose2mesh":
        order = np.argsort(colsum)  # the release: default (unstable) argsort
        degree = colsum - w.diagonal() if first_level else colsum
        # "W_ii": the first stored entry of row i (0 for an empty row)
        first = np.zeros(n)
        nonempty = np.diff(indptr) > 0
        first[nonempty] = data[indptr[:-1][nonempty]]
        self_w = first
        score = (2.0 * data + self_w[rows] + self_w[indices]) * (
            1.0 / (degree[rows] + degree[indices] + 1e-9)
        )
    else:
        order = np.argsort(colsum, kind="stable")
        degree = colsum
        self_w = w.diagonal()
        with np.errstate(divide="ignore", invalid="ignore"):
            score = (2.0 * data + self_w[rows] + self_w[indices]) / (degree[rows] + degree[indices])
    # candidates: off-diagonal entries with a positive score, best first, ties by column
    keep = (indices != rows) & (score > 0)
    c_rows, c_cols, c_score = rows[keep], indices[keep], score[keep]
    perm = np.lexsort((c_cols, -c_score, c_rows))
    cand = c_cols[perm].tolist()
    starts = np.searchsorted(c_rows[perm], np.arange(n + 1)).tolist()

    marked = bytearray(n)
    cluster = [0] * n
    count = 0
    for i in order.tolist():
        if marked[i]:
            continue
        marked[i] = 1
        cluster[i] = count
        for j in cand[starts[i] : starts[i + 1]]:
            if not marked[j]:
                marked[j] = 1
                cluster[j] = count
                break
        count += 1
    return np.asarray(cluster, dtype=np.int64)


def _pool_adjacency(w: sp.csr_matrix, cluster: np.ndarray) -> sp.csr_matrix:
    """``P^T W P`` for the 0/1 cluster matrix ``P`` of ``cluster``."""
    m = int(cluster.max()) + 1 if cluster.size else 0
    coo = w.tocoo()
    out = sp.csr_matrix((coo.data, (cluster[coo.row], cluster[coo.col])), shape=(m, m))
    out.sum_duplicates()
    out.eliminate_zeros()
    out.sort_indices()
    return out


def coarsen(
    adjacency: sp.spmatrix | sp.sparray | GraphTopology,
    num_levels: int,
    *,
    compat: Compat = None,
) -> tuple[list[sp.csr_matrix], list[np.ndarray]]:
    """Coarsen a graph repeatedly with :func:`heavy_edge_matching`.

    Args:
        adjacency: Level-0 weights (SciPy sparse or a topology).
        num_levels: Number of levels returned, level 0 (the input) included; ``>= 1``.
        compat: See :func:`heavy_edge_matching`.

    Returns:
        ``(graphs, clusters)``: ``num_levels`` float64 CSR adjacencies and ``num_levels - 1``
        cluster maps; ``clusters[l][i]`` is the level-``l + 1`` vertex of level-``l`` vertex
        ``i``.
    """
    _check_compat(compat)
    if isinstance(num_levels, bool) or not isinstance(num_levels, (int, np.integer)):
        raise TypeError(f"num_levels must be an int, got {type(num_levels).__name__}")
    if num_levels < 1:
        raise ValueError(f"num_levels must be >= 1, got {num_levels}")
    graphs = [_as_csr(adjacency)]
    clusters: list[np.ndarray] = []
    for level in range(num_levels - 1):
        cluster = heavy_edge_matching(graphs[-1], compat=compat, first_level=level == 0)
        clusters.append(cluster)
        graphs.append(_pool_adjacency(graphs[-1], cluster))
    return graphs, clusters


#: The binary-tree layout pads level 0 to ``sizes[-1] * 2 ** (num_levels - 1)`` vertices; a
#: hierarchy whose padded level 0 would exceed this multiple of the mesh is refused.
MAX_BINARY_TREE_PADDING = 16


def _check_binary_tree_sizes(sizes: Sequence[int]) -> None:
    """Refuse a binary-tree hierarchy whose padding would explode (levels the graph lacks).

    Every level of the binary tree doubles the padded size; once the coarsening stops
    shrinking the graph (nothing left to merge), further levels add nothing but padding.
    """
    padded = sizes[-1] * 2 ** (len(sizes) - 1)
    if padded <= MAX_BINARY_TREE_PADDING * max(sizes[0], 1):
        return
    stalled = next((lv for lv in range(1, len(sizes)) if sizes[lv] >= sizes[lv - 1]), None)
    why = (
        f"; the coarsening stops shrinking at level {stalled} ({sizes[stalled]} vertices, "
        "nothing left to merge)"
        if stalled is not None
        else ""
    )
    raise ValueError(
        f"{len(sizes)} binary-tree levels would pad the {sizes[0]}-vertex graph to {padded} "
        f"vertices (more than {MAX_BINARY_TREE_PADDING}x){why}; use fewer levels or the "
        "compact layout"
    )


def _binary_tree_perms(sizes: Sequence[int], clusters: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Padded orders of every level: ``perm[l][p]`` is the real vertex at position ``p``.

    Fake vertices get ids ``>= sizes[l]`` (numbered in position order), like the release.
    """
    num_levels = len(sizes)
    perms: list[np.ndarray] = [np.empty(0)] * num_levels
    perms[-1] = np.arange(sizes[-1], dtype=np.int64)
    for level in range(num_levels - 2, -1, -1):
        n_fine, n_coarse = sizes[level], sizes[level + 1]
        cluster = clusters[level]
        # children of every real coarse vertex, ascending vertex id, -1 when missing
        kids = np.full((n_coarse, 2), -1, dtype=np.int64)
        order = np.lexsort((np.arange(n_fine), cluster))
        sorted_cluster = cluster[order]
        first = np.searchsorted(sorted_cluster, np.arange(n_coarse))
        counts = np.bincount(cluster, minlength=n_coarse)
        if counts.max(initial=0) > 2:
            raise ValueError("binary-tree layout needs clusters of at most two vertices")
        kids[:, 0] = order[first]
        has_two = counts == 2
        kids[has_two, 1] = order[first[has_two] + 1]
        parent = perms[level + 1]
        child = np.full((parent.shape[0], 2), -1, dtype=np.int64)
        real = parent < n_coarse
        child[real] = kids[parent[real]]
        child = child.reshape(-1)
        fake = child < 0
        child[fake] = n_fine + np.arange(int(fake.sum()))
        perms[level] = child
    return perms


def _padded_adjacency(w: sp.csr_matrix, perm: np.ndarray) -> sp.csr_matrix:
    """Adjacency in padded order: real vertex ``perm[p]`` sits at ``p``; fakes are isolated."""
    n = w.shape[0]
    size = perm.shape[0]
    position = np.empty(n, dtype=np.int64)
    real = perm < n
    position[perm[real]] = np.flatnonzero(real)
    coo = w.tocoo()
    out = sp.csr_matrix((coo.data, (position[coo.row], position[coo.col])), shape=(size, size))
    out.sort_indices()
    return out


def default_cache_dir() -> Path:
    """The hierarchy cache folder: ``$MESHGRAPH_CACHE_DIR`` or ``~/.cache/meshgraph``."""
    env = os.environ.get("MESHGRAPH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "meshgraph"


def _checked_graph(z: dict[str, np.ndarray], level: int) -> sp.csr_matrix:
    """Level ``level``'s stored CSR adjacency, checked: square, indices in range, symmetric."""
    indptr = np.asarray(z[f"g{level}_indptr"])
    indices = np.asarray(z[f"g{level}_indices"])
    data = np.asarray(z[f"g{level}_data"])
    if indptr.ndim != 1 or indptr.size < 2 or indptr.dtype.kind not in "iu":
        raise ValueError(f"level {level}: the graph's indptr is not a 1-D integer array")
    if indices.dtype.kind not in "iu" or data.dtype.kind not in "iuf":
        raise ValueError(f"level {level}: the graph's indices or weights have a wrong dtype")
    n = indptr.size - 1
    nnz = indices.size
    if indptr[0] != 0 or indptr[-1] != nnz or data.shape != indices.shape or indices.ndim != 1:
        raise ValueError(f"level {level}: the graph's arrays do not fit together")
    if (np.diff(indptr) < 0).any() or (nnz and (indices.min() < 0 or indices.max() >= n)):
        raise ValueError(f"level {level}: the graph's indices are out of range")
    if not np.isfinite(data).all() or (data < 0).any():
        raise ValueError(f"level {level}: the graph's weights must be finite and non-negative")
    graph = sp.csr_matrix((data.astype(np.float64), indices, indptr), shape=(n, n))
    if abs(graph - graph.T).sum() > 1e-9 * max(abs(graph).sum(), 1.0):
        raise ValueError(f"level {level}: the graph is not symmetric")
    return graph


def _checked_cluster(
    z: dict[str, np.ndarray], level: int, n_fine: int, n_coarse: int
) -> np.ndarray:
    """The stored cluster map of ``level``: one parent in ``[0, n_coarse)`` per vertex, onto."""
    c = np.asarray(z[f"c{level}"])
    if c.dtype.kind not in "iu" or c.shape != (n_fine,):
        raise ValueError(
            f"level {level}: the cluster map must hold {n_fine} integers (one per vertex), got "
            f"{c.dtype} {c.shape}"
        )
    if n_fine and (c.min() < 0 or c.max() >= n_coarse):
        raise ValueError(f"level {level}: cluster ids out of range for {n_coarse} coarse vertices")
    if np.unique(c).size != n_coarse:
        raise ValueError(f"level {level}: some of the {n_coarse} coarse vertices have no children")
    return c.astype(np.int64)


def _atomic_save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    atomic_write(path, lambda fh: np.savez_compressed(fh, **arrays))


@dataclass(eq=False)
class MeshHierarchy:
    """Levels of a coarsened topology, their Laplacians and the maps between them.

    Build one with :meth:`build`. ``topologies[l]`` is the graph of level ``l`` in the layout's
    vertex order: for ``"compact"`` level 0 is the input topology itself; for
    ``"binary_tree"`` every level is padded with isolated fake vertices and permuted (see the
    module docstring). Every topology computes and caches its own scaled Laplacian.

    Attributes:
        topologies: One :class:`~meshgraph.mesh.GraphTopology` per level, finest first.
        clusters: ``num_levels - 1`` int64 tensors; ``clusters[l][i]`` is the level-``l + 1``
            vertex (layout order) of level-``l`` vertex ``i`` (layout order). For the binary
            tree this is ``i // 2``.
        real_clusters: The cluster maps in real (unpadded) vertex order.
        real_sizes: Number of real vertices per level.
        perms: Binary tree only: ``perms[l][p]`` is the real vertex at padded position ``p``
            of level ``l``, or ``-1`` for a fake vertex.
        layout: ``"compact"`` or ``"binary_tree"``.
        compat: ``None`` or ``"pose2mesh"``.

    Example:
        >>> from meshgraph.generators import grid_mesh
        >>> h = MeshHierarchy.build(grid_mesh(8, 8), num_levels=3)
        >>> h.sizes
        [64, 33, 17]
        >>> MeshHierarchy.build(grid_mesh(8, 8), num_levels=3, layout="binary_tree").sizes
        [68, 34, 17]
    """

    topologies: list[GraphTopology]
    clusters: list[torch.Tensor]
    real_clusters: list[torch.Tensor]
    real_sizes: list[int]
    layout: Layout = "compact"
    compat: Compat = None
    perms: list[torch.Tensor] | None = None
    inverse_perms: list[torch.Tensor] | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        topology: GraphTopology,
        num_levels: int,
        *,
        layout: Layout = "compact",
        compat: Compat = None,
        cache_dir: str | os.PathLike | bool | None = None,
    ) -> MeshHierarchy:
        """Coarsen ``topology`` into ``num_levels`` levels (level 0 included).

        Args:
            topology: The finest graph (a :class:`~meshgraph.mesh.MeshTopology` or any
                :class:`~meshgraph.mesh.GraphTopology`).
            num_levels: Number of levels, ``>= 1``.
            layout: ``"compact"`` or ``"binary_tree"``.
            compat: ``None`` or ``"pose2mesh"``.
            cache_dir: If set, the hierarchy is loaded from (or saved to) an ``.npz`` in this
                folder, keyed by a hash of the graph and the options; ``True`` means
                :func:`default_cache_dir`. A corrupt or mismatching file is rebuilt with a
                warning; a folder that cannot be created or written gives a warning and the
                hierarchy is computed without the cache.

        Returns:
            The hierarchy.
        """
        if not isinstance(topology, GraphTopology):
            raise TypeError(
                f"topology must be a MeshTopology or GraphTopology, got {type(topology).__name__}"
            )
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        _check_compat(compat)
        path = None
        if cache_dir is not None and cache_dir is not False:
            folder = default_cache_dir() if cache_dir is True else Path(cache_dir)
            key = cls.cache_key(topology, num_levels, layout=layout, compat=compat)
            path = folder / f"hierarchy-{key[:24]}.npz"
            try:
                cached = path.exists()
            except OSError:  # an unreadable cache folder: as if empty
                cached = False
            if cached:
                try:
                    return cls.load(path, topology=topology, expected_key=key)
                except Exception as err:
                    warnings.warn(
                        f"hierarchy cache {path} is unusable ({err}); rebuilding it",
                        RuntimeWarning,
                        stacklevel=2,
                    )
        graphs, clusters = coarsen(topology, num_levels, compat=compat)
        hierarchy = cls._from_coarsening(topology, graphs, clusters, layout, compat)
        hierarchy._key = cls.cache_key(topology, num_levels, layout=layout, compat=compat)
        if path is not None:
            try:
                hierarchy.save(path)
            except OSError as err:  # a read-only or full cache: work on without it
                warnings.warn(
                    f"could not write the hierarchy cache {path} ({err}); continuing without it",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return hierarchy

    @classmethod
    def _from_coarsening(
        cls,
        topology: GraphTopology,
        graphs: list[sp.csr_matrix],
        clusters: list[np.ndarray],
        layout: Layout,
        compat: Compat,
        lambdas: Sequence[float | None] | None = None,
    ) -> MeshHierarchy:
        rescale = "pose2mesh" if compat == "pose2mesh" else "textbook"
        sizes = [g.shape[0] for g in graphs]
        lambdas = list(lambdas) if lambdas is not None else [None] * len(graphs)
        real_clusters = [torch.from_numpy(c.astype(np.int64)) for c in clusters]
        if layout == "compact":
            tops: list[GraphTopology] = []
            for level, g in enumerate(graphs):
                if level == 0:
                    # reuse the input (faces and caches included), with the layout's rescale
                    top = topology
                    if top.rescale != rescale:
                        top = topology._shallow_copy()
                        top.rescale = rescale
                    if lambdas[0] is not None and top._lambda_max is None:
                        top._lambda_max = float(lambdas[0])
                else:
                    top = GraphTopology(
                        g, lambda_max=lambdas[level], rescale=rescale, validate=False
                    )
                tops.append(top)
            return cls(tops, real_clusters, real_clusters, sizes, layout, compat)
        _check_binary_tree_sizes(sizes)
        perms = _binary_tree_perms(sizes, clusters)
        tops = [
            GraphTopology(_padded_adjacency(g, p), lambda_max=lam, rescale=rescale, validate=False)
            for g, p, lam in zip(graphs, perms, lambdas, strict=True)
        ]
        pad_clusters = [torch.arange(p.shape[0]) // 2 for p in perms[:-1]]
        perm_t, inv_t = [], []
        for n, p in zip(sizes, perms, strict=True):
            p = np.where(p < n, p, -1)
            inv = np.empty(n, dtype=np.int64)
            inv[p[p >= 0]] = np.flatnonzero(p >= 0)
            perm_t.append(torch.from_numpy(p))
            inv_t.append(torch.from_numpy(inv))
        return cls(tops, pad_clusters, real_clusters, sizes, layout, compat, perm_t, inv_t)

    # ------------------------------------------------------------------ info
    @property
    def num_levels(self) -> int:
        """Number of levels, the finest included."""
        return len(self.topologies)

    @property
    def sizes(self) -> list[int]:
        """Number of vertices per level in the layout (fake vertices included)."""
        return [t.num_vertices for t in self.topologies]

    @property
    def fake_fraction(self) -> list[float]:
        """Fraction of fake vertices per level (0 for the compact layout)."""
        return [1.0 - r / s for r, s in zip(self.real_sizes, self.sizes, strict=True)]

    def __len__(self) -> int:
        return self.num_levels

    def __repr__(self) -> str:
        return (
            f"MeshHierarchy(layout={self.layout!r}, compat={self.compat!r}, "
            f"sizes={self.sizes}, real_sizes={self.real_sizes})"
        )

    # ------------------------------------------------------------------ data maps
    def _check_level(self, level: int, last_ok: bool = True) -> None:
        top = self.num_levels if last_ok else self.num_levels - 1
        if not 0 <= level < top:
            raise ValueError(f"level must be in [0, {top - 1}], got {level}")

    def to_layout(self, x: torch.Tensor, level: int = 0) -> torch.Tensor:
        """Map features in real vertex order to the layout's order at ``level``.

        Fake vertices get zeros. Identity for the compact layout.

        Shapes:
            - x: ``(B, N_real, F)`` or ``(N_real, F)``
            - output: ``(B, N_layout, F)`` or ``(N_layout, F)``
        """
        self._check_level(level)
        n = self.real_sizes[level]
        if x.dim() not in (2, 3) or x.shape[-2] != n:
            raise ValueError(
                f"x must have shape (B, {n}, F) or ({n}, F) at level {level}, got {tuple(x.shape)}"
            )
        if self.layout == "compact":
            return x
        inv = self.inverse_perms[level].to(x.device)  # type: ignore[index]
        shape = (*x.shape[:-2], self.sizes[level], x.shape[-1])
        out = x.new_zeros(shape)
        out[..., inv, :] = x
        return out

    def from_layout(self, x: torch.Tensor, level: int = 0) -> torch.Tensor:
        """Map features in the layout's order at ``level`` back to real vertex order.

        Shapes:
            - x: ``(B, N_layout, F)`` or ``(N_layout, F)``
            - output: ``(B, N_real, F)`` or ``(N_real, F)``
        """
        self._check_level(level)
        if x.dim() not in (2, 3) or x.shape[-2] != self.sizes[level]:
            raise ValueError(
                f"x must have shape (B, {self.sizes[level]}, F) or ({self.sizes[level]}, F) at "
                f"level {level}, got {tuple(x.shape)}"
            )
        if self.layout == "compact":
            return x
        inv = self.inverse_perms[level].to(x.device)  # type: ignore[index]
        return x.index_select(-2, inv)

    # ------------------------------------------------------------------ persistence
    @staticmethod
    def cache_key(
        topology: GraphTopology,
        num_levels: int,
        *,
        layout: Layout = "compact",
        compat: Compat = None,
    ) -> str:
        """SHA-256 of the graph (adjacency and, for meshes, faces) and the options."""
        h = hashlib.sha256()
        h.update(f"meshgraph-hierarchy-v{_FORMAT_VERSION}|{num_levels}|{layout}|{compat}|".encode())
        adj = topology._adj
        h.update(np.int64(adj.shape[0]).tobytes())
        for arr in (adj.indptr.astype(np.int64), adj.indices.astype(np.int64), adj.data):
            h.update(np.ascontiguousarray(arr).tobytes())
        if isinstance(topology, MeshTopology):
            h.update(topology.faces.numpy().tobytes())
        return h.hexdigest()

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild the hierarchy, as NumPy arrays (see :meth:`from_arrays`).

        The real graphs, cluster maps, options, every level's ``lambda_max`` and (for meshes)
        the faces.
        """
        level0 = self.topologies[0]
        arrays: dict[str, np.ndarray] = {
            "format_version": np.array(_FORMAT_VERSION),
            "layout": np.array(self.layout),
            "compat": np.array("" if self.compat is None else self.compat),
            "num_levels": np.array(self.num_levels),
            "lambdas": np.array([t.lambda_max for t in self.topologies]),
        }
        if self._key is not None:
            arrays["key"] = np.array(self._key)
        for level, g in enumerate(self._real_graphs()):
            arrays[f"g{level}_indptr"] = g.indptr.astype(np.int64)
            arrays[f"g{level}_indices"] = g.indices.astype(np.int64)
            arrays[f"g{level}_data"] = g.data
        for level, c in enumerate(self.real_clusters):
            arrays[f"c{level}"] = c.numpy()
        if isinstance(level0, MeshTopology):
            arrays["faces"] = level0.faces.numpy()
        return arrays

    def save(self, path: str | os.PathLike) -> None:
        """Save :meth:`to_arrays` to ``.npz`` atomically (a temporary file, then a rename).

        Loading computes no eigenvalue: every level's ``lambda_max`` is stored.
        """
        _atomic_save_npz(Path(path), self.to_arrays())

    _key: str | None = field(default=None, init=False, repr=False)

    def _real_graphs(self) -> list[sp.csr_matrix]:
        graphs = []
        for level, top in enumerate(self.topologies):
            adj = top._adj
            if self.layout == "binary_tree":
                perm = self.perms[level].numpy()  # type: ignore[index]
                real = perm >= 0
                sel = np.flatnonzero(real)[np.argsort(perm[real])]
                adj = adj[sel][:, sel].tocsr()
            graphs.append(adj)
        return graphs

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        *,
        topology: GraphTopology | None = None,
        expected_key: str | None = None,
    ) -> MeshHierarchy:
        """Load a hierarchy saved by :meth:`save`.

        Args:
            path: The ``.npz`` file.
            topology: The level-0 topology to reuse (must match the stored graph); otherwise it
                is rebuilt from the file (a :class:`~meshgraph.mesh.MeshTopology` when faces
                were stored).
            expected_key: If given, the stored cache key must equal it.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If the file is not a meshgraph hierarchy (empty, truncated, inconsistent
                arrays, pickled objects), has another format version, or does not match
                ``topology`` / ``expected_key``.
        """
        from meshgraph.io import load_arrays

        arrays = load_arrays(path, what="hierarchy file")
        return cls.from_arrays(
            arrays, topology=topology, expected_key=expected_key, source=str(path)
        )

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        *,
        topology: GraphTopology | None = None,
        expected_key: str | None = None,
        source: str = "the arrays",
    ) -> MeshHierarchy:
        """Rebuild a hierarchy from :meth:`to_arrays` output (see :meth:`load` for the args).

        Raises:
            ValueError: If the arrays are not a meshgraph hierarchy, have another format
                version, or do not match ``topology`` / ``expected_key``.
        """
        z = arrays
        if "format_version" not in z:
            raise ValueError(f"{source} is not a meshgraph hierarchy file")
        try:
            version = int(z["format_version"])
            if version != _FORMAT_VERSION:
                raise ValueError(f"format version {version}, expected {_FORMAT_VERSION}")
            key = str(z["key"]) if "key" in z else None
            if expected_key is not None and key != expected_key:
                raise ValueError("it was saved for another graph or other options")
            layout = str(z["layout"])
            compat = str(z["compat"]) or None
            if layout not in LAYOUTS:
                raise ValueError(f"unknown layout {layout!r}")
            _check_compat(compat)
            num_levels = int(z["num_levels"])
            if num_levels < 1:
                raise ValueError(f"num_levels is {num_levels}")
            lambdas = [float(v) for v in np.asarray(z["lambdas"]).reshape(-1)]
            if len(lambdas) != num_levels or not all(np.isfinite(lambdas)):
                raise ValueError(f"{len(lambdas)} finite lambda_max values for {num_levels} levels")
            graphs = [_checked_graph(z, level) for level in range(num_levels)]
            sizes = [g.shape[0] for g in graphs]
            clusters = [
                _checked_cluster(z, level, sizes[level], sizes[level + 1])
                for level in range(num_levels - 1)
            ]
            faces = z.get("faces")
            if faces is not None:
                faces = np.asarray(faces)
                if faces.dtype.kind not in "iu" or faces.ndim != 2 or faces.shape[1] != 3:
                    raise ValueError(f"faces must be (F, 3) integers, got {faces.shape}")
                if faces.size and (faces.min() < 0 or faces.max() >= sizes[0]):
                    raise ValueError(f"face indices out of range for {sizes[0]} vertices")
        except ValueError as err:
            raise ValueError(f"{source} is not a usable meshgraph hierarchy: {err}") from None
        except (KeyError, TypeError, IndexError) as err:
            raise ValueError(
                f"{source} is not a usable meshgraph hierarchy: missing or malformed {err}"
            ) from None
        if topology is None:
            if faces is not None:
                topology = MeshTopology(faces, num_vertices=graphs[0].shape[0])
            else:
                topology = GraphTopology(graphs[0], validate=False)
        elif topology._adj.shape != graphs[0].shape or (topology._adj != graphs[0]).nnz:
            raise ValueError(f"{source} does not match the given topology")
        hierarchy = cls._from_coarsening(topology, graphs, clusters, layout, compat, lambdas)  # type: ignore[arg-type]
        hierarchy._key = key
        return hierarchy
