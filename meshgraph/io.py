"""Reading triangle meshes from files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from meshgraph._optional import WITH_TRIMESH, require

__all__ = ["load_mesh"]


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    verts: list[list[float]] = []
    faces: list[list[int]] = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "v":
                if len(parts) < 4:
                    raise ValueError(f"{path}:{lineno}: a vertex needs 3 coordinates")
                verts.append([float(x) for x in parts[1:4]])
            elif parts[0] == "f":
                idx = [int(p.split("/")[0]) for p in parts[1:]]
                if len(idx) < 3:
                    raise ValueError(f"{path}:{lineno}: a face needs at least 3 vertices")
                idx = [i - 1 if i > 0 else len(verts) + i for i in idx]  # 1-based or negative
                faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    return np.asarray(verts, dtype=np.float64).reshape(-1, 3), np.asarray(
        faces, dtype=np.int64
    ).reshape(-1, 3)


def load_mesh(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read vertices ``(V, 3)`` and triangle faces ``(F, 3)`` from a mesh file.

    Wavefront ``.obj`` is read directly (polygons are fan-triangulated); every other format
    (``.ply``, ``.stl``, ``.off``, ``.glb``, ...) goes through trimesh, without merging or
    reordering vertices. ``.npz`` files with ``vertices`` and ``faces`` arrays work too.

    Args:
        path: The mesh file.

    Returns:
        ``(vertices, faces)`` as float64 and int64 arrays.

    Raises:
        FileNotFoundError: If the file does not exist.
        ImportError: If the format needs trimesh and it is not installed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no mesh file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        with np.load(path) as z:
            if "vertices" not in z.files or "faces" not in z.files:
                raise ValueError(f"{path} must contain 'vertices' and 'faces' arrays")
            return z["vertices"].astype(np.float64), z["faces"].astype(np.int64)
    if suffix == ".obj" and not WITH_TRIMESH:
        return _read_obj(path)
    trimesh = require("trimesh")
    mesh = trimesh.load(path, force="mesh", process=False)
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
