"""Reading mesh files: meshgraph's ``.obj`` reader against trimesh on the same files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from meshgraph.generators import icosphere_vertices_faces
from meshgraph.io import _read_obj_lines, load_mesh


def _write_obj(path: Path, verts: np.ndarray, polygons: np.ndarray) -> Path:
    """An .obj as exporters write it: 6 decimals, texture indices on every corner."""
    with open(path, "w") as fh:
        fh.write("# benchmark mesh\n")
        fh.write("".join(f"v {a:.6f} {b:.6f} {c:.6f}\n" for a, b, c in verts))
        fh.write("".join(f"vt {u:.4f} {u:.4f}\n" for u in np.linspace(0, 1, len(verts))))
        fh.write("".join("f " + " ".join(f"{i}/{i}" for i in p + 1) + "\n" for p in polygons))
    return path


def _quad_grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """An n x n grid of points on a wavy sheet and its (n - 1)^2 quads."""
    x, y = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float), indexing="ij")
    verts = np.stack([x.ravel(), y.ravel(), np.sin(x.ravel()) * np.cos(y.ravel())], axis=1)
    i = np.arange(n * n).reshape(n, n)
    quads = np.stack([i[:-1, :-1], i[1:, :-1], i[1:, 1:], i[:-1, 1:]], axis=-1).reshape(-1, 4)
    return verts, quads


MESHES = {
    "ico-41k-triangles": lambda: icosphere_vertices_faces(6),
    "ico-164k-triangles": lambda: icosphere_vertices_faces(7),
    "grid-160k-quads": lambda: _quad_grid(400),
}


@pytest.fixture(scope="module", params=list(MESHES))
def obj_file(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    verts, polygons = MESHES[request.param]()
    return _write_obj(tmp_path_factory.mktemp("obj") / f"{request.param}.obj", verts, polygons)


@pytest.mark.parametrize("reader", ["meshgraph", "meshgraph-lines", "trimesh"])
def test_read_obj(benchmark, obj_file, reader):
    benchmark.group = f"read-obj-{obj_file.stem}"
    if reader == "meshgraph":
        read = lambda: load_mesh(obj_file)  # noqa: E731
    elif reader == "meshgraph-lines":  # the line-by-line reader the fast one falls back on
        read = lambda: _read_obj_lines(obj_file)  # noqa: E731
    else:
        trimesh = pytest.importorskip("trimesh")

        def read() -> object:
            # trimesh's texture code warns (an all-NaN slice) on the quad grid's coordinates
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return trimesh.load(obj_file, process=False, maintain_order=True)

    result = benchmark.pedantic(read, rounds=3, iterations=1)
    num_vertices = len(result[0]) if isinstance(result, tuple) else len(result.vertices)
    benchmark.extra_info["num_vertices"] = num_vertices
