"""MeshChebConv against torch_geometric.nn.ChebConv (time; peak memory in extra_info)."""

from __future__ import annotations

import pytest

from benchmarks._common import bench_mesh, chebconv_workload, mesh_source, peak_memory_mib
from meshgraph._optional import WITH_TORCH_SPARSE

IMPLS = ["meshgraph-sparse", "meshgraph-dense", "meshgraph-torch_sparse", "pyg"]


@pytest.mark.parametrize("mode", ["forward", "forward_backward"])
@pytest.mark.parametrize("channels", [64, 256])
@pytest.mark.parametrize("batch", [1, 32])
@pytest.mark.parametrize("mesh_name", ["hand", "body"])
@pytest.mark.parametrize("impl", IMPLS)
def test_chebconv(benchmark, impl, mesh_name, batch, channels, mode, device):
    if impl == "meshgraph-torch_sparse" and not WITH_TORCH_SPARSE:
        pytest.skip("torch_sparse is not installed on this machine")
    if impl == "meshgraph-dense" and mesh_name == "body":
        pytest.skip("dense backend: a 13,718^2 operator (750 MB) is not meant for the body mesh")
    mesh = bench_mesh(mesh_name)
    benchmark.group = f"chebconv-{mesh_name}-B{batch}-C{channels}-{mode}-{device}"
    benchmark.extra_info.update(mesh=mesh_source(mesh_name), impl=impl, K=3)
    step = chebconv_workload(
        impl, mesh, batch, channels, K=3, backward=mode == "forward_backward", device=device
    )
    benchmark.pedantic(step, warmup_rounds=1, rounds=3, iterations=1)


@pytest.mark.parametrize("impl", ["meshgraph-sparse", "pyg"])
def test_chebconv_peak_memory_body(benchmark, impl, device):
    """Peak memory of one forward+backward (body, B=32, 64 channels, K=3), fresh process."""
    spec = {
        "kind": "chebconv",
        "impl": impl,
        "mesh": "body",
        "batch": 32,
        "channels": 64,
        "K": 3,
        "backward": True,
        "device": device,
    }
    benchmark.group = f"chebconv-peak-memory-body-B32-C64-{device}"
    result = benchmark.pedantic(peak_memory_mib, args=(spec,), rounds=1, iterations=1)
    benchmark.extra_info.update(peak_mib=result, mesh=mesh_source("body"), impl=impl)


SCALING = {"1k": (25, 40), "4k": (50, 80), "14k": (38, 361), "50k": (200, 250)}


@pytest.mark.parametrize("impl", ["meshgraph-sparse", "pyg"])
@pytest.mark.parametrize("size", list(SCALING))
def test_chebconv_scaling(benchmark, size, impl, device):
    """Cost against mesh size (torus meshes of 1k to 50k vertices), batch 8, 64 channels."""
    from meshgraph.generators import torus_mesh

    mesh = torus_mesh(*SCALING[size])
    benchmark.group = f"chebconv-scaling-B8-C64-forward_backward-{device}"
    benchmark.extra_info.update(num_vertices=mesh.num_vertices, impl=impl, K=3)
    step = chebconv_workload(impl, mesh, 8, 64, K=3, backward=True, device=device)
    benchmark.pedantic(step, warmup_rounds=1, rounds=3, iterations=1)
