"""What each part of the detector-like 2D noise costs a body model (issue 13): an error budget.

Usage::

    python -m benchmarks.error_budget [body | MODEL.pt] [--samples 256] [--seed 0]
        [--threads 1] [--out benchmarks/results]

The same held-out bodies, poses and cameras as ``meshgraph evaluate --seed S`` (its
ground-truth set), given to the model with one part of the noise of its noisy and detector-like
sets added at a time. The noise is drawn here, from its own counter-based streams, so every
row after the first PoseFix row shares that row's PoseFix draws, and the detector rows share
their draws too: the rows differ only in what is switched on.

* ``exact 2D, told exact`` and ``exact 2D, told detected``: the ground truth, with the
  exactness flag set and not (for a model trained with ``--exactness-input``);
* ``PoseFix, good offsets only``: every joint moved by PoseFix's "good" offset only (up to the
  distance at which its COCO OKS is 0.85; :func:`~meshgraph.data.noise.posefix_noise` with
  ``scale=0``): every keypoint counts as a good detection by COCO's measure;
* ``PoseFix``: with its jitter, misses and inversions (the noisy set's noise);
* ``PoseFix, far joints marked missing (oracle)``: the joints PoseFix moved at least the OKS
  0.5 distance (its misses, most inversions) flagged missing, as a perfect outlier detector
  would: what telling the network the outliers could gain; ``PoseFix, far and jittered joints
  marked missing (oracle)``: every joint beyond its OKS 0.85 distance flagged missing (the
  jittered ones as well);
* ``+ detector offsets``, ``+ missing joints and limbs``, ``+ left/right swaps``: the
  :class:`~meshgraph.data.noise.DetectorNoise` of the detector-like set, switched on in three
  steps (the last row is that set's noise model).

Each row reports the 2D input's mean error (in % of the true keypoints' height, over the
joints given), MPJPE, PA-MPJPE, MPVPE, PA-MPVPE and N-MPVPE (mm,
:func:`~meshgraph.training.evaluate`; N-MPVPE, :func:`~meshgraph.metrics.n_mpvpe`: the MPVPE
once each mesh takes its least-squares scale, what remains with the body's size known).
Writes ``error-budget-cpu.{json,md}`` to ``--out``.
"""

from __future__ import annotations

import argparse
import math
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import restores_torch_threads, write_results
from benchmarks.pose2mesh_errors import _input_error
from meshgraph.bodies.joint_sets import JointSet
from meshgraph.data.noise import (
    COCO_SIGMAS,
    DERIVED_JOINTS,
    DetectorNoise,
    default_detector_noise,
    detector_noise,
    oks_distance,
    person_area,
    posefix_joints,
    posefix_noise,
)
from meshgraph.data.random import CounterRandom
from meshgraph.geometry import normalize_keypoints
from meshgraph.training.evaluate import HELD_OUT_SEED, evaluate

#: Noise streams of this benchmark (not the datasets' own).
_POSEFIX_STREAM, _DETECTOR_STREAM = 7_001, 7_002

#: The rows: (label, exact flag, PoseFix scale or None, the OKS beyond which an oracle flags
#: joints missing or None, detector fields or None). Detector fields: ``"offsets"``,
#: ``"drops"`` (offsets and missing joints), ``"all"``.
ROWS: tuple[tuple[str, bool, float | None, float | None, str | None], ...] = (
    ("exact 2D, told exact", True, None, None, None),
    ("exact 2D, told detected", False, None, None, None),
    ("PoseFix, good offsets only", False, 0.0, None, None),
    ("PoseFix", False, 1.0, None, None),
    ("PoseFix, far joints marked missing (oracle)", False, 1.0, 0.5, None),
    ("PoseFix, far and jittered joints marked missing (oracle)", False, 1.0, 0.85, None),
    ("PoseFix + detector offsets", False, 1.0, None, "offsets"),
    ("PoseFix + offsets + missing joints and limbs", False, 1.0, None, "drops"),
    ("PoseFix + offsets + missing + left/right swaps (detector-like)", False, 1.0, None, "all"),
)


