"""The ``meshgraph`` command.

Subcommands:

* ``meshgraph coarsen MESH``: build a heavy-edge hierarchy of a mesh file, save it (``.npz``)
  and a picture of its levels (PNG), print the level sizes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from meshgraph import __version__
from meshgraph.coarsening import LAYOUTS, MeshHierarchy
from meshgraph.io import load_mesh
from meshgraph.mesh import MeshTopology

__all__ = ["main"]


def _coarsen(args: argparse.Namespace) -> int:
    verts, faces = load_mesh(args.mesh)
    mesh = MeshTopology(faces, num_vertices=len(verts))
    t = time.perf_counter()
    h = MeshHierarchy.build(
        mesh, args.levels, layout=args.layout, compat=args.compat, cache_dir=args.cache_dir
    )
    seconds = time.perf_counter() - t
    out = Path(args.out) if args.out else Path(args.mesh).with_suffix("")
    out.mkdir(parents=True, exist_ok=True)
    h.save(out / "hierarchy.npz")
    summary = {
        "mesh": str(args.mesh),
        "num_vertices": mesh.num_vertices,
        "num_faces": mesh.num_faces,
        "layout": h.layout,
        "compat": h.compat,
        "sizes": h.sizes,
        "real_sizes": h.real_sizes,
        "seconds": seconds,
    }
    if not args.no_plot:
        from meshgraph.viz import plot_hierarchy

        plot_hierarchy(h, verts, out / "levels.png")
    (out / "hierarchy.json").write_text(json.dumps(summary, indent=2))
    print(f"{mesh}")
    print(f"{h.num_levels} levels ({h.layout}) in {seconds:.3f} s")
    for level, (size, real) in enumerate(zip(h.sizes, h.real_sizes, strict=True)):
        fake = f"  ({size - real} fake)" if size != real else ""
        print(f"  level {level}: {size}{fake}")
    print(f"saved {out / 'hierarchy.npz'}, {out / 'hierarchy.json'}", end="")
    print("" if args.no_plot else f", {out / 'levels.png'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``meshgraph`` command."""
    parser = argparse.ArgumentParser(prog="meshgraph", description="meshgraph tools")
    parser.add_argument("--version", action="version", version=f"meshgraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("coarsen", help="build a heavy-edge hierarchy of a mesh file")
    p.add_argument("mesh", type=Path, help="mesh file (.obj; .ply/.stl/... with trimesh; .npz)")
    p.add_argument("--levels", type=int, default=8, help="number of levels, the mesh included")
    p.add_argument("--layout", choices=LAYOUTS, default="compact")
    p.add_argument("--compat", choices=["pose2mesh"], default=None)
    p.add_argument("--out", help="output folder (default: next to the mesh)")
    p.add_argument("--cache-dir", default=None, help="reuse hierarchies from this folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    p.set_defaults(func=_coarsen)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``meshgraph`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, TypeError, ImportError) as err:
        print(f"meshgraph {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
