"""Chebyshev graph convolution over a fixed topology."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from meshgraph._optional import WITH_TORCH_SPARSE, require
from meshgraph.devices import check_same_device
from meshgraph.mesh import RESCALES, GraphTopology

__all__ = ["BACKENDS", "DENSE_MAX_VERTICES", "MeshChebConv"]

Backend = Literal["auto", "sparse", "dense", "torch_sparse"]
#: The operator backends of :class:`MeshChebConv`.
BACKENDS: tuple[str, ...] = ("auto", "sparse", "dense", "torch_sparse")
#: ``backend="auto"`` picks the dense operator for graphs of at most this many vertices (joint
#: graphs, the coarsest levels). Measured on a 2-core CPU (torus meshes, 64 channels, K = 3,
#: forward+backward): dense/sparse time 0.9 at 100 vertices and batch 1, but 1.4 at batch 32,
#: 1.35-1.6 at 256 vertices and 3.8-3.9 at 1,024.
DENSE_MAX_VERTICES = 64


class _Operator:
    """A constant symmetric ``(N, N)`` operator ``L`` acting on ``(N, C)`` dense matrices."""

    def __init__(self, matrix: Any, backend: str) -> None:
        self.matrix = matrix
        self.backend = backend

    def addmm(self, c: Tensor | None, x: Tensor, alpha: float = 1.0, beta: float = 1.0) -> Tensor:
        """``beta * c + alpha * (L @ x)`` (``c`` may be ``None``)."""
        if self.backend == "torch_sparse":
            torch_sparse = require("torch_sparse")
            y = torch_sparse.matmul(self.matrix, x)
            if alpha != 1.0:
                y = y.mul_(alpha)
            return y if c is None else y.add_(c, alpha=beta)
        if c is None:
            if self.backend == "sparse":
                # torch.mm(csr, x) zero-fills a result and then copies it through addmm: an
                # uninitialised buffer with beta=0 (ignored, NaN-safe) is half the time
                out = torch.empty(
                    (self.matrix.shape[0], x.shape[1]), dtype=x.dtype, device=x.device
                )
                return out.addmm_(self.matrix, x, beta=0.0, alpha=alpha)
            y = torch.mm(self.matrix, x)
            return y if alpha == 1.0 else y.mul_(alpha)
        return torch.addmm(c, self.matrix, x, beta=beta, alpha=alpha)

    def addmm_(self, c: Tensor, x: Tensor, alpha: float = 1.0, beta: float = 1.0) -> Tensor:
        """``c <- beta * c + alpha * (L @ x)`` in place, for a ``c`` that is not needed after.

        ``torch.addmm(c, csr, x)`` copies ``c`` into a new result first: on the body's
        1,229 x 2,560 layer that took 2.1 ms against 1.5 ms in place (2 CPU cores).
        """
        if self.backend == "torch_sparse":
            return c.mul_(beta).add_(self.addmm(None, x, alpha=alpha))
        return c.addmm_(self.matrix, x, beta=beta, alpha=alpha)


def _chebyshev_terms(op: _Operator, x: Tensor, k: int) -> Iterator[Tensor]:
    """``T_0(L) x, ..., T_{k-1}(L) x``: ``T_1 = L x``, ``T_i = 2 L T_{i-1} - T_{i-2}``.

    One sparse product per order, fused with the recurrence's subtraction.
    """
    yield x
    if k < 2:
        return
    prev2, prev = x, op.addmm(None, x)
    yield prev
    for _ in range(2, k):
        prev2, prev = prev, op.addmm(prev2, prev, alpha=2.0, beta=-1.0)
        yield prev


def _clenshaw(op: _Operator, k: int, plus_term: Callable[[int, Tensor | None], Tensor]) -> Tensor:
    """``sum_{i < k} T_i(L) A_i`` by Clenshaw's recurrence (``k - 1`` sparse products).

    ``b_i = A_i + 2 L b_{i+1} - b_{i+2}`` and the sum is ``A_0 + L b_1 - b_2``;
    ``plus_term(i, c)`` returns ``c + A_i`` (a fresh tensor, which the recurrence then owns,
    when ``c`` is ``None``). ``b_{i+2}`` is overwritten by ``b_i``: it is not needed after.
    """
    b_next = plus_term(k - 1, None)
    if k == 1:
        return b_next
    b_next2: Tensor | None = None

    def step(alpha: float) -> Tensor:
        if b_next2 is None:
            return op.addmm(None, b_next, alpha=alpha)
        return op.addmm_(b_next2, b_next, alpha=alpha, beta=-1.0)

    for i in range(k - 2, 0, -1):
        b_i = plus_term(i, step(2.0))
        b_next2, b_next = b_next, b_i
    return plus_term(0, step(1.0))


class _ChebConvFunction(torch.autograd.Function):
    """Fused Chebyshev convolution on the ``(V, B*F)`` layout.

    Forward: ``T_0 = X``, ``T_1 = L X``, ``T_k = 2 L T_{k-1} - T_{k-2}`` (one sparse matmul per
    order, fused with the recursion's add), then ``out = b + sum_k T_k Theta_k`` accumulated in
    place by ``K`` GEMMs over the whole batch.

    Backward: the weight gradient is ``T_k^T G``; the input gradient is the adjoint Chebyshev
    sum ``sum_k T_k(L) (G Theta_k^T)`` evaluated with Clenshaw's recurrence (``K - 1`` sparse
    matmuls, ``L`` symmetric). Only the ``K`` terms are kept for the backward pass.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        op: _Operator,
        rows: int,
    ) -> Tensor:
        k, f_in, _ = weight.shape
        terms = list(_chebyshev_terms(op, x, k))
        flat = [t.view(rows, f_in) for t in terms]
        if bias is None:
            out = torch.mm(flat[0], weight[0])
        else:
            out = torch.addmm(bias, flat[0], weight[0])
        for i in range(1, k):
            out.addmm_(flat[i], weight[i])
        ctx.op = op
        ctx.rows = rows
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight, *terms)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        weight, *terms = ctx.saved_tensors
        k, f_in, _ = weight.shape
        rows, op = ctx.rows, ctx.op
        grad = grad.contiguous()
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[1]:
            grad_w = torch.stack([t.view(rows, f_in).t() @ grad for t in terms])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(0)
        if ctx.needs_input_grad[0]:
            shape = terms[0].shape

            def a(i: int, c: Tensor | None = None) -> Tensor:
                # c + G Theta_i^T in the (V, B*F_in) layout
                wt = weight[i].t()
                if c is None:
                    return torch.mm(grad, wt).view(shape)
                return c.view(rows, f_in).addmm_(grad, wt).view(shape)

            grad_x = _clenshaw(op, k, a)
        return grad_x, grad_w, grad_b, None, None


