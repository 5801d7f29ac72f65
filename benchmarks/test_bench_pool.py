"""Pooling and unpooling between the two finest levels: compact vs binary-tree layout."""

from __future__ import annotations

import functools

import pytest
import torch

from benchmarks._common import bench_mesh, mesh_source, sync
from meshgraph import MeshHierarchy
from meshgraph.nn import MeshPool, MeshUnpool


@functools.cache
def _hierarchy(mesh_name: str, layout: str) -> MeshHierarchy:
    return MeshHierarchy.build(bench_mesh(mesh_name), 8, layout=layout)


@pytest.mark.parametrize("op", ["pool", "unpool"])
@pytest.mark.parametrize("batch", [1, 32])
@pytest.mark.parametrize("mesh_name", ["hand", "body"])
@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
def test_pool_unpool(benchmark, layout, mesh_name, batch, op, device):
    """Level 0 -> 1 (pool, max) or level 1 -> 0 (unpool), 64 channels, forward + backward."""
    h = _hierarchy(mesh_name, layout)
    dev = torch.device(device)
    n = h.sizes[0] if op == "pool" else h.sizes[1]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, n, 64, generator=gen).to(dev).requires_grad_(True)
    fn = MeshPool(h, 0).to(dev) if op == "pool" else MeshUnpool(h, 1).to(dev)

    def step() -> None:
        out = fn(x)
        out.backward(torch.ones_like(out))
        x.grad = None
        sync(dev)

    benchmark.group = f"{op}-{mesh_name}-B{batch}-C64-{device}"
    benchmark.extra_info.update(mesh=mesh_source(mesh_name), layout=layout, sizes=h.sizes[:2])
    benchmark.pedantic(step, warmup_rounds=1, rounds=5, iterations=1)
