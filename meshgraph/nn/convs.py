"""Convolution factories: how blocks, encoders, decoders and networks build their convolutions.

A *convolution factory* is any callable ``factory(in_channels, out_channels, topology)`` that
returns a module mapping ``(B, V, in_channels)`` to ``(B, V, out_channels)`` on that
topology's vertices. :class:`~meshgraph.nn.MeshBlock`, :class:`~meshgraph.nn.MeshEncoder`,
:class:`~meshgraph.nn.MeshDecoder`, :class:`~meshgraph.models.MeshNet` and
:class:`~meshgraph.models.MeshAutoencoder` take one as ``conv=``, so another convolution
plugs in without touching them:

>>> from meshgraph import MeshTopology
>>> mesh = MeshTopology([[0, 1, 2], [0, 2, 3]])
>>> ChebConvFactory(K=2)(3, 8, mesh)
MeshChebConv(3, 8, K=2, num_vertices=4, rescale='textbook', backend='dense')
>>> conv_factory("spiral", length=4)(3, 8, mesh)
SpiralConv(3, 8, length=4, dilation=1, num_vertices=4)

A factory of your own is a function (or a ``functools.partial``): for example
``lambda i, o, top: torch_geometric.nn.GCNConv(...)`` wrapped to the ``(B, V, C)`` shapes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from meshgraph.mesh import GraphTopology
from meshgraph.nn.cheb_conv import Backend, MeshChebConv
from meshgraph.nn.spiral_conv import SpiralConv

__all__ = [
    "CONVOLUTIONS",
    "ChebConvFactory",
    "ConvFactory",
    "SpiralConvFactory",
    "conv_factory",
]

#: ``factory(in_channels, out_channels, topology) -> nn.Module`` on ``(B, V, C)`` features.
ConvFactory = Callable[[int, int, GraphTopology], nn.Module]


@dataclass(frozen=True)
class ChebConvFactory:
    """Builds :class:`~meshgraph.nn.MeshChebConv` layers (the default convolution).

    Attributes:
        K: Chebyshev order.
        rescale: Laplacian rescale (``None``: the topology's own).
        backend: Operator backend (see :data:`~meshgraph.nn.BACKENDS`).
    """

    K: int = 3
    rescale: str | None = None
    backend: Backend = "auto"

    def __call__(self, in_channels: int, out_channels: int, topology: GraphTopology) -> nn.Module:
        """A new ``MeshChebConv(in_channels, out_channels, K, topology)``."""
        return MeshChebConv(
            in_channels, out_channels, self.K, topology, rescale=self.rescale, backend=self.backend
        )


@dataclass(frozen=True)
class SpiralConvFactory:
    """Builds :class:`~meshgraph.nn.SpiralConv` layers (SpiralNet++).

    Attributes:
        length: Spiral length, the centre included.
        dilation: Spiral dilation.
    """

    length: int = 9
    dilation: int = 1

    def __call__(self, in_channels: int, out_channels: int, topology: GraphTopology) -> nn.Module:
        """A new ``SpiralConv(in_channels, out_channels, topology, length=, dilation=)``."""
        return SpiralConv(
            in_channels, out_channels, topology, length=self.length, dilation=self.dilation
        )


#: The convolutions :func:`conv_factory` builds by name.
CONVOLUTIONS: dict[str, type] = {"cheb": ChebConvFactory, "spiral": SpiralConvFactory}


def conv_factory(name: str, **options: Any) -> ConvFactory:
    """A convolution factory by name: ``"cheb"`` or ``"spiral"`` (see :data:`CONVOLUTIONS`).

    Args:
        name: The convolution.
        **options: The factory's fields (``K``, ``rescale``, ``backend`` for ``"cheb"``;
            ``length``, ``dilation`` for ``"spiral"``).

    Raises:
        ValueError: An unknown name or option (the message lists the valid ones).
    """
    if name not in CONVOLUTIONS:
        raise ValueError(f"unknown convolution {name!r}; expected one of {sorted(CONVOLUTIONS)}")
    cls = CONVOLUTIONS[name]
    fields = cls.__dataclass_fields__
    unknown = sorted(set(options) - set(fields))
    if unknown:
        raise ValueError(f"{name!r} convolutions take {sorted(fields)}, not {unknown}")
    return cls(**options)


def scale_weights_(module: nn.Module, scale: float) -> None:
    """Multiply a convolution's weight matrices (parameters named ``*weight``, 2-D or more)."""
    for name, param in module.named_parameters():
        if name.rsplit(".", 1)[-1] == "weight" and param.dim() >= 2:
            param.data.mul_(scale)
