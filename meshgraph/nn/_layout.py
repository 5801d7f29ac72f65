"""Memory layouts of batched vertex features.

A batch of vertex features is a ``(B, V, C)`` tensor. :class:`~meshgraph.nn.MeshChebConv`
works on the ``(V, B*C)`` layout and returns a ``(B, V, C)`` *view* of a ``(V, B, C)``
buffer ("vertex-major"). The layers that follow keep that layout (element-wise ops, batch norm
over rows, channel maps as one GEMM over rows, gathers along the vertex axis), so that a chain
of blocks, pools and unpools never copies the batch between layouts.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor


def is_vertex_major(x: Tensor) -> bool:
    """Whether batched ``x`` ``(B, V, C)`` is a view of a contiguous ``(V, B, C)`` buffer."""
    return x.dim() == 3 and x.transpose(0, 1).is_contiguous()


def as_rows(x: Tensor) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
    """A ``(rows, C)`` view of ``(B, V, C)`` or ``(V, C)`` features, and its inverse.

    No copy for contiguous or vertex-major input. The inverse turns ``(rows, C')`` (any
    ``C'``) back into ``x``'s shape and layout.
    """
    if x.dim() == 2:
        return (x if x.is_contiguous() else x.contiguous()), lambda r: r
    b, v, c = x.shape
    if is_vertex_major(x):
        return x.transpose(0, 1).reshape(v * b, c), lambda r: r.view(v, b, -1).transpose(0, 1)
    xc = x if x.is_contiguous() else x.contiguous()
    return xc.reshape(b * v, c), lambda r: r.view(b, v, -1)


def gather_vertices(x: Tensor, index: Tensor) -> Tensor:
    """``x[..., index, :]`` along the vertex axis, keeping a vertex-major layout."""
    if is_vertex_major(x):
        return x.transpose(0, 1).index_select(0, index).transpose(0, 1)
    return x.index_select(-2, index)
