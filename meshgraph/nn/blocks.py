"""Chebyshev blocks, and mesh encoders and decoders over a mesh hierarchy."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from meshgraph.mesh import GraphTopology
from meshgraph.nn._layout import as_rows
from meshgraph.nn.convs import ChebConvFactory, ConvFactory, scale_weights_
from meshgraph.nn.pool import MeshPool, MeshUnpool

if TYPE_CHECKING:  # pragma: no cover
    from meshgraph.coarsening import MeshHierarchy

__all__ = [
    "ChebBlock",
    "MeshBlock",
    "MeshDecoder",
    "MeshEncoder",
    "channel_interpolation_matrix",
    "interpolate_channels",
]

_NORMS = ("batch", "group", "none")


@functools.cache
def _interpolation_matrix_f64(in_channels: int, out_channels: int) -> Tensor:
    eye = torch.eye(in_channels, dtype=torch.float64).unsqueeze(1)  # (C_in, 1, C_in)
    rows = nn.functional.interpolate(eye, size=out_channels, mode="linear", align_corners=False)
    return rows[:, 0]  # row i: the response to channel i


def channel_interpolation_matrix(
    in_channels: int,
    out_channels: int,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """The ``(in_channels, out_channels)`` matrix ``M`` of linear channel resampling.

    ``x @ M`` equals ``F.interpolate(x, out_channels, mode="linear", align_corners=False)``
    along the last axis: resampling is a fixed linear map, so it is applied as one GEMM (each
    column of ``M`` has at most two non-zeros). Built once per width pair in float64.

    Example:
        >>> channel_interpolation_matrix(2, 4).tolist()
        [[1.0, 0.75, 0.25, 0.0], [0.0, 0.25, 0.75, 1.0]]
    """
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    m = _interpolation_matrix_f64(in_channels, out_channels)
    return m.to(dtype=dtype or torch.get_default_dtype(), device=device)


def interpolate_channels(x: Tensor, channels: int) -> Tensor:
    """Linearly interpolate the last (channel) axis of ``x`` to ``channels`` entries.

    Pose2Mesh's residual connection between blocks of different widths. Uses
    ``align_corners=False`` sampling (the outer channels are copied, the inner ones blended).
    Applied as one GEMM with :func:`channel_interpolation_matrix` (the memory layout of a
    ``(B, V, C)`` input is kept).

    Example:
        >>> interpolate_channels(torch.tensor([[1.0, 3.0]]), 4).tolist()
        [[1.0, 1.5, 2.5, 3.0]]
    """
    if x.shape[-1] == channels:
        return x
    m = channel_interpolation_matrix(x.shape[-1], channels, x.dtype, x.device)
    return _apply_channel_map(x, m)


def _apply_channel_map(x: Tensor, m: Tensor) -> Tensor:
    """``x @ m`` over the last axis, as one GEMM on the rows of ``x``'s own layout."""
    if x.dim() in (2, 3):
        rows, back = as_rows(x)
        return back(rows @ m)
    return (x.reshape(-1, x.shape[-1]) @ m).view(*x.shape[:-1], m.shape[1])


