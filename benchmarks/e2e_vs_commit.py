"""``python examples/pose2mesh_body.py`` end to end: this tree against an earlier commit.

Usage::

    python -m benchmarks.e2e_vs_commit --base 4024ed2

The base commit is exported (``git archive``) to a temporary folder; then both trees run the
example, one after the other on the same machine, as a user would (``PYTHONPATH=<tree>
python examples/pose2mesh_body.py --no-progress --out <tmp>``; extra arguments after ``--``
are passed to both). The wall time of each process and the held-out metrics of its
``results.json`` go to ``benchmarks/results/e2e-body-<preset>-<device>.{json,md}``.

It takes the two runs' time: about 10 minutes for the ``quick`` preset on 2 CPU cores.
``--rounds 2`` runs base, new, new, base (then again for more rounds), so that a drift of the
machine's speed during the runs weighs on both trees alike, and reports each tree's median.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.speed_vs_commit import ROOT, _export, git_head

METRICS = ("mpjpe", "pa_mpjpe", "mpvpe", "pa_mpvpe")


def run_example(tree: Path, out: Path, extra: list[str]) -> dict:
    """Run the body example from ``tree`` into ``out``; its wall time and ``results.json``."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    args = [sys.executable, "examples/pose2mesh_body.py", "--no-progress", "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.run([*args, *extra], cwd=tree, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the example failed in {tree}:\n{proc.stderr[-3000:]}")
    results = json.loads((out / "results.json").read_text())
    return {"wall_s": wall, "train_s": results["train_seconds"], "steps": results["steps"],
            "gt_2d": results["gt_2d"], "noisy_2d": results["noisy_2d"]}  # fmt: skip


def _median(values: list[float]) -> float:
    v = sorted(values)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def _merge(runs: list[dict]) -> dict:
    """One tree's runs as one row: median times (the metrics are the same run to run)."""
    row = dict(runs[0])
    row["wall_s"] = _median([r["wall_s"] for r in runs])
    row["train_s"] = _median([r["train_s"] for r in runs])
    row["wall_s_each"] = [round(r["wall_s"], 1) for r in runs]
    return row


def _markdown(base: str, new: str, rows: dict, device: str, threads: int) -> str:
    b, n = rows[base], rows[new]
    rounds = len(n.get("wall_s_each", [0]))
    lines = [
        f"# `python examples/pose2mesh_body.py` end to end, {base} against {new} "
        f"({device}, {threads} threads)",
        "",
        "Both trees run one after the other on the same machine (`python -m "
        "benchmarks.e2e_vs_commit`): the quick body preset, "
        f"{n['steps']:,} steps, held-out samples. Millimetres, ground-truth 2D input."
        + (
            f" {rounds} runs of each tree in the order base, new, new, base, ...; the times "
            "are medians."
            if rounds > 1
            else ""
        ),
        "",
        "| run | wall time | training | MPJPE | PA-MPJPE | MPVPE | PA-MPVPE "
        "| noisy 2D PA-MPJPE / MPVPE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in ((base, b), (new, n)):
        m = r["gt_2d"]
        lines.append(
            f"| {name} | {r['wall_s']:.0f} s | {r['train_s']:.0f} s | "
            + " | ".join(f"{m[k]:.1f}" for k in METRICS)
            + f" | {r['noisy_2d']['pa_mpjpe']:.1f} / {r['noisy_2d']['mpvpe']:.1f} |"
        )
    if rounds > 1:
        lines += ["", f"Wall times of each run: {base} {b['wall_s_each']} s, "
                  f"{new} {n['wall_s_each']} s."]  # fmt: skip
    lines += ["", f"{b['wall_s'] / n['wall_s']:.2f} times faster end to end "
              f"({b['train_s'] / n['train_s']:.2f} times for the training alone)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the comparison; see the module docstring."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="4024ed2", help="the commit to compare against")
    parser.add_argument("--name", default="e2e-body-quick-cpu", help="results file stem")
    parser.add_argument(
        "--rounds", type=int, default=1, help="runs of each tree (base, new, new, base, ...)"
    )
    args = parser.parse_args(argv)
    import torch

    new = git_head()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    runs: dict[str, list[dict]] = {args.base: [], new: []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        trees = {args.base: _export(args.base, tmp_path), new: ROOT}
        order = [args.base, new]
        for r in range(args.rounds):
            for name in order if r % 2 == 0 else order[::-1]:
                print(f"running the example from {name} ...", flush=True)
                out_dir = tmp_path / f"out-{name}-{r}"
                runs[name].append(run_example(trees[name], out_dir, extra))
                print(f"  {runs[name][-1]['wall_s']:.0f} s", flush=True)
    rows = {name: _merge(r) for name, r in runs.items()}
    out = ROOT / "benchmarks" / "results"
    record = {"base": args.base, "new": new, "extra_args": extra, "runs": rows,
              "machine": platform.processor() or platform.machine(),
              "threads": torch.get_num_threads()}  # fmt: skip
    (out / f"{args.name}.json").write_text(json.dumps(record, indent=2) + "\n")
    text = _markdown(args.base, new, rows, "cpu", torch.get_num_threads())
    (out / f"{args.name}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
