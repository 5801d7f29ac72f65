"""Neural-network layers for fixed-topology meshes."""

from meshgraph.nn.blocks import (
    ChebBlock,
    MeshDecoder,
    MeshEncoder,
    channel_interpolation_matrix,
    interpolate_channels,
)
from meshgraph.nn.cheb_conv import BACKENDS, MeshChebConv
from meshgraph.nn.pool import (
    MeshPool,
    MeshUnpool,
    binary_tree_pool,
    binary_tree_unpool,
    cluster_pool,
    cluster_unpool,
    pair_pool,
)

__all__ = [
    "BACKENDS",
    "ChebBlock",
    "MeshChebConv",
    "MeshDecoder",
    "MeshEncoder",
    "MeshPool",
    "MeshUnpool",
    "binary_tree_pool",
    "binary_tree_unpool",
    "channel_interpolation_matrix",
    "cluster_pool",
    "cluster_unpool",
    "interpolate_channels",
    "pair_pool",
]
