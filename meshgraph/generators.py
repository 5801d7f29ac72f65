"""Small synthetic meshes for tests, examples and benchmarks (no files needed)."""

from __future__ import annotations

import numpy as np

from meshgraph.mesh import MeshTopology

__all__ = ["grid_mesh", "icosphere", "icosphere_vertices_faces", "torus_mesh"]


def icosphere_vertices_faces(subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Vertices and faces of a unit icosphere.

    Each subdivision splits every triangle into four; the vertex count is
    ``10 * 4**subdivisions + 2`` (12, 42, 162, 642, 2562, 10242, ...).

    Args:
        subdivisions: Number of subdivisions, ``>= 0``.

    Returns:
        ``(V, 3)`` float64 unit vectors and ``(F, 3)`` int64 faces, counter-clockwise seen from
        outside.
    """
    if subdivisions < 0:
        raise ValueError(f"subdivisions must be >= 0, got {subdivisions}")
    t = (1.0 + 5.0**0.5) / 2.0
    verts = [
        [-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
        [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
        [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1],
    ]  # fmt: skip
    faces = [
        [0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
        [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
        [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
        [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1],
    ]  # fmt: skip
    v = np.asarray(verts, dtype=np.float64)
    f = np.asarray(faces, dtype=np.int64)
    for _ in range(subdivisions):
        edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        edges = np.sort(edges, axis=1)
        unique, inverse = np.unique(edges, axis=0, return_inverse=True)
        mids = v.shape[0] + inverse.reshape(3, -1).T  # (F, 3): midpoints of edges 01, 12, 20
        v = np.concatenate([v, (v[unique[:, 0]] + v[unique[:, 1]]) / 2.0])
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        ab, bc, ca = mids[:, 0], mids[:, 1], mids[:, 2]
        f = np.concatenate(
            [np.stack(x, axis=1) for x in ((a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca))]
        )
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v, f


def icosphere(subdivisions: int = 2) -> MeshTopology:
    """Topology of a unit icosphere (see :func:`icosphere_vertices_faces`).

    Example:
        >>> icosphere(2).num_vertices
        162
    """
    _, f = icosphere_vertices_faces(subdivisions)
    return MeshTopology(f)


def _grid_faces(rows: int, cols: int, wrap_rows: bool, wrap_cols: bool) -> np.ndarray:
    r_max = rows if wrap_rows else rows - 1
    c_max = cols if wrap_cols else cols - 1
    r, c = np.meshgrid(np.arange(r_max), np.arange(c_max), indexing="ij")
    r, c = r.reshape(-1), c.reshape(-1)
    v00 = r * cols + c
    v01 = r * cols + (c + 1) % cols
    v10 = ((r + 1) % rows) * cols + c
    v11 = ((r + 1) % rows) * cols + (c + 1) % cols
    return np.concatenate([np.stack([v00, v10, v11], 1), np.stack([v00, v11, v01], 1)])


def grid_mesh(rows: int, cols: int) -> MeshTopology:
    """A flat ``rows x cols`` vertex grid, each cell split into two triangles.

    Example:
        >>> grid_mesh(3, 4).num_faces
        12
    """
    if rows < 2 or cols < 2:
        raise ValueError(f"a grid needs at least 2 x 2 vertices, got {rows} x {cols}")
    return MeshTopology(_grid_faces(rows, cols, False, False), num_vertices=rows * cols)


def torus_mesh(rows: int, cols: int) -> MeshTopology:
    """A closed torus grid of ``rows x cols`` vertices (every vertex has degree 6).

    Example:
        >>> torus_mesh(10, 12).num_vertices
        120
    """
    if rows < 3 or cols < 3:
        raise ValueError(f"a torus needs at least 3 x 3 vertices, got {rows} x {cols}")
    return MeshTopology(_grid_faces(rows, cols, True, True), num_vertices=rows * cols)