class _ChebConvProjectFirst(torch.autograd.Function):
    """The same convolution, mixing channels first: for layers that narrow the features.

    ``sum_k T_k(L) X Theta_k = sum_k T_k(L) Z_k`` with ``Z_k = X Theta_k``: one GEMM
    ``X [Theta_0 .. Theta_{K-1}]`` gives every ``Z_k``, and Clenshaw's recurrence
    ``b_k = Z_k + 2 L b_{k+1} - b_{k+2}``, ``out = Z_0 + L b_1 - b_2`` applies the operator on
    ``F_out`` channels instead of ``F_in``. Backward: the Chebyshev terms ``S_k = T_k(L) G`` of
    the output gradient (also on ``F_out`` channels) give both gradients in one GEMM each,
    ``X^T [S_0 .. S_{K-1}]`` and ``[S_0 .. S_{K-1}] [Theta_0 .. Theta_{K-1}]^T``. Only ``X``
    is kept for the backward pass, not the ``K`` terms.
    """

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        op: _Operator,
        rows: int,
    ) -> Tensor:
        k, f_in, f_out = weight.shape
        n = x.shape[0]
        # (V, B, K, F_out): Z_k is the strided slice [:, :, k]
        z = torch.mm(x.view(rows, f_in), _stacked(weight)).view(n, rows // n, k, f_out)

        def plus_z(i: int, c: Tensor | None) -> Tensor:
            if c is None:  # a contiguous (V, B*F_out) copy, which the recurrence overwrites
                return z[:, :, i].contiguous().view(n, -1)
            c.view(n, -1, f_out).add_(z[:, :, i])
            return c

        out = _clenshaw(op, k, plus_z).view(rows, f_out)
        if bias is not None:
            out.add_(bias)
        ctx.op = op
        ctx.rows = rows
        ctx.has_bias = bias is not None
        ctx.save_for_backward(x, weight)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        k, f_in, f_out = weight.shape
        rows, op = ctx.rows, ctx.op
        n = x.shape[0]
        g = grad.contiguous().view(n, -1)
        # S_0 = G, S_1 = L G, S_k = 2 L S_{k-1} - S_{k-2}, gathered as (V, B, K, F_out)
        s = torch.empty((n, rows // n, k, f_out), dtype=grad.dtype, device=grad.device)
        for i, term in enumerate(_chebyshev_terms(op, g, k)):
            s[:, :, i] = term.view(n, -1, f_out)
        s = s.view(rows, k * f_out)
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.mm(s, _stacked(weight).t()).view(x.shape)
        if ctx.needs_input_grad[1]:
            grad_w = torch.mm(x.view(rows, f_in).t(), s).view(f_in, k, f_out).transpose(0, 1)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(0)
        return grad_x, grad_w, grad_b, None, None


def _stacked(weight: Tensor) -> Tensor:
    """``(K, F_in, F_out)`` weights as the ``(F_in, K*F_out)`` matrix ``[Theta_0 .. Theta_K-1]``."""
    k, f_in, f_out = weight.shape
    return weight.transpose(0, 1).reshape(f_in, k * f_out)


def _projects_first(k: int, f_in: int, f_out: int) -> bool:
    """Whether :class:`_ChebConvProjectFirst` is the faster formulation for these widths."""
    return k > 1 and 2 * f_out <= f_in


def _autocast_dtype(backend: str, device_type: str, weight_dtype: torch.dtype) -> torch.dtype:
    """The dtype a convolution computes in under :func:`torch.autocast`.

    A dense operator runs in the autocast dtype (a GEMM, as in ``nn.Linear``). The sparse
    backends keep the layer's own floating dtype: torch's CSR product has no bfloat16 or
    float16 kernel on the CPU, and on a 2-core CPU casting the Chebyshev terms to bfloat16 for
    the GEMMs alone saved only a fifth of their time (the casts cost the rest). A float64
    layer stays float64, as autocast leaves float64 operators alone.
    """
    if backend == "dense" and weight_dtype != torch.float64:
        return torch.get_autocast_dtype(device_type)
    return weight_dtype


class MeshChebConv(nn.Module):
    r"""Chebyshev spectral graph convolution on a fixed topology.

    .. math::
        \mathbf{X}' = \sum_{k=0}^{K-1} T_k(\tilde{\mathbf{L}})\,\mathbf{X}\,\mathbf{\Theta}_k
        + \mathbf{b}

    with :math:`T_0 = \mathbf{X}`, :math:`T_1 = \tilde{\mathbf{L}}\mathbf{X}`,
    :math:`T_k = 2\tilde{\mathbf{L}}T_{k-1} - T_{k-2}`, and the scaled Laplacian
    :math:`\tilde{\mathbf{L}} = 2\mathbf{L}/\lambda_{max} - \mathbf{I}` (``rescale="textbook"``,
    as :class:`torch_geometric.nn.conv.ChebConv` with ``normalization="sym"``) or
    :math:`\mathbf{L}/(2\lambda_{max}) - \mathbf{I}` (``rescale="pose2mesh"``, the operator of
    the Pose2Mesh release, for loading its weights). :math:`\mathbf{L} = \mathbf{I} -
    \mathbf{D}^{-1/2}\mathbf{W}\mathbf{D}^{-1/2}` is the normalised Laplacian of the topology,
    self-loops and edge weights kept exactly as given (PyG drops self-loops).

    The scaled Laplacian is computed once, from the topology's float64 master copy, and kept as
    a non-persistent buffer in the module's dtype and device (it is rebuilt, not rounded, when
    the module moves or changes dtype). A forward pass lays the batch out as ``(V, B*F)``,
    applies the operator ``K - 1`` times (one sparse matmul per order, fused with the
    recursion's subtraction) and mixes the ``K`` terms with ``K`` GEMMs over the whole batch,
    accumulated in place into one output: the same contraction as concatenating the terms and
    doing one ``(V*B, K*F_in) @ (K*F_in, F_out)`` matmul, without materialising the
    concatenation (1.6x faster for the whole forward+backward on the 13,718-vertex body mesh,
    batch 32, 64 channels, on a 2-core CPU). The backward pass keeps only the ``K`` terms and
    evaluates the input gradient with Clenshaw's recurrence.

    A layer that at least halves the width (``2 * F_out <= F_in``, such as a decoder's
    ``32 -> 3`` head) mixes the channels first instead: one GEMM gives every ``X Theta_k``,
    and Clenshaw's recurrence applies the operator on ``F_out`` channels rather than ``F_in``
    (the same sum, reassociated). The ``32 -> 3`` head on 1,229 vertices at batch 64 runs its
    forward and backward 2.4x faster this way; for ``40 -> 32`` the usual order is faster.

    Args:
        in_channels: Input features per vertex ``F_in``.
        out_channels: Output features per vertex ``F_out``.
        K: Chebyshev order (number of terms), ``>= 1``.
        topology: The fixed graph (:class:`~meshgraph.mesh.MeshTopology` or
            :class:`~meshgraph.mesh.GraphTopology`).
        rescale: ``"textbook"`` or ``"pose2mesh"``; default: the topology's ``rescale``.
        bias: Learn an additive bias.
        backend: ``"sparse"`` (torch CSR), ``"dense"`` (a dense ``V x V`` operator, for small
            graphs), ``"torch_sparse"`` (``torch_sparse.SparseTensor``, if installed) or
            ``"auto"``: dense up to :data:`DENSE_MAX_VERTICES` vertices, else sparse.

    Under :func:`torch.autocast` the dense backend computes in the autocast dtype; the sparse
    backends compute in the layer's dtype (there is no reduced-precision CSR product on the
    CPU), so their output keeps it.

    Shapes:
        - input: ``(B, V, F_in)`` or ``(V, F_in)``
        - output: ``(B, V, F_out)`` or ``(V, F_out)``. The batched output is a transposed
          view of a ``(V, B, F_out)`` buffer, which the next :class:`MeshChebConv` reads
          without a copy; call ``.contiguous()`` if you need it.

    Example:
        >>> from meshgraph.generators import icosphere
        >>> mesh = icosphere(1)
        >>> conv = MeshChebConv(3, 16, K=3, topology=mesh)
        >>> conv
        MeshChebConv(3, 16, K=3, num_vertices=42, rescale='textbook', backend='dense')
        >>> conv(torch.randn(4, 42, 3)).shape
        torch.Size([4, 42, 16])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        K: int,
        topology: GraphTopology,
        *,
        rescale: str | None = None,
        bias: bool = True,
        backend: Backend = "auto",
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if isinstance(K, bool) or not isinstance(K, int) or K < 1:
            raise ValueError(f"K must be an int >= 1, got {K!r}")
        if not isinstance(topology, GraphTopology):
            raise TypeError(
                f"topology must be a MeshTopology or GraphTopology, got {type(topology).__name__}"
            )
        rescale = topology.rescale if rescale is None else rescale
        if rescale not in RESCALES:
            raise ValueError(f"rescale must be one of {RESCALES}, got {rescale!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "auto":
            backend = "dense" if topology.num_vertices <= DENSE_MAX_VERTICES else "sparse"
        if backend == "torch_sparse" and not WITH_TORCH_SPARSE:
            require("torch_sparse")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.K = K
        self.rescale = rescale
        self.backend = backend
        self.num_vertices = topology.num_vertices
        # float64 master copy of the operator (CPU); buffers are derived from it
        self._master: sp.csr_matrix = topology.scaled_laplacian_scipy(rescale)

        self.weight = nn.Parameter(torch.empty(K, in_channels, out_channels))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels))
        else:
            self.register_parameter("bias", None)
        self._build_buffers(torch.device("cpu"), torch.get_default_dtype())
        self.reset_parameters()

    # ------------------------------------------------------------------ operator buffers
    def _build_buffers(self, device: torch.device, dtype: torch.dtype) -> None:
        op = self._master
        if self.backend == "dense":
            dense = torch.from_numpy(op.toarray()).to(device=device, dtype=dtype)
            self.register_buffer("lap_dense", dense, persistent=False)
        else:
            crow = torch.from_numpy(op.indptr.astype(np.int64)).to(device)
            col = torch.from_numpy(op.indices.astype(np.int64)).to(device)
            val = torch.from_numpy(op.data).to(device=device, dtype=dtype)
            self.register_buffer("lap_crow", crow, persistent=False)
            self.register_buffer("lap_col", col, persistent=False)
            self.register_buffer("lap_val", val, persistent=False)

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> MeshChebConv:
        super()._apply(fn, recurse)
        # Rebuild the operator from the float64 master copy (no float32 round-trip).
        self._build_buffers(self.weight.device, self.weight.dtype)
        return self

    def _operator(self, dtype: torch.dtype) -> _Operator:
        n = self.num_vertices
        if self.backend == "dense":
            dense = self.lap_dense if self.lap_dense.dtype == dtype else self.lap_dense.to(dtype)
            return _Operator(dense, "dense")
        val = self.lap_val if self.lap_val.dtype == dtype else self.lap_val.to(dtype)
        if self.backend == "torch_sparse":
            torch_sparse = require("torch_sparse")
            adj = torch_sparse.SparseTensor(
                rowptr=self.lap_crow,
                col=self.lap_col,
                value=val,
                sparse_sizes=(n, n),
                is_sorted=True,
                trust_data=True,
            )
            return _Operator(adj, "torch_sparse")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
            csr = torch.sparse_csr_tensor(
                self.lap_crow, self.lap_col, val, size=(n, n), check_invariants=False
            )
        return _Operator(csr, "sparse")

    # ------------------------------------------------------------------ module API
    def reset_parameters(self) -> None:
        """Glorot-uniform weights per order (as PyG's ``ChebConv``), zero bias."""
        bound = math.sqrt(6.0 / (self.in_channels + self.out_channels))
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the convolution.

        Args:
            x: ``(B, V, F_in)`` or ``(V, F_in)`` features.

        Returns:
            ``(B, V, F_out)`` or ``(V, F_out)``.

        Raises:
            TypeError: If ``x`` is not a floating-point tensor.
            ValueError: If its shape does not match the topology or ``in_channels``, or it is
                on another device than the layer.
        """
        if not isinstance(x, Tensor) or not x.is_floating_point():
            what = x.dtype if isinstance(x, Tensor) else type(x).__name__
            raise TypeError(f"x must be a floating-point tensor, got {what}")
        if (
            x.dim() not in (2, 3)
            or x.shape[-2] != self.num_vertices
            or (x.shape[-1] != self.in_channels)
        ):
            raise ValueError(
                f"x must have shape (B, {self.num_vertices}, {self.in_channels}) or "
                f"({self.num_vertices}, {self.in_channels}), got {tuple(x.shape)}"
            )
        check_same_device(x, self.weight, "x", "MeshChebConv")
        batched = x.dim() == 3
        xb = x if batched else x.unsqueeze(0)
        b, n, f_in = xb.shape
        # (V, B*F) layout: free when x is the transposed output of another MeshChebConv
        t0 = xb.transpose(0, 1).reshape(n, b * f_in)
        if not t0.is_contiguous():  # e.g. a channel slice of a wider tensor, batch 1
            t0 = t0.contiguous()
        dtype = x.dtype
        device_type = x.device.type
        autocast = torch.is_autocast_enabled(device_type)
        if autocast:  # mixed precision: see _autocast_dtype
            dtype = _autocast_dtype(self.backend, device_type, self.weight.dtype)
            t0 = t0.to(dtype)
        weight = self.weight if self.weight.dtype == dtype else self.weight.to(dtype)
        bias = self.bias
        if bias is not None and bias.dtype != dtype:
            bias = bias.to(dtype)
        fn = _ChebConvProjectFirst if _projects_first(*weight.shape) else _ChebConvFunction
        with torch.autocast(device_type, enabled=False) if autocast else contextlib.nullcontext():
            out = fn.apply(t0, weight, bias, self._operator(dtype), n * b)
        out = out.view(n, b, self.out_channels).transpose(0, 1)
        return out if batched else out[0]

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.in_channels}, {self.out_channels}, K={self.K}, "
            f"num_vertices={self.num_vertices}, rescale={self.rescale!r}, "
            f"backend={self.backend!r})"
        )
