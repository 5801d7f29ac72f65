"""Show what the synthetic 2D-pose -> mesh generator makes.

Builds the Anny body (and, with ``--hand``, the right hand), draws a few samples of the
synthetic dataset and saves under ``outputs/synthetic_data/``:

* ``canonical.png``: the canonical poses without perturbation;
* ``samples.png``: random samples (front and side views, and the noisy 2D input);
* ``sample_000.obj`` ...: a few meshes;
* ``throughput.json``: samples per second at batch 64 on this machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from meshgraph.bodies import AnnyModel, get_joint_set
from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.data.poses import BODY_CANONICAL, HAND_CANONICAL, BodyPoseSampler, HandPoseSampler
from meshgraph.io import save_obj
from meshgraph.viz import plot_samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hand", action="store_true", help="the right hand instead of the body")
    parser.add_argument("--joint-set", default=None, help="coco (default body), h36m, hand")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("outputs/synthetic_data"))
    args = parser.parse_args(argv)

    model = AnnyModel("hand.R" if args.hand else "body")
    joint_set = args.joint_set or ("hand" if args.hand else "coco")
    ds = SyntheticPoseMeshDataset(model, 100_000, joint_set=joint_set, seed=args.seed)
    heads = model.bone_heads(model.run(torch.zeros(1, model.num_bones, 3)))[0]
    names = list(HAND_CANONICAL if args.hand else BODY_CANONICAL)
    poses = []
    for name in names:
        if args.hand:
            sampler = HandPoseSampler(
                model.bone_labels,
                heads,
                model.bone_parents,
                canonical=(name,),
                curl_std=0.0,
                spread_deg=0.0,
            )
        else:
            sampler = BodyPoseSampler(
                model.bone_labels,
                heads,
                model.bone_parents,
                canonical=(name,),
                noise_std=0.0,
                finger_curl=(0.3, 0.3),
            )
        poses.append(sampler.sample(1, torch.Generator().manual_seed(0)))
    with torch.no_grad():
        canonical = model(torch.cat(poses).float())
    args.out.mkdir(parents=True, exist_ok=True)
    plot_samples(canonical, args.out / "canonical.png", titles=names)

    batch = ds.__getitems__(range(args.samples))
    js = get_joint_set(joint_set)
    # world-frame view: undo the camera rotation of the root-relative camera-frame meshes
    world = batch["vertices"] @ batch["camera_rotation"]
    titles = [f"sample {i}" for i in range(args.samples)]
    plot_samples(world, args.out / "samples.png", titles=titles,
                 keypoints_2d=batch["keypoints_2d_pixels"], bones=list(js.bones))  # fmt: skip
    for i in range(min(3, args.samples)):
        save_obj(args.out / f"sample_{i:03d}.obj", batch["vertices"][i], model.faces)

    start = time.perf_counter()
    for k in range(3):
        ds.__getitems__(range(1000 + 64 * k, 1064 + 64 * k))
    rate = 3 * 64 / (time.perf_counter() - start)
    (args.out / "throughput.json").write_text(json.dumps({"samples_per_s_batch64": rate}, indent=2))
    print(f"{model.name}, {joint_set}: {rate:.0f} samples/s at batch 64; pictures in {args.out}")


if __name__ == "__main__":
    main()
