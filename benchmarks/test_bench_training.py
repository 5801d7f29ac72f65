"""End-to-end training throughput: the real training loop, data generation included.

One benchmark round is :meth:`~meshgraph.training.Trainer.fit` over ``STEPS`` stage-2 steps
(the step that dominates a run: the whole model, every loss) of a preset's model on its own
synthetic data, generated as training goes, after :func:`~meshgraph.devices.reuse_cpu_memory`
(as ``meshgraph train`` does). ``extra_info`` holds steps per second.

* ``quick``: the body ``quick`` preset (Anny's 1,229-vertex topology, 6 levels), what
  ``examples/pose2mesh_body.py`` trains;
* ``full``: the ``full`` preset on the full 13,718-vertex mesh (8 levels, PoseNet 2048); skipped
  when ``MESHGRAPH_BENCH_ANNY=0`` (the CI smoke run).
"""

from __future__ import annotations

import functools
import os
import tempfile

import pytest
import torch

from meshgraph._optional import WITH_ANNY

pytestmark = pytest.mark.skipif(not WITH_ANNY, reason="anny is not installed")
STEPS = 4


@functools.cache
def _body(topology: str | None):
    from meshgraph.bodies import AnnyModel

    return AnnyModel("body", topology=topology)


def _fit(name: str, device: str) -> None:
    from meshgraph.data import SyntheticPoseMeshDataset
    from meshgraph.devices import reuse_cpu_memory
    from meshgraph.models import Pose2MeshConfig
    from meshgraph.training import TrainConfig, Trainer
    from meshgraph.training.pipeline import preset

    reuse_cpu_memory()
    cfg = preset("body", name)
    body = _body(cfg.anny_topology)
    data = SyntheticPoseMeshDataset(body, 1_000_000, joint_set="coco", seed=0)
    torch.manual_seed(0)
    model_cfg = Pose2MeshConfig(joint_set="coco", mesh_joint_set="h36m", **cfg.model)
    model = _cached_model(name, model_cfg, body)
    train = {**cfg.train, "posenet_epochs": 0, "epochs": 1, "edge_loss_start": 0,
             "samples_per_epoch": STEPS * cfg.train["batch_size"]}  # fmt: skip
    with tempfile.TemporaryDirectory() as out:
        Trainer(model, data, TrainConfig(**train), out, device=device, progress=False).fit()


_MODELS: dict = {}


def _cached_model(name: str, model_cfg: object, body: object) -> torch.nn.Module:
    """One model per preset (its hierarchy takes seconds to build); weights keep training."""
    from meshgraph.models import Pose2Mesh

    if name not in _MODELS:
        _MODELS[name] = Pose2Mesh.from_body(body, model_cfg)
    return _MODELS[name]


@pytest.mark.parametrize("name", ["quick", "full"])
def test_training_throughput(benchmark, name, device):
    if name == "full" and os.environ.get("MESHGRAPH_BENCH_ANNY", "1") == "0":
        pytest.skip("the full mesh is skipped with MESHGRAPH_BENCH_ANNY=0")
    benchmark.group = f"training-body-{name}-B64-{device}"
    benchmark.pedantic(_fit, args=(name, device), warmup_rounds=1, rounds=3, iterations=1)
    if benchmark.stats is not None:
        benchmark.extra_info["steps_per_s"] = STEPS / benchmark.stats.stats.median
