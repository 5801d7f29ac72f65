"""The trainer's optional bf16 autocast and torch.compile, measured side by side.

Usage::

    python -m benchmarks.trainer_options [--device cuda] [--preset quick] [--steps 10]

Each variant (``eager``, ``bf16``, ``compile``, ``bf16+compile``) runs in a fresh process:
the body preset's model takes stage-2 steps (forward, every loss, backward, Adam) of one fixed
batch, as :class:`~meshgraph.training.Trainer` runs them with ``TrainConfig(bf16=...,
compile=...)``. The first step (compilation included) is reported apart from the median of the
next ``--steps``; peak device memory on CUDA. Writes
``benchmarks/results/trainer-options-<preset>-<device>.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from benchmarks.speed_vs_commit import ROOT, git_head

VARIANTS = {"eager": (False, False), "bf16": (True, False), "compile": (False, True),
            "bf16+compile": (True, True)}  # fmt: skip

_WORKER = r"""
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
preset_name, device, bf16, compile_, steps = sys.argv[1], sys.argv[2], sys.argv[3] == "1", \
    sys.argv[4] == "1", int(sys.argv[5])
from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.devices import reuse_cpu_memory
from meshgraph.models import Pose2Mesh, Pose2MeshConfig
from meshgraph.training import TrainConfig
from meshgraph.training.pipeline import build_body, preset
from meshgraph.training.trainer import _optimizer, pose2mesh_losses
reuse_cpu_memory()
dev = torch.device(device)
cfg = preset("body", preset_name)
body = build_body(cfg)
data = SyntheticPoseMeshDataset(body, 10_000, joint_set="coco", seed=0)
torch.manual_seed(0)
model = Pose2Mesh.from_body(body, Pose2MeshConfig(joint_set="coco", mesh_joint_set="h36m",
                                                  **cfg.model)).to(dev)
tc = TrainConfig(**cfg.train)
opt = _optimizer(torch.optim.Adam, [{"params": list(model.parameters())}], 1e-3)
batch = {k: v.to(dev) for k, v in data.__getitems__(list(range(64))).items()}
faces = model.faces.to(dev)
forward = torch.compile(model) if compile_ else model
def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()
def step():
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        out = forward(batch["keypoints_2d"])
    if bf16:
        out = {k: v.float() for k, v in out.items()}
    terms = pose2mesh_losses(out, batch, faces, tc, 2, tc.edge_loss_start)
    opt.zero_grad(set_to_none=True)
    terms["total"].backward()
    opt.step()
    sync()
    return float(terms["total"].detach())
if dev.type == "cuda":
    torch.cuda.reset_peak_memory_stats()
t = time.perf_counter()
first_loss = step()
first = time.perf_counter() - t
times = []
for _ in range(steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
peak = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else None
print(json.dumps({"first_s": first, "step_ms": 1000 * sorted(times)[len(times) // 2],
                  "all_ms": [1000 * x for x in times], "first_loss": first_loss,
                  "peak_mib": peak}))
"""


def _run(preset: str, device: str, bf16: bool, compile_: bool, steps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [sys.executable, "-c", _WORKER, preset, device, str(int(bf16)), str(int(compile_)),
            str(steps)]  # fmt: skip
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "?"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Measure every variant; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--preset", default="quick", choices=["quick", "full"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--out", default=None, help="output stem (default benchmarks/results/…)")
    args = parser.parse_args(argv)
    import torch

    results = {}
    for name in args.variants:
        bf16, compile_ = VARIANTS[name]
        results[name] = _run(args.preset, args.device, bf16, compile_, args.steps)
        print(name, results[name], flush=True)
    eager = results.get("eager", {}).get("step_ms")
    lines = [f"# Trainer options, body {args.preset} preset, stage-2 step, batch 64 "
             f"({args.device}, {torch.get_num_threads()} threads, {git_head()})", "",
             "`python -m benchmarks.trainer_options`: each variant in a fresh process; the "
             f"median of {args.steps} steps after the first (which compiles).", "",
             "| variant | first step | step | eager / variant | first loss | peak memory |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error'][:80]} | | | | |")
            continue
        ratio = f"{eager / r['step_ms']:.2f}x" if eager else ""
        peak = f"{r['peak_mib']:.0f} MiB" if r["peak_mib"] is not None else ""
        lines.append(f"| {name} | {r['first_s']:.1f} s | {r['step_ms']:.1f} ms | {ratio} | "
                     f"{r['first_loss']:.4f} | {peak} |")  # fmt: skip
    default = ROOT / "benchmarks" / "results" / f"trainer-options-{args.preset}-{args.device}"
    stem = Path(args.out) if args.out else default
    meta = {"device": args.device, "preset": args.preset, "steps": args.steps,
            "head": git_head(), "results": results}  # fmt: skip
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
