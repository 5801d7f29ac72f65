"""Where mediapipe BlazePose puts each joint, against Anny's joint regressor, on rendered photos.

Usage::

    python -m benchmarks.detector_offsets                 # 96 photos, seed 7
    python -m benchmarks.detector_offsets --photos 48 --seed 11

Photos are :func:`~meshgraph.data.photos.synthetic_photos` of Anny bodies (the full mesh, its
Body-29 joints from Anny's regressor), with a seed other than ``benchmarks.image_path``'s, so
the offsets are measured on photos that the image-path benchmark never shows. Each photo goes
through mediapipe 0.10.21 as it is (``KeypointDetector(calibration=None)``). For every joint,
the detected point's offset from the true one is split into the component along the true torso
(mid-hips to mid-shoulders, positive towards the shoulders) and the component outward (from
the joint's true left/right mate towards it), both in true torso lengths. Photos where the
detector lost the person (the median joint off by more than half a torso) are left out and
counted.

Reported per joint: the mean and its standard error of both components, and how many photos
gave them; for left/right pairs also the average of the two sides, which is what
:data:`meshgraph.keypoint_formats.BLAZEPOSE_OFFSETS` holds (rounded to 0.001) for the joints
it corrects; and how far the points scatter once those offsets are taken off (a robust
standard deviation, in the box's larger side), against which
:data:`meshgraph.data.noise.DETECTOR_OFFSET_SCALE` was set. Results go to
``benchmarks/results/detector-offsets-cpu.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import restores_torch_threads, write_results
from meshgraph.keypoint_formats import _mate

SEED = 7  # not benchmarks.image_path's seed (2026)
LOST = 0.5  # a photo whose median joint error exceeds this many torso lengths is left out


def offsets_in_torso_frame(
    detected: np.ndarray, truth: np.ndarray, names: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Per joint, the detected point's offset from the true one: ``(up, out, median)``.

    ``up``: along the true torso (mid-hips to mid-shoulders); ``out``: along the unit vector
    from the joint's true left/right mate to the true joint (0 for joints without a mate);
    both in true torso lengths. ``median``: the median joint distance, in torso lengths.
    """
    at = {n: i for i, n in enumerate(names)}
    hips = 0.5 * (truth[at["left_hip"]] + truth[at["right_hip"]])
    shoulders = 0.5 * (truth[at["left_shoulder"]] + truth[at["right_shoulder"]])
    length = float(np.linalg.norm(shoulders - hips))
    up = (shoulders - hips) / length
    err = (detected[:, :2] - truth) / length
    out = np.zeros(len(names))
    for j, name in enumerate(names):
        m = at[_mate(name)]
        side = truth[j] - truth[m]
        gap = np.linalg.norm(side)
        if m != j and gap > 1e-9:
            out[j] = err[j] @ (side / gap)
    return err @ up, out, float(np.median(np.linalg.norm(err, axis=1)))


