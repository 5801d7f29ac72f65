"""Spiral convolution over a fixed topology (SpiralNet++, Gong et al. 2019)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from meshgraph.devices import check_same_device
from meshgraph.mesh import GraphTopology

__all__ = ["GATHER_CHUNK_NUMBERS", "SpiralConv"]


def _vertex_rows(x: Tensor) -> Tensor:
    """``(B, V, C)`` as a contiguous ``(V, B * C)`` matrix (no copy if vertex-major)."""
    xt = x.transpose(0, 1)
    if not xt.is_contiguous():
        xt = xt.contiguous()
    return xt.view(x.shape[1], -1)


#: Floats gathered at once by :class:`SpiralConv` (8 MiB in float32): vertices are processed
#: in chunks of at most this many gathered numbers, so the layer never holds ``length`` copies
#: of its whole input.
GATHER_CHUNK_NUMBERS = 1 << 21


def _chunks(v: int, per_vertex: int) -> list[tuple[int, int]]:
    n = max(1, GATHER_CHUNK_NUMBERS // max(1, per_vertex))
    return [(s, min(s + n, v)) for s in range(0, v, n)]


def _gather(rows: Tensor, index: Tensor, b: int) -> Tensor:
    """The spirals of ``index``'s vertices as ``(n * B, L * C)`` rows (vertex-major)."""
    n, length = index.shape
    c = rows.shape[1] // b
    g = rows.index_select(0, index.reshape(-1)).view(n, length, b, c)
    return g.permute(0, 2, 1, 3).reshape(n * b, length * c)