class MeshBlock(nn.Module):
    r"""A convolution, normalisation, activation, and a residual connection.

    .. math::
        y = \mathrm{act}(\mathrm{norm}(\mathrm{conv}(x))) + \mathrm{interp}(x)

    where ``interp`` linearly resamples the channels of ``x`` to the output width (Pose2Mesh).

    Args:
        in_channels: Input width.
        out_channels: Output width.
        topology: The graph of the level.
        conv: The convolution factory (:mod:`meshgraph.nn.convs`; default: Chebyshev, K = 3).
        norm: ``"batch"`` (BatchNorm over vertices and batch), ``"group"`` (GroupNorm, 8 groups
            or fewer) or ``"none"``.
        activation: Apply ReLU.
        residual: Add the interpolated input.

    Shapes:
        - input: ``(B, V, in_channels)``
        - output: ``(B, V, out_channels)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        topology: GraphTopology,
        *,
        conv: ConvFactory | None = None,
        norm: str = "batch",
        activation: bool = True,
        residual: bool = True,
    ) -> None:
        super().__init__()
        if norm not in _NORMS:
            raise ValueError(f"norm must be one of {_NORMS}, got {norm!r}")
        self.conv = (conv or ChebConvFactory())(in_channels, out_channels, topology)
        if norm == "batch":
            self.norm: nn.Module | None = nn.BatchNorm1d(out_channels)
        elif norm == "group":
            groups = next(g for g in (8, 4, 2, 1) if out_channels % g == 0)
            self.norm = nn.GroupNorm(groups, out_channels)
        else:
            self.norm = None
        self.activation = activation
        self.residual = residual
        self.out_channels = out_channels
        self.resample: Tensor | None
        if residual and in_channels != out_channels:
            matrix = channel_interpolation_matrix(in_channels, out_channels)
            self.register_buffer("resample", matrix, persistent=False)
        else:
            self.resample = None

    def _apply(self, fn: Callable[[Tensor], Tensor], recurse: bool = True) -> MeshBlock:
        super()._apply(fn, recurse)
        if self.resample is not None:  # rebuilt from float64, not rounded through float32
            weight = next(self.conv.parameters(), self.resample)
            self.resample = channel_interpolation_matrix(
                self.resample.shape[0], self.resample.shape[1], weight.dtype, weight.device
            )
        return self

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to ``(B, V, C)`` or ``(V, C)`` features.

        The output keeps the convolution's vertex-major layout: batch norm, activation and
        the residual's channel map run on the rows of that buffer, without a copy.
        """
        y = self.conv(x)
        if isinstance(self.norm, nn.GroupNorm):  # per-sample statistics: (B, C, V)
            batched = y if y.dim() == 3 else y.unsqueeze(0)
            y = self.norm(batched.transpose(1, 2)).transpose(1, 2)
            y = y if x.dim() == 3 else y[0]
        rows, back = as_rows(y)
        if isinstance(self.norm, nn.BatchNorm1d):  # statistics over all rows, any order
            rows = self.norm(rows)
        if self.activation:
            rows = torch.relu(rows)
        y = back(rows)
        if self.residual:
            if self.resample is None:
                y = y + x
            else:
                m = self.resample if self.resample.dtype == x.dtype else self.resample.to(x.dtype)
                y = y + _apply_channel_map(x, m)
        return y


class ChebBlock(MeshBlock):
    r"""A :class:`MeshBlock` with a Chebyshev convolution of order ``K``.

    .. math::
        y = \mathrm{act}(\mathrm{norm}(\mathrm{ChebConv}(x))) + \mathrm{interp}(x)

    Args:
        in_channels: Input width.
        out_channels: Output width.
        K: Chebyshev order.
        topology: The graph of the level.
        norm: ``"batch"``, ``"group"`` or ``"none"`` (see :class:`MeshBlock`).
        activation: Apply ReLU.
        residual: Add the interpolated input.
        **conv_kwargs: Passed to :class:`MeshChebConv` (``rescale``, ``backend``).

    Shapes:
        - input: ``(B, V, in_channels)``
        - output: ``(B, V, out_channels)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        K: int,
        topology: GraphTopology,
        *,
        norm: str = "batch",
        activation: bool = True,
        residual: bool = True,
        **conv_kwargs: Any,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            topology,
            conv=ChebConvFactory(K, **conv_kwargs),
            norm=norm,
            activation=activation,
            residual=residual,
        )


def _block_conv(conv: ConvFactory | None, K: int, block_kwargs: dict[str, Any]) -> ConvFactory:
    """The convolution factory of an encoder or decoder.

    ``conv``, or Chebyshev of order ``K`` with the ``rescale``/``backend`` found in
    ``block_kwargs`` (taken out of it).
    """
    cheb = {k: block_kwargs.pop(k) for k in ("rescale", "backend") if k in block_kwargs}
    if conv is None:
        return ChebConvFactory(K, **cheb)
    if cheb:
        raise ValueError(f"give {sorted(cheb)} to the convolution factory, not with conv=")
    return conv


def _check_channels(channels: Sequence[int], levels: int, what: str) -> list[int]:
    ch = [int(c) for c in channels]
    if len(ch) != levels or any(c <= 0 for c in ch):
        raise ValueError(f"{what} needs {levels} positive channel counts, got {list(channels)}")
    return ch


class MeshEncoder(nn.Module):
    """Convolution blocks with pooling down a hierarchy: level 0 to level ``len(channels)``.

    At every level ``l < L``: a :class:`MeshBlock` to ``channels[l]``, then pooling to level
    ``l + 1``. The output lives on level ``L = len(channels)`` of the hierarchy.

    Args:
        hierarchy: The hierarchy (either layout).
        in_channels: Input width at level 0.
        channels: Widths per level; its length is the number of pooling steps.
        K: Chebyshev order of the default convolution.
        reduce: Pooling reduction, ``"max"`` or ``"mean"``.
        conv: The convolution factory (default: :class:`~meshgraph.nn.ChebConvFactory` with
            ``K`` and any ``rescale``/``backend`` in ``block_kwargs``).
        **block_kwargs: Passed to :class:`MeshBlock` (``norm``, ...).

    Shapes:
        - input: ``(B, N_0, in_channels)`` in the hierarchy's layout order
        - output: ``(B, N_L, channels[-1])``
    """

    def __init__(
        self,
        hierarchy: MeshHierarchy,
        in_channels: int,
        channels: Sequence[int],
        K: int = 3,
        *,
        reduce: str = "max",
        conv: ConvFactory | None = None,
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        factory = _block_conv(conv, K, block_kwargs)
        if not 1 <= len(channels) < hierarchy.num_levels:
            raise ValueError(
                f"an encoder over {hierarchy.num_levels} levels takes 1 to "
                f"{hierarchy.num_levels - 1} channel counts, got {len(channels)}"
            )
        ch = _check_channels(channels, len(channels), "MeshEncoder")
        widths = [in_channels, *ch]
        self.blocks = nn.ModuleList(
            MeshBlock(
                widths[i], widths[i + 1], hierarchy.topologies[i], conv=factory, **block_kwargs
            )
            for i in range(len(ch))
        )
        self.pools = nn.ModuleList(MeshPool(hierarchy, i, reduce) for i in range(len(ch)))
        self.out_vertices = hierarchy.sizes[len(ch)]
        self.out_channels = ch[-1]

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``(B, N_0, C)`` to ``(B, N_L, channels[-1])``."""
        for block, pool in zip(self.blocks, self.pools, strict=True):
            x = pool(block(x))
        return x


