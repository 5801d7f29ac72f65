"""Geometry: rotations, cameras, projection, keypoint normalisation, camera fitting, joints.

The one home of the geometric helpers that bodies, data, losses and models share; it depends
only on the topology layer. The modules these functions lived in before
(``meshgraph.bodies.base``, ``meshgraph.data.camera``, ``meshgraph.data.poses``,
``meshgraph.losses``, ``meshgraph.models.pose2mesh``) still import them.

Frames: world coordinates are metres with z up (Anny's frame). A camera has a rotation ``R``
(world -> camera), a translation ``t`` (``x_cam = R x_world + t``), focal lengths ``(fx, fy)``
and a principal point ``(cx, cy)`` in pixels; it looks along its +z axis, image x to the right
and image y down (OpenCV convention). Predicted meshes and joints are root-relative, in camera
axes, in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from meshgraph.mesh import check_vertices

__all__ = [
    "DEFAULT_BOX_ASPECT",
    "Camera",
    "axis_angle_to_matrix",
    "fit_weak_perspective",
    "frame_from_joints",
    "look_at",
    "matrix_to_axis_angle",
    "mirror_permutation",
    "normalize_keypoints",
    "project",
    "regress_joints",
]


# ------------------------------------------------------------------ rotations
def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rotation matrices from axis-angle vectors (Rodrigues), ``(..., 3) -> (..., 3, 3)``.

    Differentiable, exact at zero (a Taylor expansion is used below 1e-4 rad).

    Example:
        >>> r = axis_angle_to_matrix(torch.tensor([0.0, 0.0, torch.pi / 2]))
        >>> (r @ torch.tensor([1.0, 0.0, 0.0])).round(decimals=6).abs().tolist()
        [0.0, 1.0, 0.0]
    """
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis-angle must have shape (..., 3), got {tuple(axis_angle.shape)}")
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True).unsqueeze(-1)  # (..., 1, 1)
    theta = theta2.clamp_min(1e-16).sqrt()
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-16))
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).view(*x.shape, 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """Axis-angle vectors ``(..., 3)`` of rotation matrices ``(..., 3, 3)`` (angles < pi)."""
    trace = matrix[..., 0, 0] + matrix[..., 1, 1] + matrix[..., 2, 2]
    cos = ((trace - 1) / 2).clamp(-1.0, 1.0)
    angle = torch.acos(cos)
    vec = torch.stack(
        [
            matrix[..., 2, 1] - matrix[..., 1, 2],
            matrix[..., 0, 2] - matrix[..., 2, 0],
            matrix[..., 1, 0] - matrix[..., 0, 1],
        ],
        dim=-1,
    )
    sin = torch.sin(angle)
    small = sin.abs() < 1e-6
    factor = torch.where(small, 0.5 + angle**2 / 12, angle / (2 * sin.clamp_min(1e-12)))
    out = vec * factor.unsqueeze(-1)
    # near pi the antisymmetric part vanishes: R = 2 a a^T - I, so a row of (R + I) / 2 = a a^T
    # taken at its largest diagonal entry, divided by the square root of that entry, is +-a
    near_pi = small & (cos < 0)
    if bool(near_pi.any()):
        sym = (matrix[near_pi] + torch.eye(3, dtype=matrix.dtype, device=matrix.device)) / 2
        i = sym.diagonal(dim1=-2, dim2=-1).argmax(-1)
        row = sym[torch.arange(sym.shape[0]), i]
        axis = row / row.gather(-1, i.unsqueeze(-1)).clamp_min(1e-12).sqrt()
        out[near_pi] = torch.nn.functional.normalize(axis, dim=-1) * angle[near_pi].unsqueeze(-1)
    return out


# ------------------------------------------------------------------ cameras
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


# ------------------------------------------------------------------ 2D keypoints
#: The input box's width / height of :func:`normalize_keypoints` (3:4, the paper's), which the
#: datasets normalise in.
DEFAULT_BOX_ASPECT = 0.75


def normalize_keypoints(
    keypoints: Tensor,
    visible: Tensor | None = None,
    *,
    aspect: float = DEFAULT_BOX_ASPECT,
    scale: float = 1.25,
    min_std: float = 1e-6,
    isotropic: bool = False,
) -> tuple[Tensor, Tensor]:
    """Pose2Mesh's input normalisation of 2D keypoints.

    1. A box around the visible joints, widened or heightened to ``width / height = aspect``
       (3:4) and enlarged by ``scale`` about its centre.
    2. Coordinates relative to the box, in ``[0, 1]``.
    3. z-scored per sample and axis (over the visible joints); invisible joints get 0,
       whatever they held (NaN included).

    With ``isotropic=True`` step 3 divides both axes by one spread, the root mean square of
    the two axes' standard deviations, so that the pose keeps its proportions (up to the
    box's fixed aspect, the same for every sample): the paper's per-axis scores make every
    pose as wide as it is tall, and a body turned sideways (its shoulders foreshortened) or
    with its arms spread then differs from another only in the joints' arrangement, not in
    its width over its height.

    Args:
        keypoints: ``(B, J, 2)`` pixel coordinates.
        visible: Optional ``(B, J)`` bool mask (default: all visible).
        aspect: Box aspect ratio width / height.
        scale: Box enlargement.
        min_std: Spread below which the input counts as degenerate.
        isotropic: One spread for both axes instead of one per axis (see above).

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
    if isotropic:  # the root mean square of the two axes' spreads, for both
        std = var.mean(-1, keepdim=True).sqrt()
    out = torch.where(m, (rel - mean) / std, torch.zeros_like(rel))
    return out, boxes


def fit_weak_perspective(
    points_3d: Tensor, keypoints_2d: Tensor, visible: Tensor | None = None
) -> Tensor:
    """Least-squares weak-perspective camera ``(s, tx, ty)`` with ``u = s * X[:, :2] + t``.

    Args:
        points_3d: ``(B, J, 3)`` 3D points in camera axes.
        keypoints_2d: ``(B, J, 2)`` their pixels.
        visible: Optional ``(B, J)`` mask of the points to fit on (the others may hold NaN).

    Returns:
        ``(B, 3)``.
    """
    x = points_3d[..., :2]
    w = (
        torch.ones(x.shape[:2], dtype=x.dtype, device=x.device)
        if visible is None
        else visible.to(x.dtype)
    )
    used = w[..., None] > 0  # points left out may hold anything (NaN): zero them first
    x = torch.where(used, x, torch.zeros((), dtype=x.dtype, device=x.device))
    keypoints_2d = torch.where(
        used, keypoints_2d, torch.zeros((), dtype=keypoints_2d.dtype, device=keypoints_2d.device)
    )
    n = w.sum(1, keepdim=True).clamp_min(1.0)
    xm = (x * w[..., None]).sum(1) / n
    um = (keypoints_2d * w[..., None]).sum(1) / n
    dx = (x - xm[:, None]) * w[..., None]
    du = keypoints_2d - um[:, None]
    s = (dx * du).sum((1, 2)) / (dx * dx).sum((1, 2)).clamp_min(1e-12)
    t = um - s[:, None] * xm
    return torch.cat([s[:, None], t], dim=1)


# ------------------------------------------------------------------ joints
def regress_joints(vertices: Tensor, regressor: Tensor, *, validate: bool = True) -> Tensor:
    """Joints ``J = R V`` from vertices ``(B, V, 3)`` and a ``(J, V)`` regressor.

    The one joint regression of the package: the model's forward pass, the synthetic data,
    the evaluation and the losses all call it. A dense regressor is applied as
    ``einsum("jv,bvc->bjc")``; a torch sparse (COO/CSR) one as a sparse product.

    Args:
        vertices: ``(B, V, 3)`` (or ``(V, 3)``: a batch of one).
        regressor: ``(J, V)``, dense or sparse; cast to the vertices' dtype.
        validate: Check the vertices' shape and finiteness (the NaN scan costs a device sync
            on a GPU: hot paths whose vertices come from the network pass ``False``).

    Returns:
        ``(B, J, 3)`` joints.

    Example:
        >>> v = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 4.0, 6.0]]])
        >>> regress_joints(v, torch.tensor([[0.5, 0.5]]))
        tensor([[[1., 2., 3.]]])
    """
    if validate:
        vertices = check_vertices(vertices, None, name="vertices")
    elif vertices.dim() == 2:
        vertices = vertices.unsqueeze(0)
    if regressor.dim() != 2 or regressor.shape[1] != vertices.shape[1]:
        raise ValueError(
            f"regressor must have shape (J, {vertices.shape[1]}) for vertices "
            f"{tuple(vertices.shape)}, got {tuple(regressor.shape)}"
        )
    reg = regressor.to(vertices.dtype)
    if not (reg.is_sparse or reg.is_sparse_csr):
        return torch.einsum("jv,bvc->bjc", reg, vertices)
    b, v, _ = vertices.shape
    flat = vertices.transpose(0, 1).reshape(v, b * 3)
    return torch.sparse.mm(reg, flat).view(-1, b, 3).transpose(0, 1)


def mirror_permutation(vertices: Tensor, *, axis: int = 0, atol: float = 1e-3) -> Tensor:
    """The vertex each vertex becomes when a symmetric mesh is mirrored along ``axis``.

    For a left/right symmetric template (a body's rest pose in meshgraph's world frame, x the
    subject's left), vertex ``perm[i]`` lies where vertex ``i`` lands when the mesh is
    mirrored across the plane through its centroid perpendicular to ``axis``; vertices on
    the plane map to themselves. Mirroring a posed mesh of the same topology is then
    ``(vertices * flip)[:, perm]`` with ``flip`` negating ``axis``.

    Args:
        vertices: ``(V, 3)`` template vertices.
        axis: The coordinate the mirror negates.
        atol: Largest distance (in the vertices' units) between a mirrored vertex and the
            vertex it is matched to.

    Returns:
        ``(V,)`` int64 permutation, its own inverse.

    Raises:
        ValueError: On a wrong shape or axis, NaN/inf, or a mesh that is not mirror
            symmetric (a mirrored vertex farther than ``atol`` from every vertex, or two
            vertices matched to the same one).

    Example:
        >>> v = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
        >>> mirror_permutation(v + 5.0)  # the plane is where the mesh is
        tensor([2, 1, 0])
    """
    if isinstance(vertices, Tensor) and vertices.dim() != 2:
        raise ValueError(f"vertices must have shape (V, 3), got {tuple(vertices.shape)}")
    v = check_vertices(vertices, None, name="vertices")[0]
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis!r}")
    v = v.detach().double().cpu()
    mirrored = v.clone()
    mirrored[:, axis] = 2.0 * v[:, axis].mean() - v[:, axis]
    dist = torch.empty(len(v), dtype=torch.float64)
    perm = torch.empty(len(v), dtype=torch.long)
    for start in range(0, len(v), 4096):  # (chunk, V) distances: bounded memory
        d, i = torch.cdist(mirrored[start : start + 4096], v).min(1)
        dist[start : start + 4096], perm[start : start + 4096] = d, i
    worst = int(dist.argmax())
    if float(dist[worst]) > atol:
        raise ValueError(
            f"the mesh is not mirror symmetric along axis {axis}: vertex {worst} mirrored lies "
            f"{float(dist[worst]):.3g} from the nearest vertex (atol={atol:g})"
        )
    if not torch.equal(perm[perm], torch.arange(len(v))):
        raise ValueError(
            f"the mesh is not mirror symmetric along axis {axis}: the nearest mirrored "
            "vertices are not one-to-one (vertices closer than atol to each other?)"
        )
    return perm


def frame_from_joints(
    joints: Tensor, up: tuple[int, int], side: tuple[int, int], eps: float = 1e-6
) -> Tensor:
    """A rotation per sample that follows the joints ``(B, J, 3)``.

    Columns: the *side* axis (``joints[side[0]] -> joints[side[1]]``) made orthogonal to the
    *up* axis (``joints[up[0]] -> joints[up[1]]``), the up axis, and their cross product.
    ``joints @ R`` gives the joints in that frame; ``y @ R.T`` maps frame points back. A side
    axis parallel to the up axis (degenerate input) falls back to a fixed perpendicular.
    :func:`meshgraph.models.joint_frame` names the joints of each joint set.
    """
    a, b = up
    c, d = side
    up_axis = torch.nn.functional.normalize(joints[:, b] - joints[:, a], dim=-1, eps=eps)
    side_axis = joints[:, d] - joints[:, c]
    side_axis = side_axis - (side_axis * up_axis).sum(-1, keepdim=True) * up_axis
    for axis in (0, 1):  # degenerate side axis: a fixed direction perpendicular to up
        fallback = torch.zeros_like(up_axis)
        fallback[:, axis] = 1.0
        fallback = fallback - (fallback * up_axis).sum(-1, keepdim=True) * up_axis
        bad = side_axis.norm(dim=-1, keepdim=True) < eps
        side_axis = torch.where(bad, fallback, side_axis)
    side_axis = torch.nn.functional.normalize(side_axis, dim=-1, eps=eps)
    third = torch.linalg.cross(side_axis, up_axis, dim=-1)
    return torch.stack([side_axis, up_axis, third], dim=-1)