def measure(count: int, seed: int, threads: int) -> dict:
    """Render ``count`` photos, detect, and measure every joint's offset."""
    from meshgraph.bodies.anny_model import AnnyModel
    from meshgraph.data.photos import synthetic_photos
    from meshgraph.detect import KeypointDetector, NoDetectionError
    from meshgraph.keypoint_formats import BLAZEPOSE_OFFSETS, KEYPOINT_FORMATS, remove_joint_offsets

    torch.set_num_threads(threads)
    names = KEYPOINT_FORMATS["body29"]
    full = AnnyModel("body")
    ups, outs, lost, missed, residuals = [], [], [], [], []
    with KeypointDetector("body", joint_set="body29", calibration=None) as detector:
        for start in range(0, count, 16):
            chunk = range(start, min(count, start + 16))
            for photo in synthetic_photos(full, full, chunk, seed=seed, joint_set="body29"):
                try:
                    found = detector(photo.image)
                except NoDetectionError:
                    missed.append(photo.index)
                    continue
                up, out, median = offsets_in_torso_frame(found.keypoints, photo.keypoints_2d, names)
                if median > LOST:
                    lost.append(photo.index)
                    continue
                ups.append(up)
                outs.append(out)
                moved = remove_joint_offsets(found.keypoints, BLAZEPOSE_OFFSETS["anny"])
                box = np.ptp(photo.keypoints_2d, axis=0).max()
                residuals.append((moved[:, :2] - photo.keypoints_2d) / box)
            print(f"{min(count, start + 16)} / {count} photos", flush=True)
    up, out, res = np.array(ups), np.array(outs), np.array(residuals)
    # robust standard deviation per axis (1.4826 median absolute deviations), x and y averaged
    spread = 1.4826 * np.median(np.abs(res - np.median(res, 0)), 0).mean(-1)
    n = len(up)
    joints = {}
    for j, name in enumerate(names):
        joints[name] = {
            "spread": float(spread[j]),
            "up": float(up[:, j].mean()),
            "up_se": float(up[:, j].std(ddof=1) / np.sqrt(n)),
            "out": float(out[:, j].mean()),
            "out_se": float(out[:, j].std(ddof=1) / np.sqrt(n)),
        }
    for name, row in joints.items():
        other = joints[_mate(name)]
        row["up_both_sides"] = 0.5 * (row["up"] + other["up"])
        row["out_both_sides"] = 0.5 * (row["out"] + other["out"])
    return {"photos": count, "used": n, "missed": missed, "lost": lost, "joints": joints}


def markdown(results: dict) -> str:
    """The results as a Markdown table."""
    from meshgraph.keypoint_formats import BLAZEPOSE_OFFSETS

    shipped = BLAZEPOSE_OFFSETS["anny"]
    a = results["args"]
    lines = [
        "# mediapipe BlazePose's joints against Anny's (cpu)",
        "",
        f"`python -m benchmarks.detector_offsets --photos {a['photos']} --seed {a['seed']}` on "
        f"{results['machine']}, mediapipe {results['mediapipe']}: shaded renders of Anny bodies "
        f"(`meshgraph.data.photos`, 512 x 512 pixels). {results['used']} photos measured; "
        f"{len(results['missed'])} without a detection, {len(results['lost'])} where the "
        "detector lost the person. Offsets of the detected joint from Anny's, in torso lengths "
        "(mid-hips to mid-shoulders): `up` along the torso towards the shoulders, `out` away "
        "from the joint's left/right mate; mean ± standard error, then the two sides' average. "
        "The column `removed` is what `BLAZEPOSE_OFFSETS['anny']` takes off; `spread` is how far "
        "the points scatter once it is taken off (robust standard deviation per axis: 1.4826 "
        "median absolute deviations, in % of the box's larger side; `DetectorNoise.offset` is "
        "1 %, times `DETECTOR_OFFSET_SCALE`).",
        "",
        "| joint | up | out | up (both sides) | out (both sides) | removed (up, out) | spread |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in results["joints"].items():
        removed = shipped.get(name)
        cell = f"{removed[0]:+.3f}, {removed[1]:+.3f}" if removed else ""
        lines.append(
            f"| {name} | {r['up']:+.3f} ± {r['up_se']:.3f} | {r['out']:+.3f} ± "
            f"{r['out_se']:.3f} | {r['up_both_sides']:+.3f} | {r['out_both_sides']:+.3f} | "
            f"{cell} | {100 * r['spread']:.1f} % |"
        )
    return "\n".join(lines) + "\n"


@restores_torch_threads
def main(argv: list[str] | None = None) -> int:
    """Run the measurement and write ``benchmarks/results/detector-offsets-cpu.{json,md}``."""
    import mediapipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=96)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    if args.seed == 2026:
        parser.error("seed 2026 is benchmarks.image_path's: measure on other photos")
    results = {
        "args": vars(args) | {"out": str(args.out)},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "mediapipe": mediapipe.__version__,
        **measure(args.photos, args.seed, args.threads),
    }
    write_results(args.out, "detector-offsets-cpu", results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
