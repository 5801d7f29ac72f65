"""Pose priors of the training set against held-out poses inside and beyond the canonical mix.

Usage::

    python -m benchmarks.pose_prior                       # default, blend, wide (quick preset)
    python -m benchmarks.pose_prior --variants default wide --preset quick
    python -m benchmarks.pose_prior --models long-wide=outputs/body_long_wide/model.pt

Each variant trains the body preset with another pose sampler for its training set
(``RunConfig.poses``): ``default`` (perturbations of the canonical poses), ``blend`` (half of
the poses between two canonical poses), ``wide`` (a third between two canonical poses, a third
uniform within the joint limits). Every model is then evaluated, with ground-truth 2D, on the
same held-out sets: ``canonical`` (the default sampler) and ``beyond`` (poses uniform within the
joint limits), 256 samples each, unseen shapes and cameras. Results go to
``benchmarks/results/pose-prior-<preset>-cpu.{json,md}``. ``--models NAME=PATH`` evaluates
trained body models (Anny's 1,229-vertex topology, COCO input) on the same sets instead of
training (``--out`` then names the results).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "default": {},
    "blend": {"blend": 0.5},
    "wide": {"blend": 1 / 3, "uniform": 1 / 3},  # a third each, and a third canonical
}
HELD_OUT = {"canonical": {}, "beyond": {"uniform": 1.0}}
KEYS = ("mpjpe", "pa_mpjpe", "posenet_mpjpe", "mpvpe", "pa_mpvpe")


def markdown(rows: dict[str, dict], preset: str) -> str:
    """The results table: one row per training prior, both held-out sets side by side."""
    lines = [
        f"# Pose priors of the training set, body `{preset}` preset (cpu)",
        "",
        "`python -m benchmarks.pose_prior`: the same preset, seed and schedule; only the "
        "training set's pose sampler changes. Millimetres, ground-truth 2D, 256 held-out "
        "samples per set (unseen shapes and cameras): `canonical` poses from the default "
        "sampler, `beyond` poses uniform within the joint limits.",
        "",
        "| training poses | canonical PA-MPJPE | canonical MPVPE | beyond PA-MPJPE "
        "| beyond MPVPE | beyond PoseNet MPJPE | training |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        c, b = row["canonical"], row["beyond"]
        lines.append(
            f"| {name} {json.dumps({k: round(v, 2) for k, v in row['poses'].items()})} | "
            f"{c['pa_mpjpe']:.1f} | {c['mpvpe']:.1f} | "
            f"{b['pa_mpjpe']:.1f} | {b['mpvpe']:.1f} | {b['posenet_mpjpe']:.1f} | "
            f"{row['train_s']:.0f} s |"
        )
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

    import torch

    from meshgraph.data import SyntheticPoseMeshDataset, default_pose_sampler
    from meshgraph.models import Pose2Mesh
    from meshgraph.training.evaluate import evaluate
    from meshgraph.training.pipeline import HELD_OUT_SEED, build_body, preset, run

    rows: dict[str, dict] = {}
    body = None
    with tempfile.TemporaryDirectory() as tmp:
        for name in models or args.variants:
            cfg = preset("body", args.preset, poses=VARIANTS.get(name, {}))
            if models:  # a trained model: its own record of the training
                path, train_s = models[name], float("nan")
                results = path.parent / "results.json"
                poses: dict = {}
                if results.is_file():
                    record = json.loads(results.read_text())
                    train_s = float(record.get("train_seconds", train_s))
                    poses = record.get("run", {}).get("poses", {})
            else:
                print(f"training {name} ...", flush=True)
                start = time.perf_counter()
                run(cfg, Path(tmp) / name, progress=False)
                train_s, path = time.perf_counter() - start, Path(tmp) / name / "model.pt"
                poses = VARIANTS[name]
            body = body or build_body(cfg)
            model = Pose2Mesh.load(path)
            row: dict = {"poses": poses, "train_s": train_s}
            for held, options in HELD_OUT.items():
                sampler = default_pose_sampler(body, **options)
                test = SyntheticPoseMeshDataset(body, args.samples, joint_set="coco",
                                                seed=HELD_OUT_SEED, noise="none",
                                                pose_sampler=sampler)  # fmt: skip
                with torch.no_grad():
                    row[held] = evaluate(model, test)
            rows[name] = row
            print(f"  {json.dumps({k: row[k] for k in HELD_OUT}, indent=None)}", flush=True)
    stem = Path(args.out) if args.out else (
        Path(__file__).parent / "results" / f"pose-prior-{args.preset}-cpu"
    )  # fmt: skip
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")
    text = markdown(rows, args.preset)
    stem.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
