"""meshgraph: graph deep learning on fixed-topology 3D meshes.

The names most users need are importable from the top level::

    from meshgraph import MeshTopology, MeshHierarchy, MeshChebConv, MeshPool, MeshUnpool
"""

from meshgraph.coarsening import MeshHierarchy, coarsen, heavy_edge_matching
from meshgraph.mesh import GraphTopology, MeshTopology
from meshgraph.nn import MeshChebConv, MeshPool, MeshUnpool, SpiralConv

__version__ = "0.1.0"

__all__ = [
    "GraphTopology",
    "MeshChebConv",
    "MeshHierarchy",
    "MeshPool",
    "MeshTopology",
    "MeshUnpool",
    "SpiralConv",
    "__version__",
    "coarsen",
    "heavy_edge_matching",
]
