"""Reading triangle meshes from files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

from meshgraph._optional import WITH_TRIMESH, require

__all__ = ["atomic_write", "load_mesh"]


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


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file atomically: ``write(fh)`` fills a temporary file, which then replaces ``path``.

    A reader (or a killed writer) never sees a half-written file: the temporary file lives in
    the same folder, is flushed and synced, then renamed over ``path``; on any error it is
    removed and ``path`` is untouched.

    Args:
        path: The destination (its folder is created).
        write: Called with the open binary temporary file.

    Returns:
        ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.bin"
        >>> atomic_write(p, lambda fh: fh.write(b"ok")).read_bytes()
        b'ok'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