class MeshDecoder(nn.Module):
    """Convolution blocks with unpooling up a hierarchy, from level ``L`` to level 0.

    ``channels[l]`` is the width of the blocks at level ``l`` (``L + 1`` entries, finest
    first). At level ``L`` a block maps ``in_channels`` to ``channels[L]``; then for every
    finer level the features are unpooled (copied to the children) and a block maps to
    ``channels[l]``. A last convolution (no normalisation, no activation) maps to
    ``out_channels`` at level 0.

    Args:
        hierarchy: The hierarchy (either layout).
        in_channels: Input width at the coarsest level used.
        channels: Block widths per level, finest first; ``len(channels) - 1`` is the
            coarsest level used.
        out_channels: Output width (3 for vertex coordinates).
        K: Chebyshev order of the default convolution.
        head_init_scale: Multiplies the head's initial weights. A small value (MeshNet uses
            0.01) starts the output near zero; with the default Glorot scale the residual
            blocks make the first outputs tens of units large, which slowed learning by
            orders of magnitude in our measurements (see :class:`~meshgraph.models.MeshNet`).
        conv: The convolution factory of the blocks and the head (default:
            :class:`~meshgraph.nn.ChebConvFactory` with ``K`` and any ``rescale``/``backend``
            in ``block_kwargs``).
        **block_kwargs: Passed to :class:`MeshBlock` (``norm``, ...).

    Shapes:
        - input: ``(B, N_L, in_channels)`` in layout order
        - output: ``(B, N_0, out_channels)`` in layout order (see
          :meth:`MeshHierarchy.from_layout`)
    """

    def __init__(
        self,
        hierarchy: MeshHierarchy,
        in_channels: int,
        channels: Sequence[int],
        out_channels: int = 3,
        K: int = 3,
        head_init_scale: float = 1.0,
        *,
        conv: ConvFactory | None = None,
        **block_kwargs: Any,
    ) -> None:
        super().__init__()
        factory = _block_conv(conv, K, block_kwargs)
        if not 1 <= len(channels) <= hierarchy.num_levels:
            raise ValueError(
                f"a decoder over {hierarchy.num_levels} levels takes 1 to "
                f"{hierarchy.num_levels} channel counts, got {len(channels)}"
            )
        ch = _check_channels(channels, len(channels), "MeshDecoder")
        top = len(ch) - 1
        self.top_level = top
        self.in_vertices = hierarchy.sizes[top]
        blocks = []
        width = in_channels
        for level in range(top, -1, -1):
            blocks.append(MeshBlock(width, ch[level], hierarchy.topologies[level], conv=factory,
                                    **block_kwargs))  # fmt: skip
            width = ch[level]
        self.blocks = nn.ModuleList(blocks)
        self.unpools = nn.ModuleList(MeshUnpool(hierarchy, level) for level in range(top, 0, -1))
        self.head = factory(ch[0], out_channels, hierarchy.topologies[0])
        self.head_init_scale = head_init_scale
        scale_weights_(self.head, head_init_scale)

    def forward(self, x: Tensor) -> Tensor:
        """Decode ``(B, N_L, C)`` to ``(B, N_0, out_channels)``."""
        x = self.blocks[0](x)
        for unpool, block in zip(self.unpools, self.blocks[1:], strict=True):
            x = block(unpool(x))
        return self.head(x)
