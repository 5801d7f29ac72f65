"""Same seeds, same results: this tree against an earlier commit, bit for bit.

Usage::

    python -m benchmarks.same_as_commit --base 659a354

A refactoring must not change what users get. The base commit is exported (``git archive``)
to a temporary folder; then each tree runs, in a fresh interpreter with ``PYTHONPATH=<tree>``
and one thread, the same fingerprint script on the public API that both trees share:

* the first batch of synthetic samples (body and right hand, clean and noisy 2D);
* quick-preset training for a few steps (``meshgraph train --max-steps``), hand and body,
  with the detector noise (so that every loss and the visibility input run);
* the shipped models' predictions on fixed keypoints;
* an icosphere autoencoder, and MeshNet in both variants and layouts, trained for a few
  steps.

Each item is a SHA-256 of its tensors' bytes. The table
(``benchmarks/results/same-as-<base>.{json,md}``) lists both hashes and whether they agree.
About 3 minutes on 2 CPU cores. Exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.speed_vs_commit import ROOT, _export, git_head

# Runs in a fresh interpreter with PYTHONPATH = the tree; prints one JSON line of hashes.
_WORKER = r"""
import hashlib, json, subprocess, sys, tempfile, warnings
from pathlib import Path
warnings.filterwarnings("ignore")
import numpy as np
import torch
tree, steps = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
import meshgraph
assert meshgraph.__file__.startswith(tree), (meshgraph.__file__, tree)

def digest(*tensors):
    h = hashlib.sha256()
    for t in tensors:
        t = torch.as_tensor(t).detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]

out = {}
from meshgraph.bodies import AnnyModel
from meshgraph.data import SyntheticPoseMeshDataset, collate
for kind, joint_set in (("body", "coco"), ("hand.R", "hand")):
    body = AnnyModel(kind, topology="notoes_collapse10pc" if kind == "body" else None)
    data = SyntheticPoseMeshDataset(body, length=64, joint_set=joint_set, seed=3)
    batch = collate(data.__getitems__(list(range(16))))
    out[f"samples {kind}"] = digest(*(batch[k] for k in sorted(batch)))

for kind in ("hand", "body"):
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "meshgraph.cli", "train", "--kind", kind, "--preset",
               "quick", "--max-steps", str(steps), "--threads", "1", "--detector",
               "--no-progress", "--test-samples", "16", "--out", d]
        subprocess.run(cmd, check=True, capture_output=True, cwd=tree)
        ckpt = torch.load(Path(d) / "model.pt", weights_only=True)
        state = ckpt["state_dict"]
        out[f"train {kind} ({steps} steps)"] = digest(*(state[k] for k in sorted(state)))

from meshgraph.models import Pose2Mesh
g = torch.Generator().manual_seed(0)
for name, joints in (("body", 19), ("hand", 21)):
    model = Pose2Mesh.pretrained(name).eval()
    kp = 200 + 100 * torch.rand(4, joints, 2, generator=g)
    pred = model.predict(kp)
    out[f"predict {name}"] = digest(pred.vertices, pred.joints_3d, pred.camera)

from meshgraph import MeshHierarchy, MeshTopology
from meshgraph.generators import icosphere_vertices_faces
from meshgraph.models import MeshAutoencoder
verts, faces = icosphere_vertices_faces(3)
torch.manual_seed(0)
h = MeshHierarchy.build(MeshTopology(faces), 4)
model = MeshAutoencoder(h, channels=(8, 16, 16), latent=8)
data = torch.as_tensor(verts, dtype=torch.float32) * (1 + 0.3 * torch.rand(32, 1, 3))
model.fit(data, 20, batch_size=8)
state = model.state_dict()
out["autoencoder (20 steps)"] = digest(*(state[k] for k in sorted(state)))

from meshgraph.models import MeshNet
for layout in ("compact", "binary_tree"):
    for variant in ("coarse_to_fine", "direct"):
        torch.manual_seed(0)
        h = MeshHierarchy.build(MeshTopology(faces), 4, layout=layout)
        net = MeshNet("coco", h, variant=variant, coarse_channels=8,
                      decoder_channels=(8, 8, 8, 8), canonical_frame=True)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        kp, j3, target = torch.randn(4, 19, 2), torch.randn(4, 19, 3), torch.randn(4, len(verts), 3)
        for _ in range(3):
            loss = (net(kp, j3) - target).abs().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        state = net.state_dict()
        out[f"meshnet {variant} {layout} (3 steps)"] = digest(*(state[k] for k in sorted(state)))
print(json.dumps(out))
"""


def fingerprint(tree: Path, steps: int) -> dict[str, str]:
    """The hashes of ``tree`` (a fresh interpreter, ``PYTHONPATH=tree``, one thread)."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    args = [sys.executable, "-c", _WORKER, str(tree), str(steps)]
    proc = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the fingerprint failed in {tree}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Compare this tree with ``--base``; write the table; exit 1 on any difference."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", required=True, help="the commit to compare with")
    p.add_argument("--steps", type=int, default=8, help="training steps per run")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = fingerprint(_export(args.base, Path(tmp)), args.steps)
    new = fingerprint(ROOT, args.steps)
    rows = [{"item": k, "base": base.get(k), "new": new.get(k), "same": base.get(k) == new.get(k)}
            for k in sorted(set(base) | set(new))]  # fmt: skip
    head = git_head()
    same = all(r["same"] for r in rows)
    record = {"base": args.base, "new": head, "rows": rows, "all_same": same}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"same-as-{args.base}"
    (out / f"{stem}.json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [
        f"Same seeds, same results: {args.base} against {head} "
        f"(`python -m benchmarks.same_as_commit --base {args.base}`; SHA-256 of the tensors, "
        "first 16 hex digits).",
        "",
        "| item | base | this tree | same |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['item']} | `{r['base']}` | `{r['new']}` | {'yes' if r['same'] else '**no**'} |"
              for r in rows]  # fmt: skip
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if record["all_same"] else 1


if __name__ == "__main__":
    sys.exit(main())
