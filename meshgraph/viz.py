"""Mesh export (.obj, .ply) and figures of hierarchies (matplotlib, optional)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from meshgraph._optional import require
from meshgraph.io import _check_mesh
from meshgraph.io import save_obj as save_obj  # mesh files live in meshgraph.io
from meshgraph.io import save_ply as save_ply

if TYPE_CHECKING:  # pragma: no cover
    from meshgraph.coarsening import MeshHierarchy

__all__ = [
    "draw_keypoints",
    "draw_mesh",
    "level_positions",
    "plot_hierarchy",
    "plot_samples",
    "pyplot",
    "render_mesh",
    "save_figure",
]


def _as_numpy(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend.

    For figures of your own beside meshgraph's (:func:`draw_mesh` draws into its axes); works
    without a display.

    Raises:
        ImportError: matplotlib is missing (the message says what to install).
    """
    matplotlib = require("matplotlib")
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Lay out ``fig``, write it to ``path`` (folders made as needed), close it; the path.

    Example:
        >>> plt = pyplot()
        >>> fig, ax = plt.subplots()
        >>> import tempfile, pathlib
        >>> out = save_figure(fig, pathlib.Path(tempfile.mkdtemp()) / "a" / "fig.png")
        >>> out.name, out.exists()
        ('fig.png', True)
    """
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def level_positions(
    hierarchy: MeshHierarchy, vertices: np.ndarray | torch.Tensor
) -> list[np.ndarray]:
    """Positions of the real vertices of every level: each cluster at its members' mean.

    Args:
        hierarchy: The hierarchy.
        vertices: ``(V, 3)`` positions of the finest level, in mesh order.

    Returns:
        One ``(N_l, 3)`` array per level, in real (unpadded) vertex order.
    """
    pos = torch.as_tensor(_as_numpy(vertices), dtype=torch.float64)
    if pos.shape != (hierarchy.real_sizes[0], 3):
        raise ValueError(
            f"vertices must have shape ({hierarchy.real_sizes[0]}, 3), got {tuple(pos.shape)}"
        )
    from meshgraph.nn.pool import cluster_pool

    out = [pos.numpy()]
    for level, cluster in enumerate(hierarchy.real_clusters):
        pos = cluster_pool(pos, cluster, hierarchy.real_sizes[level + 1], reduce="mean")
        out.append(pos.numpy())
    return out


def plot_hierarchy(
    hierarchy: MeshHierarchy,
    vertices: np.ndarray | torch.Tensor,
    path: str | os.PathLike,
    *,
    max_levels: int = 8,
    elev: float = 10.0,
    azim: float = -80.0,
) -> Path:
    """Save a PNG with one 3D scatter per level, the points coloured by their coarsest cluster.

    Args:
        hierarchy: The hierarchy.
        vertices: ``(V, 3)`` positions of the finest level, in mesh order.
        path: Output PNG.
        max_levels: Draw at most this many levels (evenly picked, finest and coarsest kept).
        elev: Camera elevation in degrees.
        azim: Camera azimuth in degrees.

    Returns:
        The path written.
    """
    plt = pyplot()
    positions = level_positions(hierarchy, vertices)
    # colour every vertex of every level by the coarsest cluster it belongs to
    labels = [np.arange(hierarchy.real_sizes[-1])]
    for cluster in reversed(hierarchy.real_clusters):
        labels.insert(0, labels[0][cluster.numpy()])
    levels = np.unique(np.linspace(0, len(positions) - 1, min(max_levels, len(positions))))
    levels = levels.round().astype(int)
    fig = plt.figure(figsize=(3.2 * len(levels), 3.6))
    span = positions[0].max(0) - positions[0].min(0)
    centre = (positions[0].max(0) + positions[0].min(0)) / 2
    half = span.max() / 2
    for i, level in enumerate(levels):
        ax = fig.add_subplot(1, len(levels), i + 1, projection="3d")
        p = positions[level]
        size = max(0.5, 2000.0 / len(p))
        ax.scatter(p[:, 0], p[:, 1], p[:, 2], c=labels[level] % 20, cmap="tab20", s=size,
                   linewidths=0)  # fmt: skip
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.view_init(elev=elev, azim=azim)
        ax.set_axis_off()
        real, total = hierarchy.real_sizes[level], hierarchy.sizes[level]
        title = f"level {level}: {real}"
        if total != real:
            title += f" (+{total - real} fake)"
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=110)


def plot_samples(
    vertices: np.ndarray | torch.Tensor,
    path: str | os.PathLike,
    *,
    titles: list[str] | None = None,
    keypoints_2d: np.ndarray | torch.Tensor | None = None,
    bones: list[tuple[int, int]] | None = None,
    max_points: int = 4000,
) -> Path:
    """Save a PNG grid of meshes: front view (x-z) and side view (y-z), optionally the 2D input.

    Args:
        vertices: ``(N, V, 3)`` meshes (z up, facing -y, as Anny).
        path: Output PNG.
        titles: Optional ``N`` column titles.
        keypoints_2d: Optional ``(N, J, 2)`` pixel keypoints drawn as a third row.
        bones: Skeleton edges for the keypoints.
        max_points: Vertices drawn per mesh (evenly subsampled).

    Returns:
        The path written.
    """
    plt = pyplot()
    v = _as_numpy(vertices)
    if v.ndim != 3 or v.shape[-1] != 3:
        raise ValueError(f"vertices must have shape (N, V, 3), got {v.shape}")
    n = v.shape[0]
    rows = 3 if keypoints_2d is not None else 2
    fig, axes = plt.subplots(rows, n, figsize=(2.0 * n, 2.6 * rows), squeeze=False)
    step = max(1, v.shape[1] // max_points)
    for i in range(n):
        p = v[i][::step]
        centre = (p.max(0) + p.min(0)) / 2
        half = (p.max(0) - p.min(0)).max() / 2 * 1.05
        for r, (a, sign) in enumerate(((0, 1.0), (1, -1.0))):
            ax = axes[r, i]
            depth = p[:, 1] if a == 0 else p[:, 0]
            ax.scatter(sign * (p[:, a] - centre[a]), p[:, 2] - centre[2], s=0.3, c=depth,
                       cmap="viridis", linewidths=0)  # fmt: skip
            ax.set_xlim(-half, half)
            ax.set_ylim(-half, half)
            ax.set_aspect("equal")
            ax.axis("off")
        if titles is not None:
            axes[0, i].set_title(titles[i], fontsize=8)
        if keypoints_2d is not None:
            kp = _as_numpy(keypoints_2d)[i]
            ax = axes[2, i]
            for a, b in bones or []:
                ax.plot(kp[[a, b], 0], kp[[a, b], 1], "-", color="tab:blue", lw=1)
            ax.plot(kp[:, 0], kp[:, 1], ".", color="tab:red", ms=3)
            ax.invert_yaxis()
            ax.set_aspect("equal")
            ax.axis("off")
    return save_figure(fig, path, dpi=100)


def draw_keypoints(
    ax: Any,
    keypoints: np.ndarray | torch.Tensor,
    bones: Sequence[tuple[int, int]] = (),
    *,
    threshold: float = 0.1,
    bone_color: str = "tab:cyan",
    color: str = "tab:red",
) -> None:
    """Draw 2D keypoints and the bones between them into ``ax`` (image coordinates).

    Args:
        ax: A matplotlib axes.
        keypoints: ``(J, 2)`` pixels, or ``(J, 3)`` with a confidence per joint.
        bones: Joint index pairs to join (a joint set's ``bones``).
        threshold: With confidences, joints below it are left out (and their bones).
        bone_color: Colour of the bones.
        color: Colour of the joints.
    """
    kp = _as_numpy(keypoints).astype(np.float64)
    if kp.ndim != 2 or kp.shape[1] not in (2, 3):
        raise ValueError(f"keypoints must have shape (J, 2) or (J, 3), got {kp.shape}")
    shown = kp[:, 2] >= threshold if kp.shape[1] == 3 else np.ones(len(kp), dtype=bool)
    shown &= np.isfinite(kp[:, :2]).all(1)
    for a, b in bones:
        if shown[a] and shown[b]:
            ax.plot(kp[[a, b], 0], kp[[a, b], 1], "-", color=bone_color, lw=1.5)
    ax.plot(kp[shown, 0], kp[shown, 1], ".", color=color)


def draw_mesh(
    ax: Any,
    vertices: np.ndarray | torch.Tensor,
    faces: np.ndarray | torch.Tensor,
    values: np.ndarray | None = None,
    *,
    cmap: str = "inferno",
    vmin: float | None = None,
    vmax: float | None = None,
) -> Any:
    """Draw a mesh seen from a camera (x right, y down, z forward) on a 2D matplotlib axis.

    Faces are painted back to front and shaded by how much they face the camera; with
    ``values`` (one per vertex) they are coloured by the face mean instead.

    Args:
        ax: A matplotlib 2D axis.
        vertices: ``(V, 3)`` in camera axes.
        faces: ``(F, 3)``.
        values: Optional ``(V,)`` per-vertex values (e.g. errors) to colour by.
        cmap: Colour map of ``values``.
        vmin: Lower end of the colour scale (default: the minimum).
        vmax: Upper end of the colour scale (default: the maximum).

    Returns:
        The ``PolyCollection`` (pass it to ``colorbar``).
    """
    from matplotlib.collections import PolyCollection

    v, f = _as_numpy(vertices).astype(np.float64), _as_numpy(faces).astype(np.int64)
    _check_mesh(v, f)
    tri = v[f]  # (F, 3, 3)
    order = np.argsort(-tri[:, :, 2].mean(1))  # far faces first
    tri = tri[order]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    if values is None:
        shade = 0.35 + 0.65 * np.abs(normal[:, 2])
        colours = np.stack([0.55 * shade, 0.65 * shade, 0.85 * shade, np.ones_like(shade)], 1)
        coll = PolyCollection(tri[:, :, :2], facecolors=colours, edgecolors="none")
    else:
        face_values = np.asarray(values, dtype=np.float64)[f][order].mean(1)
        coll = PolyCollection(tri[:, :, :2], array=face_values, cmap=cmap, edgecolors="none")
        coll.set_clim(face_values.min() if vmin is None else vmin,
                      face_values.max() if vmax is None else vmax)  # fmt: skip
    ax.add_collection(coll)
    lo, hi = v[:, :2].min(0), v[:, :2].max(0)
    pad = 0.05 * (hi - lo).max()
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(hi[1] + pad, lo[1] - pad)  # image y points down
    ax.set_aspect("equal")
    ax.axis("off")
    return coll


def render_mesh(
    vertices: np.ndarray | torch.Tensor,
    faces: np.ndarray | torch.Tensor,
    size: tuple[int, int],
    *,
    colour: tuple[float, float, float] = (0.87, 0.67, 0.55),
    light: tuple[float, float, float] = (0.6, 0.8, 0.5),
    background: tuple[float, float, float] = (0.78, 0.82, 0.86),
) -> np.ndarray:
    """Render a mesh into an RGB image array, without OpenGL (matplotlib, painter's order).

    Faces are drawn back to front with Lambert shading from one directional light plus an
    ambient term, over a vertical gradient background: pictures that a 2D keypoint detector
    recognises, for testing the photo-to-mesh path on bodies with a known pose.

    Args:
        vertices: ``(V, 3)`` in image space: x, y in pixels (y down), z the depth (larger is
            farther) in the same units (pixels), e.g. a perspective projection's pixels and
            the camera z times ``focal / mean z``.
        faces: ``(F, 3)`` vertex indices (either winding: every face is shaded on the side
            that faces the camera).
        size: ``(width, height)`` of the image in pixels.
        colour: RGB surface colour in ``[0, 1]``.
        light: Direction the light travels, in the same axes (normalised here); the default
            comes from the upper left, in front.
        background: RGB colour at the top of the background (it darkens downwards).

    Returns:
        ``(height, width, 3)`` uint8 RGB.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    v, f = _as_numpy(vertices).astype(np.float64), _as_numpy(faces).astype(np.int64)
    _check_mesh(v, f)
    w, h = (int(x) for x in size)
    if w < 1 or h < 1:
        raise ValueError(f"size must be positive (width, height), got {size}")
    tri = v[f][np.argsort(-v[f][:, :, 2].mean(1))]  # far faces first
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-12
    normal *= -np.sign(normal[:, 2:3] + 1e-12)  # towards the camera (-z): the visible side
    to_light = -np.asarray(light, dtype=np.float64)
    to_light /= np.linalg.norm(to_light)
    shade = 0.25 + 0.75 * np.clip(normal @ to_light, 0.0, None)
    rgb = np.clip(np.asarray(colour)[None] * shade[:, None], 0, 1)

    fig = Figure(figsize=(w / 100, h / 100), dpi=100)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ramp = np.linspace(1.0, 0.7, 64)[:, None, None] * np.asarray(background)[None, None]
    ax.imshow(ramp, extent=(0, w, h, 0), aspect="auto", interpolation="bilinear")
    ax.add_collection(PolyCollection(tri[:, :, :2], facecolors=rgb, edgecolors=rgb, linewidths=0.3))
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.axis("off")
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:h, :w, :3].copy()
