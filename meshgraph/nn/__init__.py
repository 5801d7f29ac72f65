"""Neural-network layers for fixed-topology meshes."""

from meshgraph.nn.blocks import (
    ChebBlock,
    MeshBlock,
    MeshDecoder,
    MeshEncoder,
    channel_interpolation_matrix,
    interpolate_channels,
)
from meshgraph.nn.cheb_conv import BACKENDS, MeshChebConv
from meshgraph.nn.convs import (
    CONVOLUTIONS,
    ChebConvFactory,
    ConvFactory,
    SpiralConvFactory,
    conv_factory,
)
from meshgraph.nn.pool import (
    MeshPool,
    MeshUnpool,
    binary_tree_pool,
    binary_tree_unpool,
    cluster_pool,
    cluster_unpool,
    pair_pool,
)
from meshgraph.nn.spiral_conv import SpiralConv
from meshgraph.nn.vertex_map import VertexMap

__all__ = [
    "BACKENDS",
    "CONVOLUTIONS",
    "ChebBlock",
    "ChebConvFactory",
    "ConvFactory",
    "MeshBlock",
    "MeshChebConv",
    "MeshDecoder",
    "MeshEncoder",
    "MeshPool",
    "MeshUnpool",
    "SpiralConv",
    "SpiralConvFactory",
    "VertexMap",
    "binary_tree_pool",
    "binary_tree_unpool",
    "channel_interpolation_matrix",
    "cluster_pool",
    "cluster_unpool",
    "conv_factory",
    "interpolate_channels",
    "pair_pool",
]
