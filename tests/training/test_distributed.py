"""Data-parallel training with torchrun, 2 CPU processes, gloo (needs anny)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytest.importorskip("anny")

from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.models import Pose2Mesh
from meshgraph.training import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[2]
# no batch statistics (BatchNorm would see half the batch per process) and no dropout noise
MODEL = {"joint_set": "hand", "mesh_joint_set": "hand", "num_levels": 4, "posenet_width": 32,
         "coarse_channels": 8, "norm": "none", "posenet_norm": "none",
         "posenet_dropout": 0.0}  # fmt: skip
CFG = {"posenet_epochs": 1, "epochs": 1, "samples_per_epoch": 64, "batch_size": 16,
       "edge_loss_start": 0}  # fmt: skip

SCRIPT = """
import json, sys, torch, torch.distributed as dist
from meshgraph.bodies import AnnyModel
from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.models import Pose2Mesh
from meshgraph.training import TrainConfig, Trainer
dist.init_process_group("gloo")
# one rank at a time builds the hand and writes the regressor cache: two processes filling
# one cache (and Anny's kernels) at once on a loaded machine is where a rank once aborted
if dist.get_rank() == 1:
    dist.barrier()
hand = AnnyModel("hand.R", regressor_cache_dir=sys.argv[2])
if dist.get_rank() == 0:
    dist.barrier()
torch.manual_seed(0)
model = Pose2Mesh.from_body(hand, **{model})
ds = SyntheticPoseMeshDataset(hand, 1000, joint_set="hand", seed=1)
hist = Trainer(model, ds, TrainConfig(**{cfg}), sys.argv[1], progress=False).fit()
if dist.get_rank() == 0:
    with open(sys.argv[1] + "/history.json", "w") as fh:
        json.dump(hist, fh)
    torch.save(model.state_dict(), sys.argv[1] + "/weights.pt")
dist.barrier()  # no rank tears gloo down while the other still talks to it
dist.destroy_process_group()
"""


def test_two_processes_match_one(hand, tmp_path):
    torch.manual_seed(0)
    model = Pose2Mesh.from_body(hand, **MODEL)
    ds = SyntheticPoseMeshDataset(hand, 1000, joint_set="hand", seed=1)
    single = Trainer(model, ds, TrainConfig(**CFG), tmp_path / "one", progress=False).fit()

    script = tmp_path / "ddp.py"
    script.write_text(textwrap.dedent(SCRIPT.format(model=MODEL, cfg=CFG)))
    out = tmp_path / "two"
    out.mkdir()
    with socket.socket() as sock:  # a free port, so that parallel or repeated runs never clash
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(port), str(script), str(out),
           str(tmp_path / "reg")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    # the first lines say which rank failed and why; the last ones how torchrun ended
    assert proc.returncode == 0, proc.stderr[:4000] + "\n...\n" + proc.stderr[-2000:]
    two = json.loads((out / "history.json").read_text())
    assert len(two) == len(single) == 2
    for a, b in zip(single, two, strict=True):
        for key in ("loss_total", "loss_pose", "loss_vertex"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-4), key
    # Adam divides by the gradient's running magnitude, so where a gradient is almost zero
    # the summation order can move a weight by up to about lr per step: compare loosely
    weights = torch.load(out / "weights.pt", weights_only=True)
    worst = max(float((weights[k] - v).abs().max()) for k, v in model.state_dict().items())
    assert worst < 8 * 1e-3, worst
