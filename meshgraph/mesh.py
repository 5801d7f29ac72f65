r"""Fixed mesh and graph topologies with cached Laplacians.

Every sample of a body, hand or face dataset shares one set of faces, so the graph, its
normalised Laplacian, the largest eigenvalue of that Laplacian and the scaled Laplacian used by
Chebyshev filters are computed once per topology and cached here.

Two classes:

* :class:`GraphTopology`: any undirected graph with non-negative symmetric edge weights,
  self-loops allowed (the coarse levels of a :class:`~meshgraph.coarsening.MeshHierarchy` and
  joint graphs are of this kind).
* :class:`MeshTopology`: a triangle mesh, built from faces ``(F, 3)``; its graph is the binary,
  symmetric vertex adjacency of the face edges, without self-loops. It adds per-face normals and
  edge lengths for batched vertices ``(B, V, 3)`` and interop with PyG and trimesh.

Conventions:

* Faces are ``(F, 3)`` int64 (PyG's ``(3, F)`` appears only in :meth:`MeshTopology.from_data`
  and :meth:`MeshTopology.to_data`).
* The normalised Laplacian is :math:`L = I - D^{-1/2} W D^{-1/2}` where the degree
  :math:`D_{ii} = \sum_j W_{ij}` counts self-loops. An isolated vertex (no edge, no self-loop)
  gets :math:`D_{ii}^{-1/2} := 0`, hence an identity row :math:`L_{ii} = 1`. Isolated vertices
  and graphs with several connected components are valid.
* The master copies of all matrices are float64 SciPy CSR matrices on the CPU; torch tensors are
  derived from them on demand (and cached) for the topology's device.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
import torch

if TYPE_CHECKING:  # pragma: no cover
    from torch_geometric.data import Data

__all__ = [
    "FACE_EDGES",
    "RESCALES",
    "GraphTopology",
    "MeshTopology",
    "check_vertices",
    "sparse_csr_tensor",
    "sparse_product",
]

Rescale = Literal["textbook", "pose2mesh"]
#: The supported rescalings of the Laplacian for Chebyshev filters:
#: ``"textbook"``: :math:`\tilde L = 2L/\lambda_{max} - I` (Defferrard et al. 2016, PyG);
#: ``"pose2mesh"``: :math:`\tilde L = L/(2\lambda_{max}) - I` (the Pose2Mesh release).
RESCALES: tuple[str, ...] = ("textbook", "pose2mesh")
#: The three edges of a face ``(v0, v1, v2)`` as corner pairs ``(a, b)``, the edge ``v_b - v_a``:
#: the one edge order of :meth:`MeshTopology.edge_lengths` and of the losses.
FACE_EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2))

# Below this many vertices the largest eigenvalue is computed densely (exact, fast).
_DENSE_EIG_MAX = 256


def sparse_csr_tensor(
    matrix: sp.spmatrix | sp.sparray,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Convert a SciPy sparse matrix into a torch sparse CSR tensor.

    Args:
        matrix: Any SciPy sparse matrix or array of shape ``(N, M)``.
        dtype: Floating dtype of the values.
        device: Device of the result (default CPU).

    Returns:
        A ``torch.sparse_csr`` tensor with sorted column indices, int64 index tensors.

    Example:
        >>> import scipy.sparse as sp
        >>> t = sparse_csr_tensor(sp.eye(3, format="csr"))
        >>> t.to_dense()
        tensor([[1., 0., 0.],
                [0., 1., 0.],
                [0., 0., 1.]])
    """
    csr = sp.csr_matrix(matrix)
    csr.sum_duplicates()
    csr.sort_indices()
    crow = torch.from_numpy(csr.indptr.astype(np.int64))
    col = torch.from_numpy(csr.indices.astype(np.int64))
    val = torch.from_numpy(csr.data.astype(np.float64)).to(dtype)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        out = torch.sparse_csr_tensor(crow, col, val, size=csr.shape, check_invariants=False)
    return out if device is None else out.to(device)


class _SparseProduct(torch.autograd.Function):
    """``M @ rows`` for a sparse CSR ``M``; the backward pass is one product with ``M^T``."""

    @staticmethod
    def forward(ctx: Any, m: torch.Tensor, m_t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        ctx.m_t = m_t
        out = torch.empty((m.shape[0], rows.shape[1]), dtype=rows.dtype, device=rows.device)
        return out.addmm_(m, rows, beta=0.0)  # beta=0: the empty buffer is never read

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, None, torch.Tensor]:
        m_t = ctx.m_t
        out = torch.empty((m_t.shape[0], grad.shape[1]), dtype=grad.dtype, device=grad.device)
        return None, None, out.addmm_(m_t, grad.contiguous(), beta=0.0)


