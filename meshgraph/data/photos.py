"""Synthetic photos: posed Anny bodies and hands rendered with shading, with their ground truth.

Real photos with known 3D meshes cannot ship (licences, downloads); renders of Anny (CC0
assets) can. A detector such as mediapipe recognises these shaded renders, so they test the
whole photo-to-mesh path -- detection, the keypoint adapters, the model -- against a known
mesh. The pose, shape and camera of photo ``i`` are those of sample ``i`` of
:class:`~meshgraph.data.synthetic.SyntheticPoseMeshDataset` with the same seed, on cameras
limited to views a detector can handle: bodies upright and seen from the front half
(azimuth within 60 degrees), hands from any direction (a detector misses some of those views;
:mod:`benchmarks.image_path` reports how many).

The render uses the full Anny mesh (``render_body``) while the ground truth is on the
evaluated model's topology (``body``): both are posed from the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from meshgraph.bodies.base import BodyModel
from meshgraph.data.camera import CameraRanges
from meshgraph.data.synthetic import SyntheticPoseMeshDataset

__all__ = ["SyntheticPhoto", "photo_camera_ranges", "synthetic_photos"]


@dataclass
class SyntheticPhoto:
    """One rendered photo and its ground truth (camera axes, metres, root-relative).

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        keypoints_2d: ``(J, 2)`` exact pixels of the joint set (COCO-19 or Hand-21).
        joints_3d: ``(J, 3)`` joints of that set.
        mesh_joints_3d: ``(J', 3)`` the model's mesh joints (Human3.6M-17 or Hand-21).
        vertices: ``(V, 3)`` vertices of ``body``'s topology.
        index: The sample's index in the dataset.
    """

    image: np.ndarray
    keypoints_2d: np.ndarray
    joints_3d: np.ndarray
    mesh_joints_3d: np.ndarray
    vertices: np.ndarray
    index: int


def photo_camera_ranges(kind: str, size: int = 512) -> CameraRanges:
    """Cameras for photos a detector handles: from the front, upright, the subject filling it.

    Args:
        kind: ``"body"`` or ``"hand"``.
        size: Width and height of the square image, pixels.
    """
    if kind == "body":
        base = CameraRanges(azimuth=(-60.0, 60.0), elevation=(-5.0, 25.0), roll=(-5.0, 5.0),
                            distance=(3.0, 4.0), focal=(1300.0, 1500.0), offset=0.05)  # fmt: skip
    elif kind == "hand":
        # any direction (a detector finds some views of a bare hand and not others)
        base = replace(CameraRanges.hand(), roll=(-20.0, 20.0), distance=(0.45, 0.55),
                       focal=(1000.0, 1100.0), offset=0.0)  # fmt: skip
    else:
        raise ValueError(f"kind must be 'body' or 'hand', got {kind!r}")
    scale = size / 1000.0
    return replace(base, focal=(base.focal[0] * scale, base.focal[1] * scale),
                   image_size=(size, size))  # fmt: skip


def synthetic_photos(
    body: BodyModel,
    render_body: BodyModel,
    indices: list[int] | range,
    *,
    seed: int = 2026,
    size: int = 512,
    joint_set: str | None = None,
) -> list[SyntheticPhoto]:
    """Render photos of posed bodies (or hands) with their ground truth on ``body``.

    Args:
        body: The body model whose topology the ground truth is on (the evaluated model's).
        render_body: The same kind of body on the mesh to draw (e.g. the full Anny mesh).
        indices: Sample indices of the dataset with ``seed``.
        seed: The dataset seed (poses, shapes, cameras).
        size: Width and height of the square images, pixels.
        joint_set: The 2D joint set (default: ``"hand"`` for hands, ``"coco"`` for bodies).

    Raises:
        ValueError: If the two bodies are not the same kind of body.
    """
    from meshgraph.viz import render_mesh

    if render_body.part != body.part:
        raise ValueError("body and render_body must both be bodies or both be hands")
    joint_set = joint_set or body.input_joint_set
    ranges = photo_camera_ranges(body.part, size)
    common = dict(joint_set=joint_set, seed=seed, noise="none", camera_ranges=ranges,
                  progress=False)  # fmt: skip
    indices = list(indices)
    length = max(indices) + 1
    truth = SyntheticPoseMeshDataset(body, length, **common)  # type: ignore[arg-type]
    draw = SyntheticPoseMeshDataset(render_body, length, **common)  # type: ignore[arg-type]
    gt = truth.__getitems__(indices)
    rd = draw.__getitems__(indices)
    faces = render_body.faces.cpu().numpy()  # shading uses |cos|: either winding renders
    out = []
    for i, index in enumerate(indices):
        cam = (rd["vertices"][i] + rd["root"][i]).double()
        uv = cam[:, :2] / cam[:, 2:3] * rd["focal"][i].double() + rd["principal"][i].double()
        # depth in pixels too, so that the shading sees the surface's true slant
        depth = cam[:, 2:3] * rd["focal"][i, 0].double() / cam[:, 2].mean()
        image = render_mesh(torch.cat([uv, depth], 1), faces, (size, size))
        out.append(
            SyntheticPhoto(
                image=image,
                keypoints_2d=gt["keypoints_2d_gt"][i].double().numpy(),
                joints_3d=gt["joints_3d"][i].double().numpy(),
                mesh_joints_3d=gt["mesh_joints_3d"][i].double().numpy(),
                vertices=gt["vertices"][i].double().numpy(),
                index=index,
            )
        )
    return out
