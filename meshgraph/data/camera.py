"""Random perspective cameras around a subject, projection, and Pose2Mesh's 2D normalisation.

World coordinates are metres with z up (Anny's frame). A camera has a rotation ``R``
(world -> camera), a translation ``t`` (``x_cam = R x_world + t``), focal lengths ``(fx, fy)``
and a principal point ``(cx, cy)`` in pixels; the camera looks along its +z axis, image x to
the right and image y down (OpenCV convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from meshgraph.data.noise import draw_rows
from meshgraph.data.random import CounterRandom, Source, uniform

__all__ = [
    "Camera",
    "CameraRanges",
    "look_at",
    "normalize_keypoints",
    "project",
    "sample_cameras",
]


@dataclass
class Camera:
    """A batch of pinhole cameras.

    Attributes:
        rotation: ``(B, 3, 3)`` world -> camera rotation.
        translation: ``(B, 3)``.
        focal: ``(B, 2)`` ``(fx, fy)`` in pixels.
        principal: ``(B, 2)`` ``(cx, cy)`` in pixels.
        image_size: ``(width, height)`` in pixels.
    """

    rotation: Tensor
    translation: Tensor
    focal: Tensor
    principal: Tensor
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return self.rotation.shape[0]

    def __getitem__(self, index: int | slice) -> Camera:
        sl = slice(index, index + 1) if isinstance(index, int) else index
        return Camera(self.rotation[sl], self.translation[sl], self.focal[sl],
                      self.principal[sl], self.image_size)  # fmt: skip

    def to_camera(self, points: Tensor) -> Tensor:
        """World points ``(B, N, 3)`` in camera coordinates."""
        return points @ self.rotation.transpose(1, 2) + self.translation.unsqueeze(1)

    def as_dict(self) -> dict[str, Tensor]:
        """Tensors for a dataset sample (``image_size`` as a ``(2,)`` tensor)."""
        return {
            "rotation": self.rotation,
            "translation": self.translation,
            "focal": self.focal,
            "principal": self.principal,
            "image_size": torch.tensor(self.image_size),
        }


@dataclass(frozen=True)
class CameraRanges:
    """Ranges of the random cameras (angles in degrees, distances in metres).

    Defaults suit a whole body: anywhere around the person, from slightly below to well above,
    2.5 to 8 m away, focal lengths of a 1000-pixel image from wide to normal lenses. For a hand
    use :meth:`hand`.
    """

    azimuth: tuple[float, float] = (-180.0, 180.0)
    elevation: tuple[float, float] = (-15.0, 45.0)
    roll: tuple[float, float] = (-10.0, 10.0)
    distance: tuple[float, float] = (2.5, 8.0)
    focal: tuple[float, float] = (700.0, 2000.0)
    image_size: tuple[int, int] = (1000, 1000)
    #: The subject's centre may be off the optical axis by up to this fraction of the image.
    offset: float = 0.15

    @classmethod
    def hand(cls) -> CameraRanges:
        """Ranges for a hand: any direction, 0.3 to 1 m."""
        return cls(elevation=(-80.0, 80.0), roll=(-180.0, 180.0), distance=(0.3, 1.0))


def look_at(eye: Tensor, target: Tensor, up: Tensor | None = None) -> Tensor:
    """World -> camera rotations ``(B, 3, 3)`` of cameras at ``eye`` looking at ``target``.

    Camera +z points at the target, +y (image down) is as close as possible to ``-up``.
    """
    if up is None:
        up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype, device=eye.device).expand_as(eye)
    z = torch.nn.functional.normalize(target - eye, dim=-1)
    x = torch.linalg.cross(z, up, dim=-1)
    bad = x.norm(dim=-1, keepdim=True) < 1e-6  # looking straight up or down
    alt = torch.tensor([0.0, 1.0, 0.0], dtype=eye.dtype, device=eye.device).expand_as(eye)
    x = torch.where(bad, torch.linalg.cross(z, alt, dim=-1), x)
    x = torch.nn.functional.normalize(x, dim=-1)
    y = torch.linalg.cross(z, x, dim=-1)
    return torch.stack([x, y, z], dim=1)


def _uniform(lo: float, hi: float, n: int, gen: Source) -> Tensor:
    return lo + (hi - lo) * uniform(gen, n)


def sample_cameras(
    centres: Tensor,
    generator: torch.Generator | Sequence[torch.Generator] | CounterRandom,
    ranges: CameraRanges | None = None,
) -> Camera:
    """Random cameras looking at ``centres`` ``(B, 3)`` (the subject in front of each camera).

    Args:
        centres: Points the cameras aim at (e.g. each subject's root joint).
        generator: Source of randomness (the same seed gives the same cameras), one
            generator per camera (:func:`~meshgraph.data.noise.draw_rows`), or a
            :class:`~meshgraph.data.random.CounterRandom` (cameras made on its device).
        ranges: The ranges; default :class:`CameraRanges`.

    Returns:
        A :class:`Camera` batch (float64 parameters on the device of ``centres``).
    """
    r = ranges or CameraRanges()
    n = centres.shape[0]
    centres = centres.detach().to(torch.float64)
    draws = draw_rows(generator, n, lambda m, g: [
        torch.deg2rad(_uniform(*r.azimuth, m, g)),
        torch.deg2rad(_uniform(*r.elevation, m, g)),
        _uniform(*r.distance, m, g),
        torch.deg2rad(_uniform(*r.roll, m, g)),
        _uniform(*r.focal, m, g),
        uniform(g, m, 2) * 2 - 1,
    ])  # fmt: skip
    az, el, dist, roll, f, shift = (t.to(centres.device) for t in draws)
    direction = torch.stack([torch.cos(el) * torch.sin(az), -torch.cos(el) * torch.cos(az),
                             torch.sin(el)], dim=1)  # fmt: skip
    eye = centres + dist.unsqueeze(1) * direction  # azimuth 0: in front of the subject (-y)
    rot = look_at(eye, centres)
    c, s = torch.cos(roll), torch.sin(roll)
    zero, one = torch.zeros_like(c), torch.ones_like(c)
    rz = torch.stack([c, -s, zero, s, c, zero, zero, zero, one], dim=1).view(n, 3, 3)
    rot = rz @ rot
    trans = -(rot @ eye.unsqueeze(-1)).squeeze(-1)
    w, h = r.image_size
    shift = shift * r.offset
    principal = torch.stack([w / 2 + shift[:, 0] * w, h / 2 + shift[:, 1] * h], dim=1)
    return Camera(rot, trans, torch.stack([f, f], dim=1), principal, r.image_size)


def project(points: Tensor, camera: Camera) -> Tensor:
    """Perspective projection of world points ``(B, N, 3)`` to pixels ``(B, N, 2)``.

    Raises:
        ValueError: If a point lies at or behind the camera plane (z <= 1 mm).
    """
    cam = camera.to_camera(points.to(camera.rotation.dtype))
    z = cam[..., 2:3]
    if bool((z <= 1e-3).any()):
        raise ValueError(
            "a point lies behind (or on) the camera plane; the subject must be in front"
        )
    uv = cam[..., :2] / z
    return uv * camera.focal.unsqueeze(1) + camera.principal.unsqueeze(1)


def normalize_keypoints(
    keypoints: Tensor,
    visible: Tensor | None = None,
    *,
    aspect: float = 0.75,
    scale: float = 1.25,
    min_std: float = 1e-6,
) -> tuple[Tensor, Tensor]:
    """Pose2Mesh's input normalisation of 2D keypoints.

    1. A box around the visible joints, widened or heightened to ``width / height = aspect``
       (3:4) and enlarged by ``scale`` about its centre.
    2. Coordinates relative to the box, in ``[0, 1]``.
    3. z-scored per sample and axis (over the visible joints); invisible joints get 0,
       whatever they held (NaN included).

    Args:
        keypoints: ``(B, J, 2)`` pixel coordinates.
        visible: Optional ``(B, J)`` bool mask (default: all visible).
        aspect: Box aspect ratio width / height.
        scale: Box enlargement.
        min_std: Spread below which the input counts as degenerate.

    Returns:
        ``(normalised (B, J, 2), boxes (B, 4) as x0, y0, width, height)``.

    Raises:
        TypeError: If ``keypoints`` is not a floating-point tensor.
        ValueError: On a wrong shape, NaN/inf on a visible joint, fewer than 2 visible joints,
            or all visible joints on one point or on one axis-parallel line.
    """
    if not isinstance(keypoints, Tensor) or not keypoints.is_floating_point():
        got = keypoints.dtype if isinstance(keypoints, Tensor) else type(keypoints).__name__
        raise TypeError(f"keypoints must be a floating-point tensor, got {got}")
    if keypoints.dim() != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must have shape (B, J, 2), got {tuple(keypoints.shape)}")
    if visible is None:
        visible = torch.ones(keypoints.shape[:2], dtype=torch.bool, device=keypoints.device)
    visible = visible.bool()
    if visible.shape != keypoints.shape[:2]:
        raise ValueError(
            f"visible must have shape {tuple(keypoints.shape[:2])}, got {tuple(visible.shape)}"
        )
    if not bool(torch.isfinite(keypoints[visible]).all()):
        raise ValueError("keypoints contain NaN or inf")
    count = visible.sum(1)
    if bool((count < 2).any()):
        raise ValueError(
            f"sample {int(torch.nonzero(count < 2)[0])} has fewer than 2 visible joints"
        )
    # invisible joints may hold anything (NaN from a detector): zero them before any arithmetic
    zero = torch.zeros((), dtype=keypoints.dtype, device=keypoints.device)
    keypoints = torch.where(visible.unsqueeze(-1), keypoints, zero)
    big = torch.finfo(keypoints.dtype).max
    m = visible.unsqueeze(-1)
    lo = torch.where(m, keypoints, big).amin(1)
    hi = torch.where(m, keypoints, -big).amax(1)
    size = hi - lo
    centre = (hi + lo) / 2
    w = torch.maximum(size[:, 0], size[:, 1] * aspect)
    h = w / aspect
    w, h = w * scale, h * scale
    boxes = torch.stack([centre[:, 0] - w / 2, centre[:, 1] - h / 2, w, h], dim=1)
    if bool((w <= 0).any()):
        raise ValueError(f"sample {int(torch.nonzero(w <= 0)[0])}: all visible joints on one point")
    rel = (keypoints - boxes[:, None, :2]) / boxes[:, None, 2:]
    mf = m.to(keypoints.dtype)
    mean = (rel * mf).sum(1, keepdim=True) / count.view(-1, 1, 1)
    var = (((rel - mean) * mf) ** 2).sum(1, keepdim=True) / count.view(-1, 1, 1)
    std = var.sqrt()
    if bool((std < min_std).any()):
        raise ValueError("degenerate keypoints: all visible joints on one line along an axis")
    out = torch.where(m, (rel - mean) / std, torch.zeros_like(rel))
    return out, boxes
