"""PoseNet on per-axis against isotropic input normalisation (issue 13).

Usage::

    python -m benchmarks.input_normalisation [--seeds 3 4] [--posenet-epochs 24]
        [--samples 512] [--eval-seed 5] [--threads 1] [--work outputs/input-normalisation]

For every seed, trains PoseNet alone twice (``meshgraph train`` with the shipped body's data
options, ``--epochs 0``), once with the paper's per-axis z-scores of the 2D input
(``--no-isotropic-input``) and once with one spread for both axes (``--isotropic-input``);
the runs differ in nothing else (same seed, samples, noise and weights at the start). Each
PoseNet is then measured on the held-out sets of ``--eval-seed`` (unseen poses, shapes and
cameras; ground-truth, noisy and detector-like 2D): MPJPE, N-MPJPE (the size given),
PA-MPJPE and the mean absolute error along each camera axis, on its Body-29 joints. Runs
already finished in ``--work`` are measured again, not retrained; an unfinished one resumes.
Writes ``benchmarks/results/input-normalisation-cpu.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import restores_torch_threads, write_results
from meshgraph.metrics import mpjpe, n_mpjpe, pa_mpjpe
from meshgraph.models.pose2mesh import Pose2Mesh

ROOT = Path(__file__).resolve().parents[1]
#: The shipped body's data options (its provenance), PoseNet alone.
TRAIN = ["--kind", "body", "--preset", "long", "--pose-blend", "0.3333", "--pose-uniform",
         "0.3333", "--pose-mirror", "0.5", "--detector", "--conv", "spiral", "--joint-set",
         "body29", "--epochs", "0", "--no-progress"]  # fmt: skip
LABELS = {"gt_2d": "ground truth", "noisy_2d": "noisy", "detector_2d": "detector-like"}


@torch.no_grad()
def posenet_errors(
    model: Pose2Mesh, body: Any, samples: int, seed: int
) -> dict[str, dict[str, float]]:
    """PoseNet's errors (mm) on each held-out set of ``seed``, normalised as the model expects.

    Returns:
        ``{set: {"mpjpe", "n_mpjpe", "pa_mpjpe", "x", "y", "z"}}``; ``x``, ``y``, ``z``: the
        mean absolute root-relative error along the camera axes (z: depth).
    """
    from meshgraph.training.evaluate import held_out_sets

    model.eval()
    sets = held_out_sets(body, samples, joint_set=model.joint_set.name, seed=seed,
                         isotropic_input=model.config.isotropic_input)  # fmt: skip
    out: dict[str, dict[str, float]] = {}
    for key, data in sets.items():
        root = data.joint_set.root
        sums: dict[str, float] = {}
        for lo in range(0, samples, 128):
            batch = data.__getitems__(list(range(lo, min(lo + 128, samples))))
            answer = model(batch["keypoints_2d"], batch["visible"], batch["exact"])
            pred = answer["joints_3d"].double()
            true = batch["joints_3d"].double()
            rel = (pred - pred[:, root : root + 1]) - (true - true[:, root : root + 1])
            axes = rel.abs().mean(1)
            rows = {
                "mpjpe": mpjpe(pred, true, root=root),
                "n_mpjpe": n_mpjpe(pred, true, root=root),
                "pa_mpjpe": pa_mpjpe(pred, true),
                "x": axes[:, 0],
                "y": axes[:, 1],
                "z": axes[:, 2],
            }
            for name, value in rows.items():
                sums[name] = sums.get(name, 0.0) + float(value.sum())
        out[key] = {name: 1000.0 * value / samples for name, value in sums.items()}
    return out


#: The columns after a run's name: PoseNet's errors on each held-out set.
ERROR_COLUMNS = (
    "gt MPJPE | gt N-MPJPE | gt PA-MPJPE | gt x / y / z | noisy MPJPE | noisy PA-MPJPE | "
    "detector-like MPJPE | detector-like PA-MPJPE |"
)


def error_cells(errors: dict[str, dict[str, float]]) -> str:
    """A run's :data:`ERROR_COLUMNS` cells (one decimal) from :func:`posenet_errors`' result."""
    g, n, d = errors["gt_2d"], errors["noisy_2d"], errors["detector_2d"]
    return (
        f"{g['mpjpe']:.1f} | {g['n_mpjpe']:.1f} | {g['pa_mpjpe']:.1f} | "
        f"{g['x']:.1f} / {g['y']:.1f} / {g['z']:.1f} | {n['mpjpe']:.1f} | "
        f"{n['pa_mpjpe']:.1f} | {d['mpjpe']:.1f} | {d['pa_mpjpe']:.1f} |"
    )


def _markdown(rows: list[dict[str, Any]], options: dict[str, Any]) -> str:
    """The report: one line per run, then the isotropic runs' change on each seed's mean."""
    lines = [
        "# PoseNet on per-axis against isotropic input normalisation (cpu)",
        "",
        f"`meshgraph train {' '.join(TRAIN)} --posenet-epochs {options['posenet_epochs']} "
        "--seed S --threads 1 {--no-isotropic-input | --isotropic-input}`: PoseNet alone "
        f"({options['posenet_epochs']} epochs), the runs of a seed identical but for the "
        f"normalisation. Millimetres on the held-out sets of seed {options['eval_seed']} "
        f"({options['samples']} samples each), Body-29 joints; x, y, z: mean absolute "
        "root-relative error along the camera axes (z: depth). "
        "Command: `python -m benchmarks.input_normalisation`.",
        "",
        "| seed | input | " + ERROR_COLUMNS,
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = "isotropic" if r["isotropic"] else "per axis"
        lines.append(f"| {r['seed']} | {name} | " + error_cells(r["errors"]))
    pairs = {}
    for r in rows:
        pairs.setdefault(r["seed"], {})[r["isotropic"]] = r["errors"]
    changes = []
    for key, label in LABELS.items():
        for metric in ("mpjpe", "pa_mpjpe"):
            ratios = [p[True][key][metric] / p[False][key][metric] - 1
                      for p in pairs.values() if True in p and False in p]  # fmt: skip
            if ratios:
                mean = 100 * sum(ratios) / len(ratios)
                changes.append(f"{label} {metric.replace('_', '-').upper()} {mean:+.1f} %")
    if changes:
        lines += [
            "",
            "Isotropic against per axis, mean over the seeds: " + ", ".join(changes) + ".",
        ]
    return "\n".join(lines) + "\n"


def ab_parser(description: str, work: str) -> argparse.ArgumentParser:
    """The options of a PoseNet-alone A/B benchmark: seeds, schedule, held-out sets, folders."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seeds", type=int, nargs="+", default=[3, 4])
    p.add_argument("--posenet-epochs", type=int, default=24)
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--eval-seed", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default=work)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    return p


