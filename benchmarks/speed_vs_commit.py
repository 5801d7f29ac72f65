"""Pose2Mesh speed of this tree against an earlier commit, side by side in one run.

Usage::

    python -m benchmarks.speed_vs_commit --base 4024ed2 --rounds 3

The base commit is exported (``git archive``) to a temporary folder. Every case then runs in a
fresh process per round, alternating base and this tree, so that both see the same machine
load; the figure of a run is the median over its repetitions, and the table gives the median
over rounds and the ratio base / this tree. This tree runs twice: as the library is called
(``new``) and after :func:`meshgraph.devices.reuse_cpu_memory` (``new+reuse``, what the
``meshgraph`` command and the training pipeline do).

Cases (CPU, or ``--device cuda``):

* ``infer-B64`` / ``train-B64``: full-body Pose2Mesh (Anny's 13,718 vertices, compact, 8
  levels, PoseNet 1024), one batch-64 inference or training step (L1 vertex and joint losses,
  backward, Adam), as in ``benchmarks/test_bench_pose2mesh.py``;
* ``quick-step``: one stage-2 training step of the body ``quick`` preset (1,229 vertices, the
  preset's model and losses, the tree's own trainer optimiser), data excluded;
* ``quick-data``: one synthetic batch of 64 for that preset.

Writes ``benchmarks/results/speed-vs-<base>-<device>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = ("infer-B64", "train-B64", "quick-step", "quick-data")

# Runs in a fresh interpreter with PYTHONPATH = the tree under test; prints one JSON line.
_WORKER = r"""
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
import torch
tree, case, device = sys.argv[1], sys.argv[2], sys.argv[3]
reps, reuse = int(sys.argv[4]), sys.argv[5] == "1"
import meshgraph
assert meshgraph.__file__.startswith(tree), (meshgraph.__file__, tree)
if reuse:
    from meshgraph.devices import reuse_cpu_memory
    reuse_cpu_memory()
torch.set_num_threads(int(sys.argv[6]))
dev = torch.device(device)
def sync():
    if dev.type == "cuda":
        torch.cuda.synchronize()
if case in ("infer-B64", "train-B64"):
    from benchmarks._common import bench_mesh, pose2mesh_model, pose2mesh_workload
    model = pose2mesh_model(bench_mesh("body"))
    step = pose2mesh_workload(model, 64, train=case == "train-B64", device=device)
else:
    from meshgraph.data import SyntheticPoseMeshDataset
    from meshgraph.models import Pose2Mesh, Pose2MeshConfig
    from meshgraph.training import TrainConfig
    from meshgraph.training.pipeline import build_body, preset
    from meshgraph.training.trainer import pose2mesh_losses
    cfg = preset("body", "quick")
    body = build_body(cfg)
    data = SyntheticPoseMeshDataset(body, 1_000_000, joint_set="coco", seed=0)
    if case == "quick-data":
        counter = iter(range(0, 10**6, 64))
        def step():
            i = next(counter)
            data.__getitems__(list(range(i, i + 64)))
    else:
        torch.manual_seed(0)
        model = Pose2Mesh.from_body(body, Pose2MeshConfig(joint_set="coco", mesh_joint_set="h36m",
                                                          **cfg.model)).to(dev)
        tc = TrainConfig(**cfg.train)
        try:  # each tree's own trainer optimiser (fused Adam from 90567ce on)
            from meshgraph.training.trainer import _optimizer
            opt = _optimizer(torch.optim.Adam, [{"params": list(model.parameters())}], 1e-3)
        except ImportError:
            opt = torch.optim.Adam(model.parameters(), 1e-3)
        batch = {k: v.to(dev) for k, v in data.__getitems__(list(range(64))).items()}
        faces = model.faces.to(dev)
        def step():
            out = model(batch["keypoints_2d"])
            terms = pose2mesh_losses(out, batch, faces, tc, 2, tc.edge_loss_start)
            opt.zero_grad(set_to_none=True)
            terms["total"].backward()
            opt.step()
            sync()
step()
times = []
for _ in range(reps):
    t = time.perf_counter()
    step()
    sync()
    times.append(time.perf_counter() - t)
print(json.dumps({"ms": 1000 * statistics.median(times), "all_ms": [1000 * t for t in times]}))
"""


def _export(rev: str, into: Path) -> Path:
    """``git archive`` of ``rev`` unpacked into ``into``; returns the tree."""
    tree = into / f"meshgraph-{rev}"
    tree.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev],
                             check=True, capture_output=True).stdout  # fmt: skip
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _run(tree: Path, case: str, device: str, reps: int, reuse: bool, threads: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree))
    args = [sys.executable, "-c", _WORKER, str(tree), case, device, str(reps), str(int(reuse)),
            str(threads)]  # fmt: skip
    proc = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{case} in {tree} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="4024ed2", help="the commit to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions per process")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="output stem (default benchmarks/results/…)")
    args = parser.parse_args(argv)
    impls = {"base": (None, False), "new": (ROOT, False), "new+reuse": (ROOT, True)}
    results: dict[str, dict[str, list[float]]] = {c: {k: [] for k in impls} for c in args.cases}
    with tempfile.TemporaryDirectory() as tmp:
        base_tree = _export(args.base, Path(tmp))
        start = time.time()
        for r in range(args.rounds):
            for case in args.cases:
                for name, (tree, reuse) in impls.items():
                    res = _run(tree or base_tree, case, args.device, args.reps, reuse, args.threads)
                    results[case][name].append(res["ms"])
                    print(f"round {r + 1}/{args.rounds} {case:<11} {name:<10} {res['ms']:9.1f} ms "
                          f"({time.time() - start:.0f} s)", flush=True)  # fmt: skip
    head = git_head()
    lines = [f"# Speed of {head} against {args.base} ({args.device}, {args.threads} threads)", "",
             f"Median over {args.rounds} rounds of fresh processes (each the median of "
             f"{args.reps} repetitions after a warm-up); base and this tree alternate.", "",
             "| case | base | new | new+reuse | base / new | base / new+reuse |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    summary = {}
    for case, rows in results.items():
        med = {k: statistics.median(v) for k, v in rows.items()}
        summary[case] = {"median_ms": med, "runs_ms": rows,
                         "speedup_new": med["base"] / med["new"],
                         "speedup_new_reuse": med["base"] / med["new+reuse"]}  # fmt: skip
        lines.append(f"| {case} | {med['base']:.1f} ms | {med['new']:.1f} ms | "
                     f"{med['new+reuse']:.1f} ms | {summary[case]['speedup_new']:.2f}x | "
                     f"{summary[case]['speedup_new_reuse']:.2f}x |")  # fmt: skip
    stem = Path(args.out or ROOT / "benchmarks" / "results" / f"speed-vs-{args.base}-{args.device}")
    meta = {"base": args.base, "head": head, "device": args.device, "threads": args.threads,
            "rounds": args.rounds, "reps": args.reps, "cases": summary}  # fmt: skip
    stem.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def git_head() -> str:
    """The short hash of HEAD, with ``+dirty`` when the tree has uncommitted changes."""
    rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()  # fmt: skip
    status = ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"]
    dirty = subprocess.run(status, capture_output=True, text=True).stdout.strip()
    return rev + ("+dirty" if dirty else "")


if __name__ == "__main__":
    sys.exit(main())