def _detector(joint_set: str, part: str) -> DetectorNoise:
    """The detector-like set's failures with only the named part switched on."""
    full = default_detector_noise(joint_set)
    if part == "offsets":
        return replace(full, drop=0.0, drop_limb=0.0, swap_limb=0.0, swap_all=0.0)
    if part == "drops":
        return replace(full, swap_limb=0.0, swap_all=0.0)
    if part == "all":
        return full
    raise ValueError(f"unknown detector part {part!r}")


def far_joints(
    noisy: torch.Tensor, truth: torch.Tensor, joint_set: JointSet, oks: float = 0.5
) -> torch.Tensor:
    """``(B, J)``: the joints at least the COCO OKS-``oks`` distance from their true place.

    The distance uses :func:`~meshgraph.data.noise.posefix_noise`'s person area
    (:func:`~meshgraph.data.noise.person_area`) and each joint's OKS sigma
    (:func:`~meshgraph.data.noise.posefix_joints`: Body-29's extra joints take their anchor's).
    The joints derived from two others (:data:`~meshgraph.data.noise.DERIVED_JOINTS`: COCO-19's
    pelvis and neck) count as far when either source is.
    """
    own, like = posefix_joints(joint_set, truth.shape[1])
    area = person_area(truth).view(-1, 1)
    sigma = torch.tensor([COCO_SIGMAS[i] for i in like], dtype=truth.dtype).view(1, -1)
    limit = oks_distance(area, sigma, oks)
    far = torch.zeros(truth.shape[:2], dtype=torch.bool)
    far[:, own] = (noisy[:, own] - truth[:, own]).norm(dim=-1) >= limit
    for joint, (a, b) in DERIVED_JOINTS.get(joint_set.name, ()):
        if joint < truth.shape[1]:
            far[:, joint] = far[:, a] | far[:, b]
    return far


class BudgetInputs:
    """A held-out set whose 2D input is the ground truth with the named noise parts added.

    Follows the dataset protocol (:mod:`meshgraph.data.protocol`) by delegating the geometry
    to ``base`` (a ground-truth :class:`~meshgraph.data.SyntheticPoseMeshDataset`).
    """

    def __init__(
        self,
        base: Any,
        *,
        exact: bool,
        posefix: float | None,
        oracle: float | None,
        detector: DetectorNoise | None,
        seed: int,
    ) -> None:
        self.base, self.exact, self.posefix = base, exact, posefix
        self.oracle, self.detector, self.seed = oracle, detector, seed
        self.joint_set = base.joint_set
        self.isotropic_input = base.isotropic_input

    def __len__(self) -> int:
        return len(self.base)

    def generate(self, indices: list[int]) -> dict[str, torch.Tensor]:
        """The ground-truth geometry (meshes) of ``indices``."""
        return self.base.generate(indices)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        batch = self.base.__getitems__(indices)
        truth = batch["keypoints_2d_gt"].double()
        pixels, visible = truth.clone(), batch["visible"].clone()
        if self.posefix is not None:
            stream = CounterRandom(self.seed, indices, _POSEFIX_STREAM)
            pixels = posefix_noise(pixels, stream, self.joint_set, scale=self.posefix)
        if self.oracle is not None:
            visible &= ~far_joints(pixels, truth, self.joint_set, oks=self.oracle)
        if self.detector is not None:
            stream = CounterRandom(self.seed, indices, _DETECTOR_STREAM)
            pixels, visible = detector_noise(pixels, stream, self.joint_set, self.detector)
        normalised, box = normalize_keypoints(pixels, visible, isotropic=self.isotropic_input)
        return {**batch, "keypoints_2d": normalised.float(), "visible": visible,
                "keypoints_2d_pixels": pixels.float(), "box": box.float(),
                "exact": torch.full((len(indices),), self.exact)}  # fmt: skip


