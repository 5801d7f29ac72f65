"""The Pose2Mesh ablation on the synthetic body benchmark, measured on this machine.

Usage::

    python -m benchmarks.pose2mesh_ablation [--posenet-epochs 16] [--epochs 12]
        [--samples-per-epoch 4096] [--threads 2] [--out outputs/ablation]

One PoseNet is trained first (stage 1) and shared: every variant starts stage 2 from the same
PoseNet weights, the same seed and the same data, so the rows differ only in the mesh network:

* ``fc``: the paper's fully connected baseline (an MLP from the joints to the vertices);
* ``coarse_to_fine (compact)``: MeshNet on the compact hierarchy (the default);
* ``coarse_to_fine (binary_tree)``: MeshNet on the release's binary-tree layout;
* ``direct``: every Chebyshev block at full resolution;
* ``coarse_to_fine (compact, canonical frame)``: not in the paper: MeshNet works in the body
  frame of PoseNet's joints (:func:`meshgraph.models.joint_frame`);
* ``coarse_to_fine (compact, canonical frame, spiral)``: the same with SpiralNet++'s spiral
  convolution (length 9) in place of every Chebyshev convolution of the mesh.

For each: MPJPE, PA-MPJPE (joints regressed from the mesh) and MPVPE on the held-out set with
ground-truth 2D, the parameter count, inference throughput at batch 64 (meshes/s, median of
interleaved rounds) and peak memory of one inference at batch 64 (resident-set growth in a
fresh process, see :mod:`benchmarks._common`). A killed run resumes (finished variants are
kept, the running one continues from its checkpoint). Writes ``ablation.json``,
``ablation.md`` and ``ablation.png`` to ``--out`` and, with ``--results``, copies the table and
the chart to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import torch

from benchmarks._common import (
    machine_info,
    peak_memory_mib,
    pose2mesh_workload,
    restores_torch_threads,
)

VARIANTS = {
    "fc": {"variant": "fc"},
    # the paper's MeshNet rows work in camera axes (the presets turn the canonical frame on)
    "coarse_to_fine (compact)": {
        "variant": "coarse_to_fine",
        "layout": "compact",
        "canonical_frame": False,
    },
    "coarse_to_fine (binary_tree)": {
        "variant": "coarse_to_fine",
        "layout": "binary_tree",
        "canonical_frame": False,
    },
    "direct": {"variant": "direct", "layout": "compact", "canonical_frame": False},
    "coarse_to_fine (compact, canonical frame)": {
        "variant": "coarse_to_fine",
        "layout": "compact",
        "canonical_frame": True,
    },
    "coarse_to_fine (compact, canonical frame, spiral)": {
        "variant": "coarse_to_fine",
        "layout": "compact",
        "canonical_frame": True,
        "conv": "spiral",
    },
}


def _slug(name: str) -> str:
    return name.replace(" (", "-").replace(")", "").replace(", ", "-").replace(" ", "_")


def train_variants(args: argparse.Namespace) -> dict[str, dict]:
    from meshgraph.data.synthetic import SyntheticPoseMeshDataset
    from meshgraph.models import Pose2Mesh
    from meshgraph.models.pose2mesh import Pose2MeshConfig
    from meshgraph.training.evaluate import evaluate, mean_mesh_baseline
    from meshgraph.training.pipeline import HELD_OUT_SEED, build_body, preset
    from meshgraph.training.trainer import TrainConfig, Trainer

    out = Path(args.out)
    base = preset("body", "quick")
    if args.topology is not None:
        base.anny_topology = None if args.topology == "full" else args.topology
    body = build_body(base)
    train_kw = {**base.train, "posenet_epochs": args.posenet_epochs, "epochs": args.epochs,
                "samples_per_epoch": args.samples_per_epoch}  # fmt: skip
    data = SyntheticPoseMeshDataset(body, 1_000_000, joint_set="coco", seed=0, progress=False)
    test = SyntheticPoseMeshDataset(body, args.test_samples, joint_set="coco",
                                    seed=HELD_OUT_SEED, noise="none", progress=False)  # fmt: skip
    # stage 1 once: the shared PoseNet
    stage1_dir = out / "posenet"
    model_cfg = {**base.model, "joint_set": "coco", "mesh_joint_set": "h36m"}
    if not (stage1_dir / "model.pt").exists():
        torch.manual_seed(0)
        model = Pose2Mesh.from_body(body, Pose2MeshConfig(**model_cfg))
        cfg = TrainConfig(**{**train_kw, "epochs": 0})
        Trainer(model, data, cfg, stage1_dir, progress=not args.no_progress).fit(resume=True)
    posenet_state = Pose2Mesh.load(stage1_dir / "model.pt").posenet.state_dict()
    results: dict[str, dict] = {}
    for name, fields in VARIANTS.items():
        run_dir = out / _slug(name)
        done = run_dir / "result.json"
        if done.exists():
            results[name] = json.loads(done.read_text())
            continue
        torch.manual_seed(1)
        model = Pose2Mesh.from_body(body, Pose2MeshConfig(**{**model_cfg, **fields}))
        model.posenet.load_state_dict(posenet_state)
        cfg = TrainConfig(**{**train_kw, "posenet_epochs": 0})
        print(f"== {name}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters",
              flush=True)  # fmt: skip
        t = time.perf_counter()
        Trainer(model, data, cfg, run_dir, progress=not args.no_progress).fit(resume=True)
        train_s = time.perf_counter() - t
        model = Pose2Mesh.load(run_dir / "model.pt").eval()
        metrics = evaluate(model, test)
        res = {
            "metrics": metrics,
            "parameters": sum(p.numel() for p in model.parameters()),
            "train_seconds": train_s,
            "model": str(run_dir / "model.pt"),
        }
        done.write_text(json.dumps(res, indent=2))
        results[name] = res
    base_metrics = mean_mesh_baseline(data, test, num_test=args.test_samples)
    results["mean-mesh baseline"] = {"metrics": base_metrics}
    return results


def speed_and_memory(results: dict[str, dict], rounds: int) -> None:
    from meshgraph.models import Pose2Mesh

    steps = {}
    for name in VARIANTS:
        model = Pose2Mesh.load(results[name]["model"])
        steps[name] = pose2mesh_workload(model, 64, train=False)
        steps[name]()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):  # interleaved: every variant sees the same machine load
        for name, step in steps.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)
    for name in steps:
        med = statistics.median(times[name])
        results[name]["meshes_per_second_b64"] = 64 / med
        spec = {"kind": "pose2mesh_file", "path": results[name]["model"], "batch": 64}
        results[name]["peak_mib_b64"] = peak_memory_mib(spec)


def table(results: dict[str, dict], info: dict) -> str:
    head = ("| variant | MPJPE (mm) | PA-MPJPE (mm) | MPVPE (mm) | parameters (M) | "
            "meshes/s (B64) | peak memory (MiB, B64) |")  # fmt: skip
    lines = [head, "|" + "---|" * 7]
    for name, r in results.items():
        m = r["metrics"]
        cells = [f"{m[k]:.1f}" if k in m else "-" for k in ("mpjpe", "pa_mpjpe", "mpvpe")]
        if "parameters" in r:
            cells += [f"{r['parameters'] / 1e6:.2f}", f"{r['meshes_per_second_b64']:.0f}",
                      f"{r['peak_mib_b64']:.0f}"]  # fmt: skip
        else:
            cells += ["-", "-", "-"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Machine: {info.get('cpu', info['processor'])}, {info['torch_threads']} "
                 f"threads, torch {info['torch']}.")  # fmt: skip
    return "\n".join(lines)


def chart(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(VARIANTS)
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.9))
    panels = (
        ("MPVPE (mm, lower is better)", [results[n]["metrics"]["mpvpe"] for n in names]),
        ("meshes/s at batch 64", [results[n]["meshes_per_second_b64"] for n in names]),
        ("peak memory at batch 64 (MiB)", [results[n]["peak_mib_b64"] for n in names]),
    )
    for ax, (title, values) in zip(axes, panels, strict=True):
        colors = ["0.6", "tab:blue", "tab:orange", "tab:red", "tab:green", "tab:purple"]
        colors = colors[: len(names)]
        ax.barh(range(len(names)), values, color=colors)
        ax.set_yticks(range(len(names)), names if ax is axes[0] else [""] * len(names))
        ax.invert_yaxis()
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@restores_torch_threads
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posenet-epochs", type=int, default=16)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--samples-per-epoch", type=int, default=4096)
    p.add_argument("--test-samples", type=int, default=256)
    p.add_argument("--topology", default=None, help="Anny topology (default: the quick preset's)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--out", default="outputs/ablation")
    p.add_argument("--results", action="store_true", help="copy table and chart to results/")
    args = p.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = train_variants(args)
    speed_and_memory(results, args.rounds)
    info = machine_info()
    args_d = {k: v for k, v in vars(args).items()}
    (out / "ablation.json").write_text(
        json.dumps({"machine": info, "args": args_d, "results": results}, indent=2)
    )
    md = table(results, info)
    (out / "ablation.md").write_text(md + "\n")
    chart(results, out / "ablation.png")
    print(md)
    if args.results:
        dest = Path(__file__).resolve().parent / "results"
        shutil.copy(out / "ablation.md", dest / "ablation-cpu.md")
        shutil.copy(out / "ablation.json", dest / "ablation-cpu.json")
        shutil.copy(out / "ablation.png", dest / "ablation-cpu.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
