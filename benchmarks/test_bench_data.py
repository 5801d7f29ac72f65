"""Synthetic data generation and the Anny forward pass (samples per second at batch 64)."""

from __future__ import annotations

import pytest
import torch

from meshgraph._optional import WITH_ANNY

pytestmark = pytest.mark.skipif(not WITH_ANNY, reason="anny is not installed")


@pytest.fixture(scope="module")
def body():
    from meshgraph.bodies import AnnyModel

    return AnnyModel("body")


@pytest.mark.parametrize("joint_set", ["coco", "h36m"])
def test_synthetic_batch64(benchmark, body, joint_set, device):
    """A batch made on ``device`` (the body model moves there with the dataset)."""
    from meshgraph.data.synthetic import SyntheticPoseMeshDataset

    ds = SyntheticPoseMeshDataset(body, 10_000, joint_set=joint_set, seed=0, device=device)
    counter = iter(range(0, 10_000, 64))
    benchmark.group = f"data-synthetic-body-B64-{device}"

    def step():
        start = next(counter)
        out = ds.__getitems__(range(start, start + 64))
        if ds.device.type == "cuda":
            torch.cuda.synchronize()
        return out

    benchmark.pedantic(step, warmup_rounds=1, rounds=5, iterations=1)
    _record_rate(benchmark, "samples_per_s")


def test_anny_forward_batch64(benchmark, body):
    body.to("cpu")
    benchmark.group = "data-anny-forward-B64"
    pose = 0.2 * torch.randn(64, body.num_bones, 3, generator=torch.Generator().manual_seed(0))
    shape = torch.rand(64, 6, generator=torch.Generator().manual_seed(1))

    def step():
        with torch.no_grad():
            return body(pose, shape)

    benchmark.pedantic(step, warmup_rounds=1, rounds=5, iterations=1)
    _record_rate(benchmark, "meshes_per_s")


def _record_rate(benchmark, name: str) -> None:
    """Store items per second at batch 64 (nothing in --benchmark-disable smoke runs)."""
    if benchmark.stats is not None:
        benchmark.extra_info[name] = 64 / benchmark.stats.stats.median
