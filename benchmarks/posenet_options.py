"""PoseNet's training options against the shipped body's (issue 13): A/B runs, PoseNet alone.

Usage::

    python -m benchmarks.posenet_options [--seeds 3 4]
        [--variants baseline clean25 blocks4 clean50 width2048 exact50]
        [--posenet-epochs 24] [--samples 512] [--eval-seed 5] [--threads 1]
        [--work outputs/posenet-options]

For every seed, trains PoseNet alone once per variant (``meshgraph train`` with the shipped
body's data options, ``--epochs 0``, isotropic input); the runs of a seed differ only in the
variant's flags (:data:`VARIANTS`: the same seed, poses, shapes, cameras and noise draws):

* ``baseline``: the shipped body's options;
* ``clean25``: ``--clean-fraction 0.25``, a quarter of the training samples keep their exact
  2D keypoints (untouched by the noise and the detector failures);
* ``blocks4``: ``--posenet-blocks 4``, twice PoseNet's residual blocks;
* ``clean50``: ``--clean-fraction 0.5``, half of the training samples exact;
* ``width2048``: ``--posenet-width 2048``, twice PoseNet's width (four times its hidden
  layers' weights);
* ``exact50``: ``--clean-fraction 0.5 --exactness-input``, half of the training samples
  exact and PoseNet told which (``Pose2MeshConfig.exactness_input``); the held-out sets tell
  it too (exact: the ground-truth set).

Each PoseNet is then measured on the held-out sets of ``--eval-seed`` (unseen poses, shapes
and cameras; ground-truth, noisy and detector-like 2D) as ``benchmarks.input_normalisation``
does (:func:`~benchmarks.input_normalisation.posenet_errors`). Runs already finished in
``--work`` are measured again, not retrained; an unfinished one resumes. Writes
``benchmarks/results/posenet-options-cpu.{json,md}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import restores_torch_threads, write_results
from benchmarks.input_normalisation import (
    ERROR_COLUMNS,
    LABELS,
    TRAIN,
    ab_parser,
    error_cells,
    train_and_measure,
)

#: Variant name -> the flags it adds to the shipped body's options.
VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    "clean25": ["--clean-fraction", "0.25"],
    "blocks4": ["--posenet-blocks", "4"],
    "clean50": ["--clean-fraction", "0.5"],
    "width2048": ["--posenet-width", "2048"],
    "exact50": ["--clean-fraction", "0.5", "--exactness-input"],
}


def _markdown(rows: list[dict[str, Any]], options: dict[str, Any]) -> str:
    """The report: one line per run, then each variant's change against the seed's baseline."""
    flags = "; ".join(f"{k}: `{' '.join(v) or '(none)'}`" for k, v in VARIANTS.items()
                      if k in {r['variant'] for r in rows})  # fmt: skip
    lines = [
        "# PoseNet's training options (cpu)",
        "",
        f"`meshgraph train {' '.join(TRAIN)} --isotropic-input --posenet-epochs "
        f"{options['posenet_epochs']} --seed S --threads 1 FLAGS`: PoseNet alone "
        f"({options['posenet_epochs']} epochs), the runs of a seed identical but for the "
        f"variant's flags ({flags}). Millimetres on the held-out sets of seed "
        f"{options['eval_seed']} ({options['samples']} samples each), Body-29 joints; x, y, z: "
        "mean absolute root-relative error along the camera axes (z: depth). "
        "Command: `python -m benchmarks.posenet_options`.",
        "",
        "| seed | variant | " + ERROR_COLUMNS,
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['variant']} | " + error_cells(r["errors"]))
    by_seed: dict[int, dict[str, Any]] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], {})[r["variant"]] = r["errors"]
    variants = [v for v in dict.fromkeys(r["variant"] for r in rows) if v != "baseline"]
    for variant in variants:
        changes = []
        for key, label in LABELS.items():
            for metric in ("mpjpe", "pa_mpjpe"):
                diffs = [p[variant][key][metric] - p["baseline"][key][metric]
                         for p in by_seed.values() if variant in p and "baseline" in p]  # fmt: skip
                if diffs:
                    mean = sum(diffs) / len(diffs)
                    changes.append(f"{label} {metric.replace('_', '-').upper()} {mean:+.1f} mm")
        if changes:
            lines += ["", f"{variant} against baseline, mean over the seeds: "
                      + ", ".join(changes) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


@restores_torch_threads
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    p = ab_parser(__doc__.split("\n")[0], "outputs/posenet-options")
    p.add_argument("--variants", nargs="+", choices=sorted(VARIANTS),
                   default=list(VARIANTS))  # fmt: skip
    args = p.parse_args(argv)
    if "baseline" not in args.variants:
        p.error("--variants must include baseline (every change is measured against it)")
    torch.set_num_threads(args.threads)
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            run = Path(args.work) / f"seed{seed}-{variant}"
            errors = train_and_measure(args, run, seed, ["--isotropic-input", *VARIANTS[variant]])
            rows.append({"seed": seed, "variant": variant, "errors": errors})
            print(json.dumps(rows[-1]), flush=True)
    options = {"posenet_epochs": args.posenet_epochs, "samples": args.samples,
               "eval_seed": args.eval_seed}  # fmt: skip
    record = {"options": options, "train": TRAIN, "variants": VARIANTS, "rows": rows}
    write_results(Path(args.out), "posenet-options-cpu", record, _markdown(rows, options))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
