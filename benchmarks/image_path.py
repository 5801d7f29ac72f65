"""The photo-to-mesh path on rendered photos: the detector's 2D error, mesh errors, time.

Usage::

    python -m benchmarks.image_path                      # 24 bodies and 24 hands, shipped models
    python -m benchmarks.image_path --bodies 48 --hands 48 --threads 2

Photos are :func:`~meshgraph.data.photos.synthetic_photos` of held-out Anny bodies (drawn on
the full mesh, ground truth on the shipped model's topology) and right hands, with the seed of
``examples/make_photos.py`` (never a training seed). For each photo: mediapipe's keypoints
(``--detector``; needs the ``detect`` extra), then the shipped model. Reported per kind:

* how many photos the detector found a person (a hand) in;
* the detector's 2D error: median and mean over joints and photos of the pixel distance to the
  exact keypoints, also as a percentage of the box height (the keypoints' vertical extent);
* MPJPE, PA-MPJPE, MPVPE and PA-MPVPE (mm) of the meshes predicted from the detector's
  keypoints (moved onto Anny's joints, as :meth:`KeypointDetector.for_model` does) and, on the
  same photos, for bodies from BlazePose's own joints (``calibration=None``) and from the exact
  keypoints (a model with ``config.exactness_input`` is told they are exact);
* the time per image on this machine: reading the PNG, detecting, predicting (one image at a
  time, the model and detector loaded once).

Results go to ``benchmarks/results/image-path-cpu.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import restores_torch_threads, write_results

SEED = 2026  # examples/make_photos.py's seed: not a training seed


def _mean_table(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


def run_kind(kind: str, count: int, threads: int) -> dict:
    """Render ``count`` photos of ``kind``, detect, predict and measure."""
    from PIL import Image

    from meshgraph.bodies.anny_model import AnnyModel
    from meshgraph.data.photos import synthetic_photos
    from meshgraph.detect import KeypointDetector, NoDetectionError, load_image, predict_image
    from meshgraph.keypoint_formats import BLAZEPOSE_OFFSETS, remove_joint_offsets
    from meshgraph.metrics import mesh_errors
    from meshgraph.models import Pose2Mesh

    model = Pose2Mesh.pretrained(kind)
    topology = model.config.body.removeprefix("anny-")
    if kind == "body":
        body, full = AnnyModel("body", topology=topology), AnnyModel("body")
    else:
        body = full = AnnyModel("hand.R")
    js = model.joint_set.name
    photos = synthetic_photos(body, full, range(count), seed=SEED, joint_set=js)
    root = model.mesh_joint_set.root
    det_rows, raw_rows, exact_rows, errors, heights, seconds, missed = [], [], [], [], [], [], []
    torch.set_num_threads(threads)
    # for bodies also BlazePose's own joints, without the offsets that move them onto Anny's
    # (the shipped body's): mediapipe runs once per photo, and the moved keypoints are derived
    # from its own ones exactly as a calibrated KeypointDetector derives them
    if kind == "body":
        detector = KeypointDetector("body", joint_set=js, calibration=None)
        offsets = BLAZEPOSE_OFFSETS["anny"]
    else:
        detector, offsets = KeypointDetector.for_model(model), None
    with tempfile.TemporaryDirectory() as tmp, detector:
        for photo in photos:
            path = Path(tmp) / f"{photo.index}.png"
            Image.fromarray(photo.image).save(path)
            gt = (torch.from_numpy(photo.vertices).float(),
                  torch.from_numpy(photo.mesh_joints_3d).float())  # fmt: skip
            start = time.perf_counter()
            try:
                rgb = load_image(path)
                found = detector(rgb)
                calibrated = found
                if offsets:
                    moved = remove_joint_offsets(found.keypoints, offsets)
                    calibrated = replace(found, keypoints=moved)
                result = predict_image(model, rgb, keypoints=calibrated)
            except NoDetectionError:
                missed.append(photo.index)
                continue
            seconds.append(time.perf_counter() - start)
            pred = result.prediction
            det_rows.append(mesh_errors(pred.vertices[0], pred.mesh_joints_3d[0], *gt, root=root))
            if offsets:
                own = predict_image(model, rgb, keypoints=found).prediction
                raw_rows.append(mesh_errors(own.vertices[0], own.mesh_joints_3d[0], *gt,
                                            root=root))  # fmt: skip
            exact = model.predict(photo.keypoints_2d, exact=True)  # told so, if it reads it
            exact_rows.append(mesh_errors(exact.vertices[0], exact.mesh_joints_3d[0], *gt,
                                          root=root))  # fmt: skip
            dist = np.linalg.norm(result.detection.keypoints[:, :2] - photo.keypoints_2d, axis=1)
            errors.append(dist)
            heights.append(float(np.ptp(photo.keypoints_2d[:, 1])))
    err = np.stack(errors) if errors else np.zeros((0, 1))
    rel = err / np.asarray(heights)[:, None] if errors else err
    return {
        "photos": count,
        "detected": len(det_rows),
        "missed": missed,
        "vertices": model.num_vertices,
        "detector_px": {"median": float(np.median(err)), "mean": float(err.mean())},
        "detector_pct_height": {
            "median": float(100 * np.median(rel)),
            "mean": float(100 * rel.mean()),
        },
        "detected_2d": _mean_table(det_rows),
        "detected_2d_uncorrected": _mean_table(raw_rows),
        "exact_2d": _mean_table(exact_rows),
        "seconds_per_image": {"median": float(np.median(seconds)), "mean": float(np.mean(seconds))},
    }


def markdown(results: dict) -> str:
    """The results as a Markdown table."""
    lines = [
        "# The photo-to-mesh path on rendered photos (cpu)",
        "",
        f"`python -m benchmarks.image_path --bodies {results['args']['bodies']} --hands "
        f"{results['args']['hands']} --threads {results['args']['threads']}` on "
        f"{results['machine']}: shaded renders of held-out Anny bodies and right hands "
        f"(`meshgraph.data.photos`, seed {SEED}, 512 x 512 pixels), mediapipe "
        f"{results['mediapipe']} keypoints, the shipped models. Errors in millimetres against "
        "the known meshes, on the photos the detector found something in. The detector row "
        "moves BlazePose's hips, shoulders, eyes and ears onto Anny's joints "
        "(`BLAZEPOSE_OFFSETS`, measured on other photos by `benchmarks.detector_offsets`), as "
        "`KeypointDetector.for_model` does; the row below it leaves them where BlazePose puts "
        "them; the exact-2D row is the same model on the same photos' exact keypoints. "
        "Time per image: reading the PNG, "
        "detection and prediction, one image at a time.",
        "",
        "| kind | detected | detector 2D error (median, % of box height) | input | MPJPE | "
        "PA-MPJPE | MPVPE | PA-MPVPE | s / image |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in ("body", "hand"):
        r = results.get(kind)
        if not r:
            continue
        d, e = r["detected_2d"], r["exact_2d"]
        if not d:
            lines.append(f"| {kind} | 0 / {r['photos']} | | | | | | | |")
            continue
        px, pct = r["detector_px"]["median"], r["detector_pct_height"]["median"]
        head = f"| {kind} ({r['vertices']:,} vertices) | {r['detected']} / {r['photos']} | "
        head += f"{px:.1f} px ({pct:.1f} %) |"
        t = f"{r['seconds_per_image']['median']:.2f}"
        lines.append(f"{head} detector | {d['mpjpe']:.1f} | {d['pa_mpjpe']:.1f} | "
                     f"{d['mpvpe']:.1f} | {d['pa_mpvpe']:.1f} | {t} |")  # fmt: skip
        u = r.get("detected_2d_uncorrected")
        if u:
            own = f"{u['mpjpe']:.1f} | {u['pa_mpjpe']:.1f} | {u['mpvpe']:.1f} | {u['pa_mpvpe']:.1f}"
            lines.append(f"| | | | detector, BlazePose's own joints | {own} | |")
        lines.append(f"| | | | exact 2D | {e['mpjpe']:.1f} | {e['pa_mpjpe']:.1f} | "
                     f"{e['mpvpe']:.1f} | {e['pa_mpvpe']:.1f} | |")  # fmt: skip
    return "\n".join(lines) + "\n"


@restores_torch_threads
def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write ``benchmarks/results/image-path-cpu.{json,md}``."""
    import mediapipe

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=24)
    parser.add_argument("--hands", type=int, default=24)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    results: dict = {
        "args": vars(args) | {"out": str(args.out)},
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "mediapipe": mediapipe.__version__,
    }
    for kind, count in (("body", args.bodies), ("hand", args.hands)):
        if count > 0:
            results[kind] = run_kind(kind, count, args.threads)
            print(kind, json.dumps(results[kind]))
    write_results(args.out, "image-path-cpu", results, markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