def train_and_measure(
    args: argparse.Namespace, run: Path, seed: int, flags: list[str]
) -> dict[str, dict[str, float]]:
    """Train PoseNet alone in ``run`` (unless finished; an unfinished run resumes), then measure it.

    Args:
        args: The parsed :func:`ab_parser` options.
        run: The run's folder.
        seed: The training seed.
        flags: ``meshgraph train`` flags after :data:`TRAIN` and the schedule.

    Returns:
        :func:`posenet_errors` on the held-out sets of ``args.eval_seed``.
    """
    from meshgraph.cli import _body_for
    from meshgraph.cli import main as cli

    if not (run / "results.json").is_file():
        resume = ["--resume"] if (run / "checkpoint.pt").is_file() else []
        cli(["train", *TRAIN, "--posenet-epochs", str(args.posenet_epochs), "--seed", str(seed),
             "--threads", str(args.threads), "--out", str(run), *flags, *resume])  # fmt: skip
    model = Pose2Mesh.load(run / "model.pt")
    return posenet_errors(model, _body_for(model.config, None), args.samples, args.eval_seed)


@restores_torch_threads
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = ab_parser(__doc__.split("\n")[0], "outputs/input-normalisation")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        for iso in (False, True):
            run = Path(args.work) / f"seed{seed}-{'isotropic' if iso else 'axis'}"
            flag = "--isotropic-input" if iso else "--no-isotropic-input"
            errors = train_and_measure(args, run, seed, [flag])
            rows.append({"seed": seed, "isotropic": iso, "errors": errors})
            print(json.dumps(rows[-1]), flush=True)
    options = {"posenet_epochs": args.posenet_epochs, "samples": args.samples,
               "eval_seed": args.eval_seed}  # fmt: skip
    record = {"options": options, "train": TRAIN, "rows": rows}
    write_results(Path(args.out), "input-normalisation-cpu", record, _markdown(rows, options))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
