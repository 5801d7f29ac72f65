"""Building a hierarchy: heavy-edge matching, and the eigenvalues of every level."""

from __future__ import annotations

import pytest

from benchmarks._common import bench_mesh, mesh_source
from meshgraph import MeshHierarchy
from meshgraph.generators import torus_mesh

SIZES = {"1k": (25, 40), "4k": (50, 80), "14k": (38, 361), "50k": (200, 250)}


@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
@pytest.mark.parametrize("mesh_name", ["hand", "body"])
def test_coarsen_anny(benchmark, mesh_name, layout):
    mesh = bench_mesh(mesh_name)
    benchmark.group = f"coarsen-8-levels-{mesh_name}"
    benchmark.extra_info["mesh"] = mesh_source(mesh_name)

    def build() -> MeshHierarchy:
        # a fresh topology each time: nothing cached from an earlier round
        fresh = type(mesh)(mesh.faces, mesh.num_vertices)
        h = MeshHierarchy.build(fresh, 8, layout=layout)
        for top in h.topologies:
            top.scaled_laplacian_scipy()  # the eigenvalue and operator of every level
        return h

    h = benchmark.pedantic(build, rounds=3, iterations=1)
    benchmark.extra_info["sizes"] = h.sizes


@pytest.mark.parametrize("size", list(SIZES))
def test_coarsen_scaling(benchmark, size):
    rows, cols = SIZES[size]
    mesh = torus_mesh(rows, cols)
    benchmark.group = "coarsen-scaling-8-levels"
    benchmark.extra_info["num_vertices"] = mesh.num_vertices
    benchmark.pedantic(lambda: MeshHierarchy.build(mesh, 8), rounds=3, iterations=1)
