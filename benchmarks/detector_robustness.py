"""Training on detector failures: the body quick preset with and without them, three held-out sets.

Usage::

    python -m benchmarks.detector_robustness                    # the three variants below
    python -m benchmarks.detector_robustness --variants plain detector
    python -m benchmarks.detector_robustness --models shipped=meshgraph/weights/pose2mesh-body.pt

Every variant trains the body preset (``--preset``, default ``quick``) on the wide pose prior
(a third of the poses between two canonical poses, a third uniform within the joint limits):

* ``plain``: the PoseFix-style noise only;
* ``detector``: plus :class:`~meshgraph.data.noise.DetectorNoise` (missing joints and limbs,
  left/right swaps, per-joint offsets), with the visibility as an input channel
  (``--detector``);
* ``detector-novis``: the same failures, but no visibility channel (missing joints are 0).

Each model is evaluated on the held-out sets of ``meshgraph evaluate``
(:func:`~meshgraph.training.evaluate.held_out_sets`: the same bodies, poses and cameras with
ground-truth, noisy and detector-like 2D). Results go to
``benchmarks/results/detector-<preset>-cpu.{json,md}``; ``--models NAME=PATH`` evaluates
trained body models instead of training (``--out`` then names the results).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

WIDE = {"blend": 1 / 3, "uniform": 1 / 3}
VARIANTS: dict[str, dict] = {
    "plain": {"poses": WIDE},
    "detector": {"poses": WIDE, "detector": {}, "model": {"visibility_input": True}},
    "detector-novis": {"poses": WIDE, "detector": {}},
}
SETS = ("gt_2d", "noisy_2d", "detector_2d")


def markdown(rows: dict[str, dict], preset: str) -> str:
    """The results table: one row per variant, the three held-out sets side by side."""
    lines = [
        f"# Training on detector failures, body `{preset}` preset (cpu)",
        "",
        "`python -m benchmarks.detector_robustness`: the same preset, seed, schedule and wide "
        "pose prior; only the training set's detector failures and the visibility channel "
        "change. PA-MPJPE / MPVPE in millimetres on 256 held-out samples (unseen poses, shapes "
        "and cameras) with ground-truth, noisy (PoseFix-style) and detector-like 2D (PoseFix "
        "plus missing joints and limbs, left/right swaps and offsets).",
        "",
        "| variant | ground-truth 2D | noisy 2D | detector-like 2D | training |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        cells = " | ".join(f"{row[s]['pa_mpjpe']:.1f} / {row[s]['mpvpe']:.1f}" for s in SETS)
        lines.append(f"| {name} | {cells} | {row['train_s']:.0f} s |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Train and evaluate every variant; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--out", default=None, help="results file stem")
    parser.add_argument("--models", nargs="+", default=None, metavar="NAME=PATH",
                        help="evaluate these trained models instead of training")  # fmt: skip
    args = parser.parse_args(argv)
    models = {}
    for item in args.models or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not Path(path).is_file():
            parser.error(f"--models takes NAME=PATH with an existing file, got {item!r}")
        models[name] = Path(path)

    from meshgraph.models import Pose2Mesh
    from meshgraph.training.evaluate import evaluate_held_out
    from meshgraph.training.pipeline import build_body, preset, run

    rows: dict[str, dict] = {}
    body = None
    with tempfile.TemporaryDirectory() as tmp:
        for name in models or args.variants:
            spec = VARIANTS.get(name, {})
            cfg = preset("body", args.preset, **spec)
            train_s = float("nan")
            if models:
                path = models[name]
                results = path.parent / "results.json"
                if results.is_file():
                    train_s = float(json.loads(results.read_text()).get("train_seconds", train_s))
            else:
                print(f"training {name} ...", flush=True)
                start = time.perf_counter()
                run(cfg, Path(tmp) / name, progress=False)
                train_s, path = time.perf_counter() - start, Path(tmp) / name / "model.pt"
            body = body or build_body(cfg)
            try:  # shipped weights (float16 storage) load like any model file
                model = Pose2Mesh.load(path)
            except ValueError as err:
                parser.error(str(err))
            row: dict = {"train_s": train_s, **evaluate_held_out(model, body, args.samples)}
            rows[name] = row
            print(f"  {json.dumps({s: row[s] for s in SETS})}", flush=True)
    stem = Path(args.out) if args.out else (
        Path(__file__).parent / "results" / f"detector-{args.preset}-cpu"
    )  # fmt: skip
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    text = markdown(rows, args.preset)
    stem.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
