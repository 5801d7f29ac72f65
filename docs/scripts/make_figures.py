"""Generate the documentation's pictures and benchmark tables into ``docs/_generated/``.

Run by ``docs/conf.py`` when a file is missing, or by hand to refresh them all::

    python docs/scripts/make_figures.py

* ``levels_body.png``, ``levels_hand.png``, ``levels_hand_binary_tree.png``: the heavy-edge
  hierarchies of the Anny body and right-hand meshes (needs ``anny``);
* ``samples.png``: synthetic Pose2Mesh training samples, poses and shapes (needs ``anny``);
* ``bench_*.rst`` and ``bench_*.png``: the tables and charts in ``benchmarks/results/``,
  converted from Markdown.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1]
ROOT = DOCS.parent
OUT = DOCS / "_generated"
RESULTS = ROOT / "benchmarks" / "results"


def _placeholder(path: Path, text: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(6, 1.2))
    fig.text(0.5, 0.5, text, ha="center", va="center")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def hierarchy_figures(skip_existing: bool) -> None:
    """The levels of the Anny body and hand hierarchies."""
    targets = {
        "levels_body.png": ("body", "compact"),
        "levels_hand.png": ("hand.R", "compact"),
        "levels_hand_binary_tree.png": ("hand.R", "binary_tree"),
    }
    todo = {k: v for k, v in targets.items() if not (skip_existing and (OUT / k).exists())}
    if not todo:
        return
    from meshgraph._optional import WITH_ANNY

    if not WITH_ANNY:
        for name in todo:
            _placeholder(OUT / name, "install anny (pip install anny) to draw this picture")
        return
    import torch

    from meshgraph import MeshHierarchy
    from meshgraph.bodies import AnnyModel
    from meshgraph.viz import plot_hierarchy

    for name, (kind, layout) in todo.items():
        body = AnnyModel(kind)
        with torch.no_grad():
            verts = body(torch.zeros(1, body.num_bones, 3), torch.full((1, 6), 0.5))[0]
        h = MeshHierarchy.build(body.topology, 8, layout=layout)
        plot_hierarchy(h, verts, OUT / name, max_levels=5,
                       azim=-80.0 if kind == "body" else -120.0)  # fmt: skip


def samples_figure(skip_existing: bool) -> None:
    """A grid of synthetic training samples (world-aligned meshes and their noisy 2D input)."""
    path = OUT / "samples.png"
    if skip_existing and path.exists():
        return
    from meshgraph._optional import WITH_ANNY

    if not WITH_ANNY:
        _placeholder(path, "install anny (pip install anny) to draw this picture")
        return
    from meshgraph.bodies import AnnyModel, get_joint_set
    from meshgraph.data import SyntheticPoseMeshDataset
    from meshgraph.viz import plot_samples

    body = AnnyModel("body", topology="notoes_collapse10pc")
    ds = SyntheticPoseMeshDataset(body, 1000, joint_set="coco", seed=7, progress=False)
    batch = ds.__getitems__(list(range(6)))
    world = batch["vertices"] @ batch["camera_rotation"]  # undo the camera rotation
    plot_samples(world, path, titles=[f"sample {i}" for i in range(6)],
                 keypoints_2d=batch["keypoints_2d_pixels"],
                 bones=list(get_joint_set("coco").bones))  # fmt: skip


def markdown_to_rst(md: str) -> str:
    """The small Markdown subset the benchmark reports use (headings, pipe tables, text)."""
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            out += [title, "^" * len(title), ""]
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                cells = [c.strip() for c in lines[i].strip().strip("|").split("|")]
                if not all(set(c) <= set("-: ") for c in cells):
                    rows.append(cells)
                i += 1
            width = max(len(r) for r in rows)
            out += [".. list-table::", "   :header-rows: 1", ""]
            for row in rows:
                row = row + [""] * (width - len(row))
                out.append(f"   * - {row[0] or ' '}")
                out += [f"     - {c or ' '}" for c in row[1:]]
            out.append("")
        else:
            out.append(line.replace("`", "``").replace("````", "``"))
            i += 1
    return "\n".join(out) + "\n"


def benchmark_tables() -> None:
    """Every Markdown report and PNG chart of ``benchmarks/results`` (always refreshed)."""
    for md in sorted(RESULTS.glob("*.md")):
        (OUT / f"bench_{md.stem}.rst").write_text(markdown_to_rst(md.read_text()))
    for png in sorted(RESULTS.glob("*.png")):
        shutil.copy(png, OUT / f"bench_{png.name}")


def shipped_models() -> None:
    """The shipped weights' held-out tables and provenance, read from the weight files."""
    import json

    from meshgraph.models.pretrained import PRETRAINED, pretrained_info

    labels = {"gt_2d": "ground-truth 2D", "noisy_2d": "noisy 2D",
              "detector_2d": "detector-like 2D"}  # fmt: skip
    columns = [("mpjpe", "MPJPE"), ("pa_mpjpe", "PA-MPJPE"), ("mpvpe", "MPVPE"),
               ("pa_mpvpe", "PA-MPVPE"), ("f5", "F@5 mm"), ("f15", "F@15 mm")]  # fmt: skip
    out: list[str] = []
    for name in PRETRAINED:
        try:
            info = pretrained_info(name)
        except FileNotFoundError:
            out += [f"*No {name} weights ship in this checkout.*", ""]
            continue
        metrics = json.loads(info["metrics"])
        data = json.loads(info["data"])
        keys = [(k, title) for k, title in columns if k in metrics.get("gt_2d", {})]
        title = f"The shipped {name} model"
        out += [title, "^" * len(title), ""]
        out += [".. list-table::", "   :header-rows: 1", "", "   * - input"]
        out += [f"     - {t}" for _, t in keys]
        for key, label in labels.items():
            if key in metrics:
                row = metrics[key]
                out.append(f"   * - {label}")
                out += [f"     - {row[k]:.3f}" if k.startswith("f") else f"     - {row[k]:.1f}"
                        for k, _ in keys]  # fmt: skip
        base = metrics.get("mean_mesh_baseline", {})
        if base:
            out.append("   * - mean-mesh baseline")
            out += [f"     - {base[k]:.1f}" if k in base else "     - " for k, _ in keys]
        minutes = info["train_seconds"] / 60
        out += [
            "",
            f"Millimetres (F-scores as fractions), {data.get('test_samples')} held-out "
            f"samples; reproduce with ``{info.get('metrics_command', 'meshgraph evaluate')}``.",
            "",
            f"* trained by ``{info['command']}``",
            f"* commit ``{info['commit']}``, seed {info['seed']}",
            f"* {minutes:.0f} minutes on {info['hardware']}",
            f"* data: body {data.get('body')} (topology {data.get('anny_topology') or 'full'}),"
            f" poses {json.dumps(data.get('poses') or {})}, detector failures "
            f"{'on' if data.get('detector') is not None else 'off'}",
        ]
        if info.get("output_map"):
            out.append(
                "* answers on the full mesh through a fitted vertex map "
                f"(``{info['output_map']}``); the metrics are the full mesh's. "
                "``full_mesh=False`` (``--small-mesh``) gives the network's own mesh."
            )
        out.append("")
    (OUT / "shipped_models.rst").write_text("\n".join(out) + "\n")


def main(argv: list[str] | None = None, skip_existing: bool = False) -> None:
    """Generate everything (``skip_existing``: only what is missing, except the tables)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--skip-existing", action="store_true")
    args = p.parse_args(argv if argv is not None else [])
    skip = skip_existing or args.skip_existing
    OUT.mkdir(parents=True, exist_ok=True)
    benchmark_tables()
    shipped_models()
    hierarchy_figures(skip)
    samples_figure(skip)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