class _SpiralFunction(torch.autograd.Function):
    """``out[v] = W [x[s[v, 0]] | ... | x[s[v, L-1]]] + b`` on ``(V, B*C)`` rows, saving ``x``.

    Vertices go in chunks: each chunk's spirals are gathered into one ``(n * B, L * C)``
    matrix and multiplied by ``W`` in one GEMM. Autograd would keep the gathered copies of the
    whole input (``L`` times its size) for the weight gradient; they are gathered again, chunk
    by chunk, in the backward pass instead.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: Any, rows: Tensor, index: Tensor, weight: Tensor, bias: Tensor | None, b: int
    ) -> Tensor:
        v, length = index.shape
        out = rows.new_empty(v * b, weight.shape[0])
        wt = weight.t()
        for lo, hi in _chunks(v, length * rows.shape[1]):
            g = _gather(rows, index[lo:hi], b)
            if bias is None:
                torch.mm(g, wt, out=out[lo * b : hi * b])
            else:
                torch.addmm(bias, g, wt, out=out[lo * b : hi * b])
        ctx.save_for_backward(rows, index, weight)
        ctx.has_bias = bias is not None
        ctx.b = b
        return out

    @staticmethod
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        rows, index, weight = ctx.saved_tensors
        b = ctx.b
        v, length = index.shape
        c = rows.shape[1] // b
        grad_out = grad_out.contiguous()
        grad_rows = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_rows = torch.zeros_like(rows)
        if ctx.needs_input_grad[2]:
            grad_weight = torch.zeros_like(weight)
        for lo, hi in _chunks(v, length * rows.shape[1]):
            go = grad_out[lo * b : hi * b]
            if grad_weight is not None:
                grad_weight.addmm_(go.t(), _gather(rows, index[lo:hi], b))
            if grad_rows is not None:
                n = hi - lo
                gg = (go @ weight).view(n, b, length, c).permute(0, 2, 1, 3)
                grad_rows.index_add_(0, index[lo:hi].reshape(-1), gg.reshape(n * length, b * c))
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_bias = grad_out.sum(0)
        return grad_rows, None, grad_weight, grad_bias, None


class SpiralConv(nn.Module):
    r"""Spiral convolution (SpiralNet++) for batched features on a fixed topology.

    .. math::
        y_v = W \,[x_{s_{v,0}} \,\|\, x_{s_{v,1}} \,\|\, \dots \,\|\, x_{s_{v,L-1}}] + b

    where :math:`s_v` is vertex ``v``'s spiral sequence
    (:meth:`~meshgraph.mesh.GraphTopology.spiral_indices`, computed once per topology) and
    :math:`\|` concatenates channels. ``weight`` has the layout of SpiralNet++'s
    ``nn.Linear(in_channels * length, out_channels)``: column ``l * in_channels + c`` weighs
    channel ``c`` of the ``l``-th spiral entry. Initialised like SpiralNet++ (Xavier-uniform
    weight, zero bias).

    The product runs over chunks of vertices (a gather and one GEMM each, at most
    :data:`GATHER_CHUNK_NUMBERS` gathered numbers at a time), and the backward pass gathers
    again instead of storing the ``length`` gathered copies of the input, so the layer keeps
    only its input for backward (a gather followed by ``nn.Linear`` keeps ``length`` times
    more). Like :class:`~meshgraph.nn.MeshChebConv`, the batched
    output is a ``(B, V, C)`` view of a vertex-major buffer.

    Args:
        in_channels: Input width.
        out_channels: Output width.
        topology: The graph (a :class:`~meshgraph.mesh.MeshTopology` for true spirals; a plain
            graph orders each ring by edge weight), or ``None`` with ``indices``.
        length: Spiral length ``L``, the centre included (SpiralNet++ uses 9 on meshes).
        dilation: Keep every ``dilation``-th vertex of a spiral of ``length * dilation``.
        indices: ``(V, L)`` int64 spiral sequences of your own (for example from SpiralNet++'s
            preprocessing) instead of ``topology``'s.
        bias: Add a learnable bias.

    Shapes:
        - input: ``(B, V, in_channels)`` or ``(V, in_channels)``
        - output: ``(B, V, out_channels)`` or ``(V, out_channels)``

    Example:
        >>> from meshgraph import MeshTopology
        >>> conv = SpiralConv(3, 8, MeshTopology([[0, 1, 2], [0, 2, 3]]), length=4)
        >>> conv
        SpiralConv(3, 8, length=4, dilation=1, num_vertices=4)
        >>> conv(torch.randn(2, 4, 3)).shape
        torch.Size([2, 4, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        topology: GraphTopology | None = None,
        *,
        length: int = 9,
        dilation: int = 1,
        indices: Tensor | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if (topology is None) == (indices is None):
            raise ValueError("give exactly one of topology and indices")
        if indices is None:
            assert topology is not None
            idx = topology.spiral_indices(length, dilation).cpu().clone()
        else:
            idx = torch.as_tensor(indices)
            if idx.dtype not in (torch.int32, torch.int64) or idx.dim() != 2:
                raise ValueError(
                    f"indices must be a (V, L) integer tensor, got {tuple(idx.shape)} {idx.dtype}"
                )
            if idx.numel() == 0 or idx.min() < 0 or idx.max() >= idx.shape[0]:
                raise ValueError(f"indices must lie in [0, {idx.shape[0] - 1}] (V = rows)")
            idx = idx.long().clone()
            length, dilation = idx.shape[1], 1
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.length = int(idx.shape[1])
        self.dilation = dilation
        self.num_vertices = int(idx.shape[0])
        self.register_buffer("indices", idx, persistent=False)
        self.weight = nn.Parameter(torch.empty(out_channels, self.length * in_channels))
        self.bias: nn.Parameter | None
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform weight and zero bias (SpiralNet++'s initialisation)."""
        nn.init.xavier_uniform_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``(B, V, C)`` or ``(V, C)`` features (see the class docstring)."""
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() not in (2, 3) or x.shape[-2:] != (self.num_vertices, self.in_channels):
            raise ValueError(
                f"x must have shape (B, {self.num_vertices}, {self.in_channels}) or "
                f"({self.num_vertices}, {self.in_channels}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor, got {x.dtype}")
        check_same_device(x, self.weight, "x", "SpiralConv")
        batched = x.dim() == 3
        xb = x if batched else x.unsqueeze(0)
        b = xb.shape[0]
        weight = self.weight if self.weight.dtype == x.dtype else self.weight.to(x.dtype)
        bias = self.bias
        if bias is not None and bias.dtype != x.dtype:
            bias = bias.to(x.dtype)
        rows = _vertex_rows(xb)
        out = _SpiralFunction.apply(rows, self.indices, weight, bias, b)
        out = out.view(self.num_vertices, b, self.out_channels).transpose(0, 1)
        return out if batched else out[0]

    def __repr__(self) -> str:
        return (
            f"SpiralConv({self.in_channels}, {self.out_channels}, length={self.length}, "
            f"dilation={self.dilation}, num_vertices={self.num_vertices})"
        )
