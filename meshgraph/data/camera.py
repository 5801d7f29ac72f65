"""Random perspective cameras around a subject.

The cameras, projection and Pose2Mesh's 2D normalisation live in :mod:`meshgraph.geometry`
(its docstring gives the frames); they are importable from here too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from meshgraph.data.noise import draw_rows
from meshgraph.data.random import CounterRandom, Source, uniform
from meshgraph.geometry import Camera as Camera  # moved to meshgraph.geometry
from meshgraph.geometry import look_at as look_at
from meshgraph.geometry import normalize_keypoints as normalize_keypoints
from meshgraph.geometry import project as project

__all__ = [
    "CameraRanges",
    "sample_cameras",
]


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
