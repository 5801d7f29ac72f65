"""Render the example photos of ``examples/data`` (posed Anny body and hand, CC0 assets).

Writes, for KIND in body and hand:

* ``photo_KIND.png``: a shaded render of a held-out synthetic sample (not a training sample:
  another seed), which mediapipe recognises;
* ``photo_KIND_truth.npz``: its ground truth on the mesh the shipped model answers on (vertices,
  joints, exact 2D keypoints of the shipped model's joint set), camera axes, metres;
* ``photo_KIND_keypoints.json``: mediapipe's keypoints for it (the demo's fallback when the
  ``detect`` extra is not installed), with the detector's version.

Run ``python examples/make_photos.py`` (needs the body and detect extras).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from meshgraph.bodies.anny_model import AnnyModel
from meshgraph.data.photos import synthetic_photos
from meshgraph.detect import KeypointDetector
from meshgraph.models.pretrained import PRETRAINED

SEED = 2026


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--body-index", type=int, default=2)
    parser.add_argument("--hand-index", type=int, default=1)
    args = parser.parse_args()
    import mediapipe

    bodies = {
        "body": (AnnyModel("body"), AnnyModel("body")),
        "hand": (AnnyModel("hand.R"), AnnyModel("hand.R")),
    }
    for kind, (body, full) in bodies.items():
        index = args.body_index if kind == "body" else args.hand_index
        joint_set = "hand" if kind == "hand" else PRETRAINED["body"]["joint_set"]
        photo = synthetic_photos(body, full, [index], seed=SEED, joint_set=joint_set)[0]
        Image.fromarray(photo.image).save(args.out / f"photo_{kind}.png", optimize=True)
        np.savez_compressed(args.out / f"photo_{kind}_truth.npz", vertices=photo.vertices,
                            joints_3d=photo.joints_3d, mesh_joints_3d=photo.mesh_joints_3d,
                            keypoints_2d=photo.keypoints_2d)  # fmt: skip
        # bodies: BlazePose's hips, shoulders, eyes and ears moved onto Anny's joints
        body_set = {"joint_set": joint_set, "calibration": "anny"} if kind == "body" else {}
        with KeypointDetector(kind, **body_set) as detector:
            found = detector(photo.image)
        moved = " moved onto Anny's joints (BLAZEPOSE_OFFSETS)" if kind == "body" else ""
        record = {
            "joint_set": joint_set,
            "note": f"mediapipe {mediapipe.__version__} keypoints{moved} of photo_{kind}.png "
            f"(Anny {body.name}, synthetic_photos seed {SEED}, sample {index})",
            "side": found.side,
            "keypoints": np.round(found.keypoints, 2).tolist(),
        }
        (args.out / f"photo_{kind}_keypoints.json").write_text(json.dumps(record, indent=1) + "\n")
        err = np.linalg.norm(found.keypoints[:, :2] - photo.keypoints_2d, axis=1)
        print(f"{kind}: detector error median {np.median(err):.1f} px, max {err.max():.1f} px")


if __name__ == "__main__":
    main()
