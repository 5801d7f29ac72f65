"""How well Anny's 1,229-vertex body maps onto its full 13,718-vertex mesh, and what it costs.

Usage::

    python -m benchmarks.topology_map [--fit-samples 512] [--test-samples 64] [--threads 2]

Fits :func:`meshgraph.data.transfer.fit_topology_map` (k = 1, 4, 8, 12; ridge 1e-3, and 0 for
k = 8) on posed training bodies and measures on other bodies (another seed):

* the error of the map on the exact small mesh against the full one (mean, 99th percentile,
  maximum per vertex, mm), the weights stored in float16 as shipped;
* how much it amplifies independent noise on the small mesh (the mean displacement of the
  output over the mean displacement of the input, for 1 cm Gaussian noise): below 1 means it
  averages errors out, above 1 that large weights magnify them;
* the time of the map on a batch of 64 beside the shipped body network's forward pass (when
  the weights ship).

Writes ``topology-map-cpu.{json,md}`` to ``--out``. Needs anny.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from benchmarks._common import machine_info, restores_torch_threads

ROWS = [(1, 1e-3), (4, 1e-3), (8, 0.0), (8, 1e-3), (12, 1e-3)]


def _median_seconds(fn, rounds: int = 7) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run(fit_samples: int, test_samples: int, threads: int) -> dict:
    """Fit every row, measure it on held-out bodies, time the map beside the network."""
    from meshgraph.bodies import AnnyModel
    from meshgraph.data.transfer import posed_pairs
    from meshgraph.nn.vertex_map import VertexMap

    torch.set_num_threads(threads)
    small = AnnyModel("body", "notoes_collapse10pc", regressor_cache_dir=False)
    full = AnnyModel("body", regressor_cache_dir=False)
    pose = {"blend": 0.3333, "uniform": 0.3333}
    src, tgt = posed_pairs(small, full, fit_samples, seed=0, **pose)
    test_src, test_tgt = posed_pairs(small, full, test_samples, seed=1, **pose)
    noise = 0.01 * torch.randn(test_src.shape, generator=torch.Generator().manual_seed(2))
    rest = small.template_vertices(), full.template_vertices()
    rows = []
    for k, ridge in ROWS:
        t = time.perf_counter()
        fitted = VertexMap.fit(src, tgt, *rest, k=k, ridge=ridge)
        fit_s = time.perf_counter() - t
        vmap = VertexMap.from_arrays(fitted.to_arrays(half=True))  # as shipped
        err = (vmap(test_src) - test_tgt).norm(dim=-1) * 1000
        moved = (vmap(test_src + noise) - vmap(test_src)).norm(dim=-1).mean()
        rows.append({
            "k": k,
            "ridge": ridge,
            "mean_mm": float(err.mean()),
            "p99_mm": float(err.quantile(0.99)),
            "max_mm": float(err.max()),
            "noise_gain": float(moved / noise.norm(dim=-1).mean()),
            "max_abs_weight": float(vmap.weight.abs().max()),
            "fit_s": fit_s,
        })  # fmt: skip
    timing = {}
    vmap = VertexMap.fit(src, tgt, *rest, k=8, ridge=1e-3)
    x = test_src[:1].expand(64, -1, -1).contiguous()
    timing["map_b64_ms"] = 1000 * _median_seconds(lambda: vmap(x))
    try:
        from meshgraph.models import Pose2Mesh

        model = Pose2Mesh.pretrained("body", full_mesh=False)
        kp = torch.randn(64, model.joint_set.num_joints, 2)
        with torch.no_grad():
            timing["network_b64_ms"] = 1000 * _median_seconds(lambda: model(kp))
    except FileNotFoundError:
        pass
    return {"rows": rows, "timing": timing, "fit_samples": fit_samples,
            "test_samples": test_samples, "threads": threads}  # fmt: skip


def markdown(result: dict) -> str:
    """The result as a Markdown table."""
    lines = [
        "# Anny's 1,229-vertex body mapped onto its 13,718-vertex mesh (cpu)",
        "",
        f"`python -m benchmarks.topology_map --fit-samples {result['fit_samples']} "
        f"--test-samples {result['test_samples']} --threads {result['threads']}` on "
        f"{result['machine']}. Maps fitted on {result['fit_samples']} posed bodies (seed 0), "
        f"measured on {result['test_samples']} others (seed 1), weights stored in float16. "
        "Errors of the map on the exact small mesh against the full mesh, per vertex, in mm; "
        "noise gain: output displacement / input displacement for independent 1 cm noise.",
        "",
        "| k | ridge | mean | 99th percentile | max | noise gain | max abs weight | fit (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['k']} | {r['ridge']:g} | {r['mean_mm']:.2f} | {r['p99_mm']:.2f} | "
            f"{r['max_mm']:.1f} | {r['noise_gain']:.2f} | {r['max_abs_weight']:.2f} | "
            f"{r['fit_s']:.1f} |"
        )
    t = result["timing"]
    lines += ["", f"The map (k = 8) on a batch of 64 bodies: {t['map_b64_ms']:.1f} ms"]
    if "network_b64_ms" in t:
        lines[-1] += (
            f", beside {t['network_b64_ms']:.0f} ms for the shipped body network's forward "
            "pass on the same batch."
        )
    else:
        lines[-1] += "."
    return "\n".join(lines) + "\n"


@restores_torch_threads
def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit-samples", type=int, default=512)
    p.add_argument("--test-samples", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = p.parse_args(argv)
    result = run(args.fit_samples, args.test_samples, args.threads)
    info = machine_info()
    result["machine"] = (
        f"{info.get('cpu', info['processor'])}, {info['cpu_count']} cores, torch {info['torch']}"
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "topology-map-cpu.json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    (args.out / "topology-map-cpu.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
