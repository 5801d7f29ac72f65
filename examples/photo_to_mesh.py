"""From a photo to a body mesh and a hand mesh, with the models that ship with meshgraph.

``make demo`` runs this. For each of ``examples/data/photo_body.png`` and ``photo_hand.png``
(renders of held-out Anny bodies, CC0 assets, made by ``examples/make_photos.py``):

1. mediapipe finds the 2D keypoints, offline (the ``detect`` extra); without it the stored
   keypoints ``photo_KIND_keypoints.json`` are used, and the script says so;
2. the shipped Pose2Mesh model predicts the mesh;
3. the mesh, an overlay on the photo and a JSON record are written to ``--out``, and the
   errors against the photo's known mesh are printed.

Run: ``python examples/photo_to_mesh.py [--out outputs/photo_demo]``; or with your own photo,
``meshgraph predict --image PHOTO`` (``--hand`` for a hand).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from meshgraph.detect import KeypointDetector, predict_image, save_image_prediction
from meshgraph.metrics import mesh_errors
from meshgraph.models import Pose2Mesh

DATA = Path(__file__).parent / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/photo_demo"))
    args = parser.parse_args()
    torch.manual_seed(0)
    for kind in ("body", "hand"):
        image = DATA / f"photo_{kind}.png"
        model = Pose2Mesh.pretrained(kind)
        start = time.perf_counter()
        try:
            with KeypointDetector.for_model(model) as detector:
                result = predict_image(model, image, detector=detector)
            source = "mediapipe"
        except ImportError as err:
            stored = DATA / f"photo_{kind}_keypoints.json"
            print(f"{kind}: no detector ({str(err).split('. ')[-1]}); using the stored "
                  f"keypoints {stored} instead")  # fmt: skip
            kp = np.asarray(json.loads(stored.read_text())["keypoints"], dtype=np.float64)
            result = predict_image(model, image, keypoints=kp)
            source = "stored keypoints"
        seconds = time.perf_counter() - start
        files = save_image_prediction(result, args.out, stem=f"photo_{kind}")
        truth = np.load(DATA / f"photo_{kind}_truth.npz", allow_pickle=False)
        pred = result.prediction
        scores = mesh_errors(pred.vertices, pred.mesh_joints_3d,
                             torch.from_numpy(truth["vertices"]).float(),
                             torch.from_numpy(truth["mesh_joints_3d"]).float(),
                             root=model.mesh_joint_set.root)  # fmt: skip
        text = ", ".join(f"{k} {v:.1f} mm" for k, v in scores.items())
        print(f"{kind}: {image.name} -> {model.num_vertices} vertices in {seconds:.2f} s "
              f"({source}); against the known mesh: {text}")  # fmt: skip
        for name, path in files.items():
            print(f"  {name:<9} {path}")


if __name__ == "__main__":
    main()