def input_error(data: BudgetInputs, n: int) -> tuple[float, float]:
    """The 2D input's mean error over the joints given (% of the true keypoints' height,
    :func:`benchmarks.pose2mesh_errors._input_error`) and the share of joints given."""
    errors = torch.cat([_input_error(data.__getitems__(list(range(lo, min(lo + 128, n)))))
                        for lo in range(0, n, 128)])  # fmt: skip
    given = ~torch.isnan(errors)
    return float(errors[given].mean()) if given.any() else math.nan, float(given.double().mean())


def _markdown(rows: list[dict[str, Any]], options: dict[str, Any]) -> str:
    lines = [
        "# The detector-like error budget (cpu)",
        "",
        f"`python -m benchmarks.error_budget {options['model']} --samples {options['samples']} "
        f"--seed {options['seed']}` on {platform.machine()}, torch {torch.__version__}: the "
        f"{options['samples']} held-out samples of `meshgraph evaluate --seed {options['seed']}` "
        "(full mesh), with one part of the 2D noise added at a time (see the module doc of "
        "`benchmarks.error_budget`). Input error: mean distance of the given 2D joints from "
        "their true places, % of the true keypoints' height. N-MPVPE: the MPVPE once each "
        "mesh takes its least-squares scale (the body's size known). Millimetres.",
        "",
        "| 2D input | input error | given | MPJPE | PA-MPJPE | MPVPE | PA-MPVPE | N-MPVPE |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r["metrics"]
        lines.append(
            f"| {r['label']} | {r['input_error']:.2f} % | {100 * r['given']:.1f} % | "
            f"{m['mpjpe']:.1f} | {m['pa_mpjpe']:.1f} | {m['mpvpe']:.1f} | {m['pa_mpvpe']:.1f} | "
            f"{m['n_mpvpe']:.1f} |"
        )
    return "\n".join(lines) + "\n"


@restores_torch_threads
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    from meshgraph.cli import _body_for
    from meshgraph.data import SyntheticPoseMeshDataset
    from meshgraph.models import Pose2Mesh

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?", default="body", help="body (the shipped one) or a file")
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--seed", type=int, default=0, help="the held-out sets' seed")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = p.parse_args(argv)
    if args.samples < 1:
        p.error("--samples must be positive")
    torch.set_num_threads(args.threads)
    if args.model == "body" and not Path(args.model).is_file():
        model = Pose2Mesh.pretrained("body")
    else:
        model = Pose2Mesh.load(args.model)
    if model.part != "body":
        p.error("the error budget is for body models (PoseFix's noise is COCO's)")
    body = _body_for(model.config, None)
    base = SyntheticPoseMeshDataset(
        body, args.samples, joint_set=model.joint_set.name, seed=HELD_OUT_SEED + args.seed,
        noise="none", isotropic_input=model.config.isotropic_input, progress=False,
    )  # fmt: skip
    rows = []
    for label, exact, posefix, oracle, part in ROWS:
        det = None if part is None else _detector(model.joint_set.name, part)
        data = BudgetInputs(base, exact=exact, posefix=posefix, oracle=oracle, detector=det,
                            seed=HELD_OUT_SEED + args.seed)  # fmt: skip
        error, given = input_error(data, args.samples)
        metrics = evaluate(model, data, size_free=True)  # type: ignore[arg-type]
        row = {"label": label, "input_error": error, "given": given, "metrics": metrics}
        rows.append(row)
        print(label, {k: round(v, 1) for k, v in metrics.items() if math.isfinite(v)}, flush=True)
    options = {"model": args.model, "samples": args.samples, "seed": args.seed}
    write_results(Path(args.out), "error-budget-cpu", {"options": options, "rows": rows},
                  _markdown(rows, options))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