def sparse_product(m: torch.Tensor, m_t: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """``m @ rows`` for a fixed sparse CSR matrix, differentiable with respect to ``rows``.

    The backward pass is one product with ``m_t``, the CSR transpose of ``m``, given by the
    caller (who builds both once), instead of autograd's transpose of a CSR tensor.

    Args:
        m: ``(R, N)`` sparse CSR matrix (float32 or float64, like ``rows``).
        m_t: ``(N, R)`` its transpose, also CSR.
        rows: ``(N, C)`` dense rows.

    Returns:
        ``(R, C)`` dense.

    Example:
        >>> import scipy.sparse as sp
        >>> m = sp.csr_matrix([[1.0, 0.0], [0.5, 0.5]])
        >>> sparse_product(sparse_csr_tensor(m), sparse_csr_tensor(m.T), torch.ones(2, 3))
        tensor([[1., 1., 1.],
                [1., 1., 1.]])
    """
    return _SparseProduct.apply(m, m_t, rows)


def _scipy_from_any(adjacency: Any) -> sp.csr_matrix:
    """Turn a dense or sparse (torch, NumPy, SciPy) square matrix into float64 CSR."""
    if isinstance(adjacency, torch.Tensor):
        if adjacency.layout != torch.strided:
            adjacency = adjacency.to_dense()
        adjacency = adjacency.detach().cpu().to(torch.float64).numpy()
    if sp.issparse(adjacency):
        csr = sp.csr_matrix(adjacency, dtype=np.float64)
    else:
        arr = np.asarray(adjacency)
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise TypeError(f"adjacency must be a numeric matrix, got dtype {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"adjacency must be a 2-D (N, N) matrix, got shape {arr.shape}")
        csr = sp.csr_matrix(arr.astype(np.float64))
    return csr


def _validate_adjacency(csr: sp.csr_matrix) -> None:
    n, m = csr.shape
    if n != m:
        raise ValueError(f"adjacency must be square (N, N), got shape {csr.shape}")
    if n == 0:
        raise ValueError("adjacency has no vertices (shape (0, 0))")
    if not np.all(np.isfinite(csr.data)):
        bad = np.flatnonzero(~np.isfinite(csr.data))[0]
        row = np.searchsorted(csr.indptr, bad, side="right") - 1
        raise ValueError(
            f"adjacency contains a non-finite weight {csr.data[bad]} at ({row}, {csr.indices[bad]})"
        )
    if csr.nnz and csr.data.min() < 0:
        bad = int(np.argmin(csr.data))
        row = np.searchsorted(csr.indptr, bad, side="right") - 1
        raise ValueError(
            f"adjacency weights must be non-negative, got {csr.data[bad]} at "
            f"({row}, {csr.indices[bad]})"
        )
    asym = abs(csr - csr.T)
    if asym.nnz and asym.max() > 1e-12 * max(1.0, float(abs(csr).max())):
        coo = asym.tocoo()
        k = int(np.argmax(coo.data))
        raise ValueError(
            "adjacency must be symmetric (undirected graph); W[i, j] != W[j, i] at "
            f"(i, j) = ({coo.row[k]}, {coo.col[k]})"
        )


class GraphTopology:
    """An undirected, weighted graph with cached Laplacians.

    The weights are non-negative and symmetric; self-loops are allowed and kept (they count in
    the degree). Zero entries are dropped. See the module docstring for the Laplacian
    conventions.

    Args:
        adjacency: Symmetric ``(N, N)`` weight matrix: SciPy sparse, NumPy or torch (dense or
            sparse).
        lambda_max: Largest eigenvalue of the normalised Laplacian, if known. Otherwise it is
            computed once with SciPy (``eigsh``, deterministic start vector) the first time it is
            needed.
        rescale: Default rescaling of :meth:`scaled_laplacian`, one of :data:`RESCALES`.
        validate: Check shape, finiteness, sign and symmetry of ``adjacency``.

    Raises:
        ValueError: If the matrix is not square, empty, non-finite, negative or asymmetric.
        TypeError: If it is not numeric.

    Example:
        >>> g = GraphTopology([[0, 1, 0], [1, 0, 1], [0, 1, 0]])
        >>> g.num_vertices, g.num_edges
        (3, 2)
        >>> round(g.lambda_max, 6)
        2.0
    """

    def __init__(
        self,
        adjacency: Any,
        *,
        lambda_max: float | None = None,
        rescale: Rescale = "textbook",
        validate: bool = True,
    ) -> None:
        csr = _scipy_from_any(adjacency)
        csr.sum_duplicates()
        csr.eliminate_zeros()
        csr.sort_indices()
        if validate:
            _validate_adjacency(csr)
        if rescale not in RESCALES:
            raise ValueError(f"rescale must be one of {RESCALES}, got {rescale!r}")
        if lambda_max is not None and not (np.isfinite(lambda_max) and lambda_max >= 0):
            raise ValueError(f"lambda_max must be finite and >= 0, got {lambda_max}")
        self._adj: sp.csr_matrix = csr
        self._lambda_max: float | None = None if lambda_max is None else float(lambda_max)
        self.rescale: Rescale = rescale
        self._device = torch.device("cpu")
        self._torch_cache: dict[tuple, torch.Tensor] = {}
        self._scipy_cache: dict[str, sp.csr_matrix] = {}

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_edge_index(
        cls,
        edge_index: torch.Tensor | np.ndarray,
        num_vertices: int | None = None,
        edge_weight: torch.Tensor | np.ndarray | None = None,
        **kwargs: Any,
    ) -> GraphTopology:
        """Build a graph from a PyG-style ``edge_index``.

        Args:
            edge_index: ``(2, E)`` integer tensor listing both directions of every edge
                (duplicates are summed, as in :func:`torch_geometric.utils.coalesce`).
            num_vertices: Number of vertices (default: largest index + 1).
            edge_weight: Optional ``(E,)`` non-negative weights (default 1).
            **kwargs: Forwarded to :class:`GraphTopology`.

        Returns:
            The graph.

        Raises:
            ValueError: On a wrong shape, a negative or out-of-range index, or an asymmetric
                result.
        """
        ei = edge_index.detach().cpu().numpy() if torch.is_tensor(edge_index) else edge_index
        ei = np.asarray(ei)
        if ei.ndim != 2 or ei.shape[0] != 2:
            raise ValueError(f"edge_index must have shape (2, E), got {tuple(ei.shape)}")
        if not np.issubdtype(ei.dtype, np.integer):
            raise TypeError(f"edge_index must be an integer array, got dtype {ei.dtype}")
        if ei.size and ei.min() < 0:
            raise ValueError(f"edge_index contains a negative index {int(ei.min())}")
        n = int(ei.max()) + 1 if num_vertices is None and ei.size else num_vertices
        if n is None:
            raise ValueError("edge_index is empty: pass num_vertices")
        if ei.size and ei.max() >= n:
            raise ValueError(
                f"edge_index contains index {int(ei.max())}, out of range for {n} vertices"
            )
        if edge_weight is None:
            w = np.ones(ei.shape[1])
        else:
            w = edge_weight.detach().cpu().numpy() if torch.is_tensor(edge_weight) else edge_weight
            w = np.asarray(w, dtype=np.float64).reshape(-1)
            if w.shape[0] != ei.shape[1]:
                raise ValueError(
                    f"edge_weight has {w.shape[0]} entries but edge_index has {ei.shape[1]} edges"
                )
        adj = sp.csr_matrix((w, (ei[0], ei[1])), shape=(n, n))
        return cls(adj, **kwargs)

    # ------------------------------------------------------------------ properties
    @property
    def num_vertices(self) -> int:
        """Number of vertices ``N``."""
        return self._adj.shape[0]

    @property
    def num_edges(self) -> int:
        """Number of undirected edges between distinct vertices (self-loops not counted)."""
        offdiag = self._adj.nnz - int(np.count_nonzero(self._adj.diagonal()))
        return offdiag // 2

    @property
    def has_self_loops(self) -> bool:
        """Whether any vertex has a non-zero self-loop weight."""
        return bool(np.any(self._adj.diagonal() != 0))

    @property
    def device(self) -> torch.device:
        """Device of the torch tensors this topology hands out."""
        return self._device

    @property
    def adjacency(self) -> sp.csr_matrix:
        """The weighted adjacency as a float64 SciPy CSR matrix (a copy)."""
        return self._adj.copy()

    @property
    def edge_index(self) -> torch.Tensor:
        """``(2, E)`` int64 indices of all stored entries of ``W`` (both directions).

        Self-loops (coarse graphs) are included; a mesh has none.
        """
        key = ("edge_index",)
        if key not in self._torch_cache:
            coo = self._adj.tocoo()
            ei = np.stack([coo.row, coo.col]).astype(np.int64)
            self._torch_cache[key] = torch.from_numpy(ei).to(self._device)
        return self._torch_cache[key]

    @property
    def edge_weight(self) -> torch.Tensor:
        """``(E,)`` float32 weights aligned with :attr:`edge_index`."""
        key = ("edge_weight",)
        if key not in self._torch_cache:
            w = torch.from_numpy(self._adj.tocoo().data.astype(np.float32))
            self._torch_cache[key] = w.to(self._device)
        return self._torch_cache[key]

    @property
    def degree(self) -> torch.Tensor:
        """``(N,)`` float32 weighted degree ``sum_j W_ij`` (self-loops included)."""
        key = ("degree",)
        if key not in self._torch_cache:
            d = np.asarray(self._adj.sum(axis=1)).reshape(-1).astype(np.float32)
            self._torch_cache[key] = torch.from_numpy(d).to(self._device)
        return self._torch_cache[key]

    @property
    def lambda_max(self) -> float:
        """Largest eigenvalue of the normalised Laplacian (computed once, then cached)."""
        if self._lambda_max is None:
            self._lambda_max = _largest_eigenvalue(self.laplacian_scipy())
        return self._lambda_max

    # ------------------------------------------------------------------ matrices
    def laplacian_scipy(self) -> sp.csr_matrix:
        """Normalised Laplacian ``I - D^-1/2 W D^-1/2`` as float64 SciPy CSR (cached).

        Every row stores its diagonal entry, even where it is zero.
        """
        if "L" not in self._scipy_cache:
            w = self._adj
            d = np.asarray(w.sum(axis=1)).reshape(-1)
            with np.errstate(divide="ignore"):
                dinv = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
            coo = w.tocoo()
            n = self.num_vertices
            diag = np.arange(n)
            # Built in COO so that every row keeps its diagonal entry, even where it cancels.
            lap = sp.csr_matrix(
                (
                    np.concatenate([np.ones(n), -dinv[coo.row] * coo.data * dinv[coo.col]]),
                    (np.concatenate([diag, coo.row]), np.concatenate([diag, coo.col])),
                ),
                shape=(n, n),
            )
            lap.sum_duplicates()
            lap.sort_indices()
            self._scipy_cache["L"] = lap
        return self._scipy_cache["L"]

    def scaled_laplacian_scipy(self, rescale: Rescale | None = None) -> sp.csr_matrix:
        """Scaled Laplacian for Chebyshev filters as float64 SciPy CSR (cached).

        Args:
            rescale: ``"textbook"`` gives ``2 L / lambda_max - I`` (spectrum in ``[-1, 1]``);
                ``"pose2mesh"`` gives ``L / (2 lambda_max) - I``, the Pose2Mesh release's
                operator (spectrum in about ``[-1, -0.5]``). Default: :attr:`rescale`.

        Returns:
            The ``(N, N)`` matrix. If ``lambda_max`` is 0 (every vertex has only a self-loop,
            so ``L = 0``), the result is ``-I``.
        """
        rescale = self.rescale if rescale is None else rescale
        if rescale not in RESCALES:
            raise ValueError(f"rescale must be one of {RESCALES}, got {rescale!r}")
        key = f"scaled-{rescale}"
        if key not in self._scipy_cache:
            lam = self.lambda_max
            lam = lam if lam > 1e-12 else 1.0  # L == 0: any scale gives -I
            factor = 2.0 / lam if rescale == "textbook" else 1.0 / (2.0 * lam)
            lap = self.laplacian_scipy()
            scaled = lap.copy()
            scaled.data *= factor
            rows = np.repeat(np.arange(self.num_vertices), np.diff(scaled.indptr))
            scaled.data[scaled.indices == rows] -= 1.0  # same pattern as L: diagonal stored
            self._scipy_cache[key] = scaled
        return self._scipy_cache[key]

    def weighted_adjacency(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The weighted adjacency ``W`` as a torch sparse CSR tensor on :attr:`device`."""
        return self._cached_csr(("W", dtype), self._adj, dtype)

    def laplacian(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The normalised Laplacian as a torch sparse CSR tensor on :attr:`device` (cached)."""
        return self._cached_csr(("L", dtype), self.laplacian_scipy(), dtype)

    def scaled_laplacian(
        self, rescale: Rescale | None = None, dtype: torch.dtype = torch.float32
    ) -> torch.Tensor:
        """The scaled Laplacian as a torch sparse CSR tensor on :attr:`device` (cached).

        See :meth:`scaled_laplacian_scipy` for ``rescale``.
        """
        rescale = self.rescale if rescale is None else rescale
        return self._cached_csr(
            ("scaled", rescale, dtype), self.scaled_laplacian_scipy(rescale), dtype
        )

    def _cached_csr(self, key: tuple, matrix: sp.csr_matrix, dtype: torch.dtype) -> torch.Tensor:
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch dtype, got {dtype}")
        if key not in self._torch_cache:
            self._torch_cache[key] = sparse_csr_tensor(matrix, dtype=dtype, device=self._device)
        return self._torch_cache[key]

    # ------------------------------------------------------------------ interop
    def to_networkx(self) -> Any:
        """The graph as a ``networkx.Graph``: vertices ``0..N-1``, edges with a ``weight``.

        Self-loops (coarse levels) are kept as weighted self-edges. networkx comes with
        PyTorch; nothing is copied back, so changing the returned graph changes nothing here.

        Example:
            >>> g = GraphTopology([[0, 2, 0], [2, 0, 1], [0, 1, 0]]).to_networkx()
            >>> sorted(g.edges(data="weight"))
            [(0, 1, 2.0), (1, 2, 1.0)]
        """
        from meshgraph._optional import require

        nx = require("networkx")
        graph = nx.Graph()
        graph.add_nodes_from(range(self.num_vertices))
        upper = sp.triu(self._adj).tocoo()
        graph.add_weighted_edges_from(
            zip(upper.row.tolist(), upper.col.tolist(), upper.data.tolist(), strict=True)
        )
        return graph

    # ------------------------------------------------------------------ spirals
    def neighbour_order(self) -> list[list[int]]:
        """Every vertex's neighbours (self-loops left out) in the order spirals visit them.

        A plain graph has no rotation around a vertex, so the order is by decreasing edge
        weight, then by index (on a coarse level of a hierarchy the heaviest edges join the
        clusters that share the most of the fine mesh). :class:`MeshTopology` orders them
        around the vertex instead (see there).
        """
        adj = self._adj
        out: list[list[int]] = []
        for v in range(adj.shape[0]):
            lo, hi = adj.indptr[v], adj.indptr[v + 1]
            cols, w = adj.indices[lo:hi], adj.data[lo:hi]
            keep = cols != v
            cols, w = cols[keep], w[keep]
            order = np.lexsort((cols, -w))
            out.append([int(c) for c in cols[order]])
        return out

    def spiral_indices(self, length: int, dilation: int = 1) -> torch.Tensor:
        """``(N, length)`` int64 spiral sequences for :class:`~meshgraph.nn.SpiralConv`.

        The sequence of vertex ``v`` starts at ``v``, then lists the vertices ring by ring
        (1-ring, 2-ring, ...) until ``length * dilation`` vertices are listed, and keeps every
        ``dilation``-th of them (SpiralNet++'s dilated spirals). The order within a ring:

        * the 1-ring is :meth:`neighbour_order` of ``v`` (for a mesh: around ``v`` in the
          faces' winding, from the smallest neighbour index, or from the start of the open
          fan at a boundary vertex);
        * ring ``k + 1`` walks ring ``k`` in order; for each of its vertices ``u`` it appends
          ``u``'s new neighbours in ``u``'s own order, rotated to start just after a
          neighbour already listed, so that the spiral keeps turning one way.

        A vertex whose connected component has fewer than ``length * dilation`` vertices
        (isolated vertices, the padding of a binary-tree layout) repeats itself to fill its
        sequence. Computed once per ``(length, dilation)`` and cached.

        Args:
            length: Entries per sequence, the centre included (``>= 1``).
            dilation: Keep every ``dilation``-th vertex of ``length * dilation`` (``>= 1``).

        Example:
            >>> mesh = MeshTopology([[0, 1, 2], [0, 2, 3], [0, 3, 4], [0, 4, 1]])
            >>> mesh.spiral_indices(5)[0].tolist()  # the centre, then around it
            [0, 1, 2, 3, 4]
        """
        for name, value in (("length", length), ("dilation", dilation)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        key = ("spiral", length, dilation)
        if key not in self._torch_cache:
            cache = self.__dict__.setdefault("_spiral_cache", {})
            if (length, dilation) not in cache:
                cache[(length, dilation)] = _spirals(self.neighbour_order(), length, dilation)
            self._torch_cache[key] = torch.from_numpy(cache[(length, dilation)]).to(self._device)
        return self._torch_cache[key]

    # ------------------------------------------------------------------ device
    def _shallow_copy(self) -> GraphTopology:
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._torch_cache = {}
        return new

    def to(self, device: torch.device | str) -> GraphTopology:
        """Return a copy whose torch tensors live on ``device``.

        The SciPy master data (and the cached eigenvalue) are shared; ``self`` is unchanged,
        as with :meth:`torch.Tensor.to`.
        """
        new = self._shallow_copy()
        new._device = torch.device(device)
        # share the scipy caches (they are device independent)
        new._scipy_cache = self._scipy_cache
        new.__dict__["_spiral_cache"] = self.__dict__.setdefault("_spiral_cache", {})
        for name, value in self.__dict__.items():
            if isinstance(value, torch.Tensor):
                setattr(new, name, value.to(device))
        return new

    def __repr__(self) -> str:
        lam = "?" if self._lambda_max is None else f"{self._lambda_max:.4f}"
        return (
            f"{type(self).__name__}(num_vertices={self.num_vertices}, "
            f"num_edges={self.num_edges}, self_loops={self.has_self_loops}, "
            f"lambda_max={lam}, device={self._device})"
        )


def _spirals(order: list[list[int]], length: int, dilation: int) -> np.ndarray:
    """Spiral sequences from per-vertex neighbour orders (see ``spiral_indices``)."""
    n = len(order)
    want = length * dilation
    out = np.empty((n, length), dtype=np.int64)
    for v in range(n):
        seq = [v]
        seen = {v}
        ring = [v]
        while len(seq) < want and ring:
            nxt: list[int] = []
            for u in ring:
                nbrs = order[u]
                m = len(nbrs)
                # start just after an already listed neighbour (the first such turn)
                start = next(
                    (i for i in range(m) if nbrs[i - 1] in seen and nbrs[i] not in seen), 0
                )
                for i in range(m):
                    w = nbrs[(start + i) % m]
                    if w not in seen:
                        seen.add(w)
                        nxt.append(w)
            seq.extend(nxt)
            ring = nxt
        seq = seq[:want]
        seq += [v] * (want - len(seq))
        out[v] = seq[::dilation]
    return out


def _fan_order(v: int, succ: dict[int, list[int]], pred_count: dict[int, int]) -> list[int]:
    """Neighbours of ``v`` in its faces' winding: follow each neighbour to the next one.

    Open fans (boundary, non-manifold) are walked from a neighbour without a predecessor,
    the smallest first; closed fans from the smallest neighbour.
    """
    done: set[int] = set()
    order: list[int] = []
    nodes = sorted(succ)
    while len(done) < len(nodes):
        left = [u for u in nodes if u not in done]
        starts = [u for u in left if pred_count.get(u, 0) == 0]
        u: int | None = starts[0] if starts else left[0]
        while u is not None and u not in done:
            done.add(u)
            order.append(u)
            u = next((w for w in succ[u] if w not in done), None)
    return order


def _largest_eigenvalue(lap: sp.csr_matrix) -> float:
    """Largest eigenvalue of a symmetric PSD sparse matrix, deterministically."""
    n = lap.shape[0]
    if n <= _DENSE_EIG_MAX:
        return float(np.linalg.eigvalsh(lap.toarray())[-1])
    v0 = np.random.default_rng(0).standard_normal(n)  # fixed start: no global random state
    val = spla.eigsh(lap, k=1, which="LA", v0=v0, return_eigenvectors=False, tol=1e-8)
    return float(val[0])


def _as_int_array(values: Any, name: str) -> np.ndarray:
    """Convert torch / NumPy / sequence integers to an int64 NumPy array, checking the dtype."""
    if isinstance(values, torch.Tensor):
        if values.is_floating_point() or values.is_complex() or values.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor, got dtype {values.dtype}")
        return values.detach().cpu().to(torch.int64).numpy()
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.integer):
        if arr.size == 0 and arr.dtype == np.float64:
            arr = arr.astype(np.int64)  # e.g. an empty list
        else:
            raise TypeError(f"{name} must be an integer array, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _validate_faces(faces: Any, num_vertices: int | None) -> tuple[np.ndarray, int]:
    f = _as_int_array(faces, "faces")
    if f.ndim != 2 or f.shape[1] != 3:
        hint = ""
        if f.ndim == 2 and f.shape[0] == 3:
            hint = " (PyG stores faces as (3, F): transpose them or use MeshTopology.from_data)"
        raise ValueError(f"faces must have shape (F, 3), got {tuple(f.shape)}{hint}")
    if f.shape[0] == 0:
        raise ValueError("faces is empty: a MeshTopology needs at least one face, got (0, 3)")
    if f.min() < 0:
        row = int(np.argwhere(f < 0)[0, 0])
        raise ValueError(f"faces contains a negative vertex index: face {row} is {f[row].tolist()}")
    if num_vertices is None:
        num_vertices = int(f.max()) + 1
    else:
        if isinstance(num_vertices, bool) or not isinstance(num_vertices, (int, np.integer)):
            raise TypeError(f"num_vertices must be an int, got {type(num_vertices).__name__}")
        num_vertices = int(num_vertices)
        if num_vertices <= 0:
            raise ValueError(f"num_vertices must be positive, got {num_vertices}")
        if f.max() >= num_vertices:
            row = int(np.argwhere(f >= num_vertices)[0, 0])
            raise ValueError(
                f"faces contains vertex index {int(f.max())}, out of range for {num_vertices} "
                f"vertices: face {row} is {f[row].tolist()}"
            )
    degenerate = (f[:, 0] == f[:, 1]) | (f[:, 1] == f[:, 2]) | (f[:, 0] == f[:, 2])
    if degenerate.any():
        rows = np.flatnonzero(degenerate)
        raise ValueError(
            f"faces contains {rows.size} degenerate face(s) with a repeated vertex, "
            f"the first is face {int(rows[0])} = {f[rows[0]].tolist()}"
        )
    return f, num_vertices


def check_vertices(
    vertices: torch.Tensor, num_vertices: int | None = None, *, name: str = "vertices"
) -> torch.Tensor:
    """Check a ``(V, 3)`` or ``(B, V, 3)`` floating vertex tensor and return it batched.

    Args:
        vertices: Vertex positions.
        num_vertices: Expected ``V``, if known.
        name: Name used in error messages.

    Returns:
        The vertices as ``(B, V, 3)`` (a view; ``B = 1`` for unbatched input).

    Raises:
        TypeError: If ``vertices`` is not a floating-point tensor.
        ValueError: On a wrong shape or a NaN/inf value.
    """
    if not isinstance(vertices, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(vertices).__name__}")
    if not vertices.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {vertices.dtype}")
    if vertices.dim() not in (2, 3) or vertices.shape[-1] != 3:
        raise ValueError(f"{name} must have shape (V, 3) or (B, V, 3), got {tuple(vertices.shape)}")
    if num_vertices is not None and vertices.shape[-2] != num_vertices:
        raise ValueError(
            f"{name} has {vertices.shape[-2]} vertices (shape {tuple(vertices.shape)}) but the "
            f"topology has {num_vertices}"
        )
    finite = torch.isfinite(vertices)
    if not bool(finite.all()):
        idx = torch.nonzero(~finite)[0].tolist()
        raise ValueError(f"{name} contains NaN or inf, first at index {tuple(idx)}")
    return vertices if vertices.dim() == 3 else vertices.unsqueeze(0)


class MeshTopology(GraphTopology):
    """A fixed triangle-mesh topology: faces, vertex graph, cached Laplacians.

    The graph is the binary symmetric adjacency of the face edges (no self-loops). Vertices
    that appear in no face are isolated: they get an identity Laplacian row. Several connected
    components are fine.

    Args:
        faces: ``(F, 3)`` integer faces (torch, NumPy or nested sequences).
        num_vertices: Number of vertices ``V`` (default: largest index in ``faces`` + 1).
            Give it when the mesh has unreferenced (isolated) vertices at the end.
        lambda_max: Largest eigenvalue of the normalised Laplacian, if known.
        rescale: Default rescale of :meth:`scaled_laplacian`.

    Raises:
        TypeError: If ``faces`` is not integer.
        ValueError: On a wrong shape, no faces, a negative or out-of-range index, or a
            degenerate face (a vertex repeated); the message names the offending face.

    Example:
        >>> mesh = MeshTopology([[0, 1, 2], [0, 2, 3]])
        >>> mesh
        MeshTopology(num_vertices=4, num_faces=2, num_edges=5, lambda_max=?, device=cpu)
        >>> mesh.edges.tolist()
        [[0, 1], [0, 2], [0, 3], [1, 2], [2, 3]]
    """

    def __init__(
        self,
        faces: Any,
        num_vertices: int | None = None,
        *,
        lambda_max: float | None = None,
        rescale: Rescale = "textbook",
    ) -> None:
        f, n = _validate_faces(faces, num_vertices)
        e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        e = np.concatenate([e, e[:, ::-1]])
        adj = sp.csr_matrix((np.ones(e.shape[0]), (e[:, 0], e[:, 1])), shape=(n, n))
        adj.sum_duplicates()
        adj.data[:] = 1.0  # binary adjacency
        super().__init__(adj, lambda_max=lambda_max, rescale=rescale, validate=False)
        self.faces: torch.Tensor = torch.from_numpy(np.ascontiguousarray(f))

    # ------------------------------------------------------------------ interop
    @classmethod
    def from_data(cls, data: Data, **kwargs: Any) -> MeshTopology:
        """Build from a :class:`torch_geometric.data.Data` with ``face`` of shape ``(3, F)``.

        The vertex count is ``data.num_nodes`` (from ``pos`` or ``num_nodes``).
        """
        face = getattr(data, "face", None)
        if face is None:
            hint = (
                "; for its edges alone (a graph, e.g. after FaceToEdge), use "
                "GraphTopology.from_edge_index(data.edge_index, data.num_nodes)"
                if getattr(data, "edge_index", None) is not None
                else ""
            )
            raise ValueError(
                f"the Data object has no 'face' attribute (expected shape (3, F)){hint}"
            )
        if face.dim() != 2 or face.shape[0] != 3:
            raise ValueError(f"Data.face must have shape (3, F), got {tuple(face.shape)}")
        return cls(face.t(), num_vertices=data.num_nodes, **kwargs)

    def to_data(self, pos: torch.Tensor | None = None) -> Data:
        """Return a :class:`torch_geometric.data.Data` with ``face`` ``(3, F)``, ``edge_index``.

        Args:
            pos: Optional ``(V, 3)`` vertex positions.
        """
        from torch_geometric.data import Data

        kwargs: dict[str, Any] = {
            "face": self.faces.t().contiguous(),
            "edge_index": self.edge_index,
            "num_nodes": self.num_vertices,
        }
        if pos is not None:
            kwargs["pos"] = check_vertices(pos, self.num_vertices, name="pos")[0]
        return Data(**kwargs)

    @classmethod
    def from_trimesh(cls, mesh: Any, **kwargs: Any) -> MeshTopology:
        """Build from a ``trimesh.Trimesh`` (its faces and vertex count)."""
        return cls(np.asarray(mesh.faces), num_vertices=len(mesh.vertices), **kwargs)

    # ------------------------------------------------------------------ geometry
    @property
    def num_faces(self) -> int:
        """Number of faces ``F``."""
        return int(self.faces.shape[0])

    @property
    def edges(self) -> torch.Tensor:
        """``(E, 2)`` unique undirected edges ``(i, j)`` with ``i < j``, sorted."""
        key = ("edges",)
        if key not in self._torch_cache:
            upper = sp.triu(self._adj, k=1).tocoo()
            order = np.lexsort((upper.col, upper.row))
            e = np.stack([upper.row[order], upper.col[order]], axis=1).astype(np.int64)
            self._torch_cache[key] = torch.from_numpy(e).to(self._device)
        return self._torch_cache[key]

    def _face_vertices(
        self, vertices: torch.Tensor, validate: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, bool]:
        batched = isinstance(vertices, torch.Tensor) and vertices.dim() == 3
        if validate:
            v = check_vertices(vertices, self.num_vertices)
        else:
            v = vertices if vertices.dim() == 3 else vertices.unsqueeze(0)
        faces = self.faces.to(v.device)
        return v[:, faces[:, 0]], v[:, faces[:, 1]], v[:, faces[:, 2]], batched

    def face_normals(
        self, vertices: torch.Tensor, *, normalize: bool = True, validate: bool = True
    ) -> torch.Tensor:
        """Per-face normals ``(v1 - v0) x (v2 - v0)``.

        Args:
            vertices: ``(B, V, 3)`` or ``(V, 3)``.
            normalize: Return unit normals (a degenerate, zero-area face gives a zero vector)
                instead of vectors whose length is twice the face area.
            validate: Check shape and finiteness (costs a device sync on GPU).

        Returns:
            ``(B, F, 3)``, or ``(F, 3)`` for unbatched input.

        Shapes:
            - vertices: ``(B, V, 3)`` or ``(V, 3)``
            - output: ``(B, F, 3)`` or ``(F, 3)``
        """
        v0, v1, v2, batched = self._face_vertices(vertices, validate)
        n = torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)
        if normalize:
            n = torch.nn.functional.normalize(n, dim=-1, eps=1e-12)
        return n if batched else n[0]

    def edge_lengths(self, vertices: torch.Tensor, *, validate: bool = True) -> torch.Tensor:
        """Per-face edge lengths ``(|v1 - v0|, |v2 - v0|, |v2 - v1|)``.

        The edges are in :data:`FACE_EDGES` order, the order of the edge-length and normal
        losses (:mod:`meshgraph.losses`), so their per-edge values line up with these.

        Args:
            vertices: ``(B, V, 3)`` or ``(V, 3)``.
            validate: Check shape and finiteness.

        Returns:
            ``(B, F, 3)``, or ``(F, 3)`` for unbatched input; column ``k`` is the edge
            ``FACE_EDGES[k]`` (corner ``a`` to corner ``b``).
        """
        corners = self._face_vertices(vertices, validate)
        batched = corners[3]
        lengths = torch.stack([(corners[b] - corners[a]).norm(dim=-1) for a, b in FACE_EDGES], -1)
        return lengths if batched else lengths[0]

    def neighbour_order(self) -> list[list[int]]:
        """Every vertex's neighbours around it, in the winding of its faces.

        Each face ``(a, b, c)`` says that, seen from ``a``, ``c`` follows ``b`` (and likewise
        for ``b`` and ``c``). A closed fan starts at the smallest neighbour index; an open
        fan (a boundary vertex) starts at its first neighbour, so the order does not jump
        across the hole. Non-manifold fans are walked piece by piece.
        """
        n = self.num_vertices
        succ: list[dict[int, list[int]]] = [{} for _ in range(n)]
        preds: list[dict[int, int]] = [{} for _ in range(n)]
        for a, b, c in self.faces.tolist():
            for v, x, y in ((a, b, c), (b, c, a), (c, a, b)):
                succ[v].setdefault(x, []).append(y)
                succ[v].setdefault(y, [])
                preds[v][y] = preds[v].get(y, 0) + 1
        return [_fan_order(v, succ[v], preds[v]) for v in range(n)]

    def __repr__(self) -> str:
        lam = "?" if self._lambda_max is None else f"{self._lambda_max:.4f}"
        return (
            f"MeshTopology(num_vertices={self.num_vertices}, num_faces={self.num_faces}, "
            f"num_edges={self.num_edges}, lambda_max={lam}, device={self._device})"
        )
