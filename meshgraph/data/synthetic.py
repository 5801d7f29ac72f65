"""A synthetic 2D-pose -> 3D-mesh dataset made by posing a body model and filming it.

The body model is Anny (body or hand) or one of the SMPL family (SMPL, SMPL-H, MANO from the
user's licensed files): the pose tables of :mod:`meshgraph.data.poses` drive either rig, and
the model's vertices are turned into meshgraph's z-up world before the camera films them.

Every sample is a deterministic function of ``(seed, index)``: a pose (canonical pose plus
anatomical perturbation), a shape, and a random camera looking at the subject. The joints of
the chosen joint set are regressed from the posed mesh, projected to pixels, perturbed with
detector-like noise (deterministic per ``(noise_seed, index)``; :meth:`set_epoch` draws new
noise for a new epoch) and normalised as Pose2Mesh does.

A sample is a dict of tensors:

* ``keypoints_2d`` ``(J, 2)``: the network input (normalised noisy 2D joints; 0 where a joint
  is not visible);
* ``visible`` ``(J,)``: bool, the joints a detector reported (all, unless
  :attr:`~SyntheticPoseMeshDataset.detector` or ``drop_extra`` makes some go missing);
* ``exact`` ``()``: bool, whether the input is the exact keypoints (no noise and no detector
  failures: a set without noise, or a sample that ``clean_fraction`` kept), for models that
  are told (``Pose2MeshConfig.exactness_input``);
* ``keypoints_2d_pixels`` ``(J, 2)`` the noisy pixels, ``keypoints_2d_gt`` the clean ones;
* ``box`` ``(4,)``: the normalisation box (x0, y0, width, height) in pixels;
* ``joints_3d`` ``(J, 3)``: root-relative joints in camera axes, metres;
* ``mesh_joints_3d`` ``(J', 3)``: the model's mesh-loss joint set (Human3.6M for bodies, Hand-21
  for hands), root-relative, camera axes;
* ``vertices`` ``(V, 3)``: root-relative vertices in camera axes, metres;
* ``root`` ``(3,)``: the root joint in camera coordinates (metres);
* ``camera_rotation`` ``(3, 3)``, ``camera_translation`` ``(3,)``, ``focal`` ``(2,)``,
  ``principal`` ``(2,)``; ``pose`` ``(num_bones, 3)``, ``shape`` ``(6,)`` (Anny's phenotypes;
  ``(num_betas,)`` for the SMPL family).

With :attr:`~SyntheticPoseMeshDataset.with_mesh` set to ``False`` a batch carries neither
``vertices`` nor ``mesh_joints_3d``: only the few hundred vertices the joint regressor reads are
posed (what PoseNet's training stage needs; the :class:`~meshgraph.training.Trainer` asks for
it), and every other key is the same up to float rounding.

Generation is batched: a :class:`torch.utils.data.DataLoader` calls :meth:`__getitems__` with a
batch's indices and the body model runs once per batch. An optional on-disk cache stores the
noise-free part of every sample in shards (``.pt``), written atomically behind a progress bar;
a shard from another configuration or a corrupt one is rebuilt with a warning.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from meshgraph.bodies.base import BodyModel
from meshgraph.bodies.joint_sets import extra_joints, get_joint_set
from meshgraph.bodies.registry import DEFAULT_HAND_SIDE
from meshgraph.data.camera import CameraRanges, sample_cameras
from meshgraph.data.noise import (
    H36M_DETECTOR_STD,
    DetectorNoise,
    detector_noise,
    draw_rows,
    gaussian_noise,
    posefix_noise,
)
from meshgraph.data.poses import (
    ANNY_REST_ANGLES,
    BODY_CANONICAL,
    BODY_LIMITS,
    BONE_MAPS,
    HAND_CANONICAL,
    HAND_CURL,
    BetaSampler,
    BodyPoseSampler,
    HandPoseSampler,
    ShapeSampler,
)
from meshgraph.data.random import CounterRandom, uniform
from meshgraph.geometry import normalize_keypoints, project, regress_joints
from meshgraph.io import atomic_write, load_torch

__all__ = [
    "SyntheticPoseMeshDataset",
    "collate",
    "default_pose_sampler",
    "default_shape_sampler",
]

_VERSION = 2  # 2: counter-based random numbers (the same on every device)
_NOISE_KINDS = ("auto", "none", "gaussian", "posefix")
#: ``drop_extra`` leaves a sample its joints beyond COCO-19 when fewer than this would be left
#: without them (as :class:`~meshgraph.data.noise.DetectorNoise`'s ``min_visible``).
_MIN_LEFT_WITHOUT_EXTRA = 6
_GEOMETRY_KEYS = (
    "keypoints_2d_gt", "joints_3d", "mesh_joints_3d", "vertices", "root", "camera_rotation",
    "camera_translation", "focal", "principal", "pose", "shape",
)  # fmt: skip


# streams of the counter-based random numbers (noise: one stream per epoch from 2 on)
_STREAM_POSE, _STREAM_CAMERA, _STREAM_NOISE = 0, 1, 2


def _bone_map(model: BodyModel) -> dict[str, str] | None:
    from meshgraph.bodies.anny_model import AnnyModel

    if isinstance(model, AnnyModel):
        return None
    kind = getattr(model, "kind", model.name)
    if kind not in BONE_MAPS:
        raise ValueError(
            f"no bone map for the {model.name} rig; pass a pose_sampler built with a bone_map "
            f"(known rigs: Anny, {', '.join(BONE_MAPS)})"
        )
    return BONE_MAPS[kind]


def default_pose_sampler(model: BodyModel, **options: Any) -> BodyPoseSampler | HandPoseSampler:
    """The pose sampler the dataset uses for ``model`` (Anny, SMPL, SMPL-H or MANO).

    Args:
        model: The body model.
        **options: :class:`BodyPoseSampler` fields for bodies (``blend``, ``uniform``,
            ``noise_std``...), :class:`HandPoseSampler` fields for hands.

    Raises:
        ValueError: If the model has no rig the pose tables know, or an option is not a field
            of its sampler.
    """
    for attr in ("bone_labels", "bone_parents"):
        if not hasattr(model, attr):
            raise ValueError(f"{model.name} exposes no rig ({attr}): cannot sample its poses")
    bone_map = _bone_map(model)
    world = None if bone_map is None else model.world_rotation
    args = (model.bone_labels, model.rest_joints(), model.bone_parents)
    cls = HandPoseSampler if model.is_hand else BodyPoseSampler
    fixed = {"bone_labels", "rest_heads", "bone_parents", "bone_map", "world_rotation", "side"}
    known = {f.name for f in fields(cls) if f.init} - fixed
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(
            f"{cls.__name__} has no option {', '.join(map(repr, unknown))}; known: {sorted(known)}"
        )
    side = {"side": model.side or DEFAULT_HAND_SIDE} if model.is_hand else {}
    return cls(*args, bone_map=bone_map, world_rotation=world, **side, **options)


def default_shape_sampler(model: BodyModel, **options: Any) -> ShapeSampler | BetaSampler:
    """Adult Anny phenotypes for Anny; Gaussian betas for the SMPL family.

    Args:
        model: The body model.
        **options: :class:`~meshgraph.data.poses.ShapeSampler` fields (Anny only), e.g.
            ``height_sd=0.065``.

    Raises:
        ValueError: For options a model's sampler does not have (Anny's options for an
            SMPL-family model, or unknown names).
    """
    num_betas = getattr(model, "num_betas", None)
    if num_betas is not None:
        if options:
            raise ValueError(
                f"{model.name} draws Gaussian shape coefficients (betas): the shape options "
                f"{sorted(options)} are for Anny's phenotypes"
            )
        return BetaSampler(num_betas)
    known = {f.name for f in fields(ShapeSampler)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"ShapeSampler has no option {', '.join(map(repr, unknown))}; "
                         f"known: {sorted(known)}")  # fmt: skip
    return ShapeSampler(**options)


def collate(samples: Sequence[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack a list of samples into a batch dict (the :meth:`__getitems__` output as is)."""
    if isinstance(samples, dict):
        return samples
    return {k: torch.stack([s[k] for s in samples]) for k in samples[0]}


def _probability(name: str, value: float) -> float:
    """``value`` as a float, refused unless it is a number in [0, 1] (the message names it)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:  # NaN fails too
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


class SyntheticPoseMeshDataset(torch.utils.data.Dataset):
    """Synthetic (2D keypoints, 3D joints, mesh) samples from a body or hand model.

    Args:
        model: An :class:`~meshgraph.bodies.AnnyModel` (``"body"`` or a hand) or an
            :class:`~meshgraph.bodies.SMPLModel` (SMPL, SMPL-H, MANO).
        length: Number of samples.
        joint_set: Input joint set: ``"coco"``, ``"body29"`` or ``"h36m"`` for bodies,
            ``"hand"`` for hands.
        seed: Seed of poses, shapes and cameras.
        noise: ``"auto"`` (PoseFix-style for COCO and Body-29, Gaussian otherwise),
            ``"gaussian"``, ``"posefix"`` or ``"none"``.
        noise_seed: Seed of the 2D noise (default ``seed``).
        detector: Optional :class:`~meshgraph.data.noise.DetectorNoise`: after the noise
            above, joints go missing (``visible`` is ``False``), left and right labels get
            swapped and joints get offsets, as a real detector does. An attribute that may be
            changed at any time (it draws from the same per-epoch noise stream, after the
            other noise, whose numbers it leaves unchanged).
        clean_fraction: Chance that a sample keeps its exact 2D keypoints, every joint
            visible, as if neither the noise nor the detector had touched it: a model trained
            on noisy keypoints alone learns the answer to noisy ones, which blurs its answer
            to exact ones. An attribute that may be changed at any time (the choice draws one
            number per sample from the per-epoch noise stream, after the other noise, whose
            numbers it leaves unchanged: the samples it does not pick stay as they were).
        drop_extra: Chance that a sample's joints beyond COCO-19
            (:func:`~meshgraph.bodies.joint_sets.extra_joints`: Body-29's heels, toes,
            knuckles and thumbs) are all missing, exact samples included, as from a COCO-17
            detector or COCO-17 ground truth; a sample left with fewer than 6 joints keeps
            them. Only for joint sets that have such joints. An attribute that may be changed
            at any time (one number per sample from the per-epoch noise stream, after every
            other draw, whose numbers it leaves unchanged).
        pose_sampler: Default: :func:`default_pose_sampler` (a :class:`BodyPoseSampler` or
            :class:`HandPoseSampler` for the model's rig).
        shape_sampler: Default: :func:`default_shape_sampler` (adult Anny phenotypes, or
            SMPL betas).
        camera_ranges: Default: :class:`CameraRanges` (or its ``hand()`` ranges).
        cache_dir: Optional folder of the on-disk cache. A folder that cannot be created or
            written gives a warning, and samples are generated without it (the same samples).
        shard_size: Samples per cache shard.
        progress: Show a progress bar while building the cache.
        with_mesh: Whether batches carry ``vertices`` and ``mesh_joints_3d`` (see the module
            docstring); an attribute that may be changed at any time.
        isotropic_input: Normalise the 2D input with one spread for both axes
            (:func:`~meshgraph.geometry.normalize_keypoints`, ``isotropic=True``), as a model
            whose :attr:`~meshgraph.models.Pose2MeshConfig.isotropic_input` is set expects;
            ``False``: the paper's per-axis scores. An attribute that may be changed at any
            time (the normalisation runs per batch; the geometry and its cache do not
            depend on it).
        device: Where batches are made (default: where the body model lives): the body model
            (moved there, in place), the regressors, the cameras, the projection, the 2D noise
            and the normalisation run on it, and batches come out on it. Poses and shapes are
            drawn on the CPU (a few numbers per sample).
            The random numbers are counter-based (:class:`~meshgraph.data.random.CounterRandom`),
            so a sample is the same on every device up to float rounding.

    Raises:
        ValueError: For an unknown joint set or one the model does not provide, a bad noise
            kind or a non-positive length.
    """

    def __init__(
        self,
        model: BodyModel,
        length: int,
        *,
        joint_set: str = "coco",
        seed: int = 0,
        noise: str = "auto",
        noise_seed: int | None = None,
        detector: DetectorNoise | None = None,
        clean_fraction: float = 0.0,
        drop_extra: float = 0.0,
        pose_sampler: BodyPoseSampler | HandPoseSampler | None = None,
        shape_sampler: ShapeSampler | BetaSampler | None = None,
        camera_ranges: CameraRanges | None = None,
        cache_dir: str | os.PathLike | None = None,
        shard_size: int = 512,
        progress: bool = True,
        with_mesh: bool = True,
        isotropic_input: bool = False,
        device: str | torch.device | None = None,
    ) -> None:
        if not isinstance(model, BodyModel):
            raise TypeError(f"model must be a BodyModel, got {type(model).__name__}")
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        if noise not in _NOISE_KINDS:
            raise ValueError(f"noise must be one of {_NOISE_KINDS}, got {noise!r}")
        from meshgraph.devices import check_device

        tensors = [*model.parameters(), *model.buffers()]
        if device is None:  # where the body model lives
            device = tensors[0].device if tensors else "cpu"
        self.device = check_device(device)
        if any(t.device != self.device for t in tensors):
            model = model.to(self.device)
        self.model = model
        self.length = int(length)
        self.joint_set = get_joint_set(joint_set)
        if self.joint_set.name not in model.joint_set_names:
            raise ValueError(
                f"{model.name} provides joint sets {list(model.joint_set_names)}, "
                f"not {self.joint_set.name!r}"
            )
        self.is_hand = model.is_hand
        self.mesh_joint_set = get_joint_set(model.mesh_joint_set)
        for name, value in (("seed", seed), ("noise_seed", noise_seed)):
            if value is not None and (
                not isinstance(value, int | np.integer) or isinstance(value, bool)
            ):
                raise TypeError(f"{name} must be an integer, got {value!r}")
        self.seed = int(seed)
        self.noise_seed = self.seed if noise_seed is None else int(noise_seed)
        self._epoch = 0
        if noise == "auto":
            noise = "posefix" if self.joint_set.name in ("coco", "body29") else "gaussian"
        if noise == "posefix" and self.joint_set.name not in ("coco", "body29"):
            raise ValueError(
                f"posefix noise needs the coco or body29 joint set, not {self.joint_set.name!r}"
            )
        self.noise = noise
        if detector is not None and not isinstance(detector, DetectorNoise):
            raise TypeError(f"detector must be a DetectorNoise, got {type(detector).__name__}")
        self.detector = detector
        self.clean_fraction = clean_fraction
        self._extra = torch.tensor(extra_joints(self.joint_set), dtype=torch.long)
        self.drop_extra = drop_extra
        self.pose_sampler = pose_sampler or default_pose_sampler(model)
        self.shape_sampler = shape_sampler or default_shape_sampler(model)
        template = model.template_vertices().detach().float().cpu().numpy().tobytes()
        self._template_hash = hashlib.sha256(template).hexdigest()[:16]  # the mesh, for the cache
        world = model.world_rotation.double()
        self._world = None if torch.equal(world, torch.eye(3, dtype=world.dtype)) else world
        self.camera_ranges = camera_ranges or (
            CameraRanges.hand() if self.is_hand else CameraRanges()
        )
        self.regressor = model.joint_regressor(self.joint_set).to(self.device)
        self.mesh_regressor = model.joint_regressor(self.mesh_joint_set).to(self.device)
        # the vertices the input joints are regressed from (posed alone without the mesh)
        self._support = torch.nonzero(self.regressor.abs().sum(0) > 0)[:, 0]
        self.with_mesh = bool(with_mesh)
        self.isotropic_input = bool(isotropic_input)
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self._cache_writable = True
        self.shard_size = int(shard_size)
        self.progress = progress
        self._shards: dict[int, dict[str, Tensor]] = {}
        if self.cache_dir is not None:
            self._build_cache()

    @property
    def clean_fraction(self) -> float:
        """Chance that a sample keeps its exact 2D keypoints (see the class docstring)."""
        return self._clean_fraction

    @clean_fraction.setter
    def clean_fraction(self, value: float) -> None:
        self._clean_fraction = _probability("clean_fraction", value)

    @property
    def drop_extra(self) -> float:
        """Chance that a sample's joints beyond COCO-19 are missing (see the class docstring)."""
        return self._drop_extra

    @drop_extra.setter
    def drop_extra(self, value: float) -> None:
        value = _probability("drop_extra", value)
        if value > 0 and len(self._extra) == 0:
            raise ValueError(
                f"drop_extra: the {self.joint_set.name} joint set has no joints beyond COCO-19"
            )
        self._drop_extra = value

    # ------------------------------------------------------------------ identity
    def config(self) -> dict[str, Any]:
        """Everything the geometry of a sample depends on (hashed to key the cache)."""
        sampler = self.pose_sampler
        return {
            "version": _VERSION,
            "model": self.model.name,
            "num_vertices": self.model.num_vertices,
            "template": self._template_hash,
            "joint_set": self.joint_set.name,
            "seed": self.seed,
            "camera": asdict(self.camera_ranges),
            "shape": {"type": type(self.shape_sampler).__name__, **asdict(self.shape_sampler)},
            "pose": {
                "type": type(sampler).__name__,
                "canonical": list(sampler.canonical),
                "params": {
                    k: getattr(sampler, k)
                    for k in (
                        "noise_std",
                        "global_rotation",
                        "finger_curl",
                        "curl_std",
                        "spread_deg",
                        "side",
                        "blend",
                        "uniform",
                        "mirror",
                    )
                    # the wider priors only when on: the default's hash (and cache) stays
                    if hasattr(sampler, k)
                    and not (k in ("blend", "uniform", "mirror") and not getattr(sampler, k))
                },
                "bone_map": getattr(sampler, "bone_map", None),
                "tables": [
                    BODY_LIMITS,
                    BODY_CANONICAL,
                    HAND_CURL,
                    HAND_CANONICAL,
                    ANNY_REST_ANGLES,
                ],
            },
        }

    def config_hash(self) -> str:
        """Hash of :meth:`config`."""
        text = json.dumps(self.config(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Draw the 2D noise of ``epoch`` (geometry stays the same)."""
        self._epoch = int(epoch)

    # ------------------------------------------------------------------ generation
    def _check_indices(self, indices: Sequence[int]) -> list[int]:
        out = []
        for i in indices:
            if isinstance(i, Tensor) and i.numel() == 1 and not i.is_floating_point():
                i = int(i)
            if not isinstance(i, int | np.integer) or isinstance(i, bool):
                raise TypeError(f"dataset indices must be integers, got {i!r}")
            i = int(i)
            if i < 0:
                i += self.length
            if not 0 <= i < self.length:
                raise IndexError(f"index {i} out of range for a dataset of {self.length}")
            out.append(i)
        return out

    def generate(self, indices: Sequence[int], mesh: bool = True) -> dict[str, Tensor]:
        """The noise-free geometry of ``indices`` (batched, ignoring the cache).

        With ``mesh=False`` only the vertices of the input joints' regressor are posed, and
        ``vertices`` and ``mesh_joints_3d`` are left out.
        """
        indices = self._check_indices(indices)
        dev = self.device
        # counter-based random numbers: a sample depends on (seed, index) only, on any device.
        # Poses and shapes (a few numbers per sample) are drawn on the CPU, the rest on `dev`.
        source = CounterRandom(self.seed, indices, _STREAM_POSE)
        pose = self.pose_sampler.from_draws(self.pose_sampler.draw(len(indices), source))
        shape = self.shape_sampler.sample(len(indices), source)
        dtype = self.model.dtype
        pose_t, shape_t = pose.to(device=dev, dtype=dtype), shape.to(device=dev, dtype=dtype)
        with torch.no_grad():
            if mesh:
                verts = self.model(pose_t, shape_t)
                regressor = self.regressor.to(dev, dtype)
            else:
                verts = self.model.posed_vertices(self._support, pose_t, shape_t)
                regressor = self.regressor[:, self._support].to(dev, dtype)
            if self._world is not None:  # into meshgraph's z-up world
                verts = verts @ self._world.to(device=dev, dtype=dtype).T
            joints = regress_joints(verts, regressor, validate=False)
            if mesh:
                mesh_reg = self.mesh_regressor.to(dev, dtype)
                mesh_joints = regress_joints(verts, mesh_reg, validate=False)
        root_world = joints[:, self.joint_set.root].double()
        cams = CounterRandom(self.seed, indices, _STREAM_CAMERA, device=dev)
        cam = sample_cameras(root_world, cams, self.camera_ranges)
        kp = project(joints.double(), cam)
        rot = cam.rotation
        root_cam = cam.to_camera(root_world[:, None])[:, 0]

        rot_t = rot.transpose(1, 2).float()
        root_f = root_world.float()[:, None]

        def to_cam_rel(x: Tensor) -> Tensor:
            return torch.baddbmm(-(root_f @ rot_t), x.float(), rot_t)  # (x - root) R^T

        out = {
            "keypoints_2d_gt": kp.float(),
            "joints_3d": to_cam_rel(joints),
            "mesh_joints_3d": to_cam_rel(mesh_joints) if mesh else None,
            "vertices": to_cam_rel(verts) if mesh else None,
            "root": root_cam.float(),
            "camera_rotation": rot.float(),
            "camera_translation": cam.translation.float(),
            "focal": cam.focal.float(),
            "principal": cam.principal.float(),
            "pose": pose.float(),
            "shape": shape.float(),
        }
        return {k: v for k, v in out.items() if v is not None}

    def canonical_names(self, indices: Sequence[int]) -> list[str]:
        """The canonical pose each sample of ``indices`` was perturbed from (``"sitting"``, ...)."""
        indices = self._check_indices(indices)
        source = CounterRandom(self.seed, indices, _STREAM_POSE)
        which = self.pose_sampler.draw(len(indices), source)["which"]
        return [self.pose_sampler.canonical[int(w)] for w in which]

    def _noisy(self, clean: Tensor, indices: list[int]) -> tuple[Tensor, Tensor, Tensor]:
        """The network's 2D input in pixels, its visibility ``(B, J)`` and exactness ``(B,)``."""
        visible = torch.ones(clean.shape[:2], dtype=torch.bool, device=clean.device)
        exact = torch.ones(clean.shape[0], dtype=torch.bool, device=clean.device)
        if self.noise == "none" and self.detector is None and self.drop_extra == 0.0:
            return clean, visible, exact
        gens = CounterRandom(self.noise_seed, indices, _STREAM_NOISE + self._epoch,
                             device=clean.device)  # fmt: skip
        x, visible, exact = self._detected(clean, gens, len(indices))
        if self.drop_extra > 0.0:  # after every other draw, whose numbers it leaves unchanged
            u = draw_rows(gens, len(indices), lambda n, g: [uniform(g, n, dtype=torch.float64)])
            hide = u[0].to(clean.device) < self.drop_extra
            extra = self._extra.to(clean.device)
            kept = visible.clone()
            kept[:, extra] = False
            # a sample left with fewer than MIN_LEFT joints keeps its extra ones
            hide &= kept.sum(1) >= _MIN_LEFT_WITHOUT_EXTRA
            visible = torch.where(hide[:, None], kept, visible)
        return x, visible, exact

    def _detected(
        self, clean: Tensor, gens: CounterRandom, n: int
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The noise, the detector failures and the exact samples of :meth:`_noisy`."""
        visible = torch.ones(clean.shape[:2], dtype=torch.bool, device=clean.device)
        exact = torch.ones(clean.shape[0], dtype=torch.bool, device=clean.device)
        if self.noise == "none" and self.detector is None:
            return clean, visible, exact
        x = clean.double()
        if self.noise == "posefix":
            x = posefix_noise(x, gens, self.joint_set)
        elif self.noise == "gaussian":
            std = H36M_DETECTOR_STD if self.joint_set.name == "h36m" else 2.0
            x = gaussian_noise(x, gens, std=std)
        if self.detector is not None:
            x, visible = detector_noise(x, gens, self.joint_set, self.detector)
        if self.clean_fraction > 0.0:
            u = draw_rows(gens, n, lambda n, g: [uniform(g, n, dtype=x.dtype)])[0]
            keep = u.to(x.device) < self.clean_fraction
            x = torch.where(keep[:, None, None], clean.to(x.dtype), x)
            visible = visible | keep[:, None]
            return x.float(), visible, keep
        return x.float(), visible, torch.zeros_like(exact)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Tensor]:
        """A whole batch at once (used by :class:`torch.utils.data.DataLoader`)."""
        indices = self._check_indices(indices)
        if self.cache_dir is not None:
            geo = self._cached(indices)
        else:
            geo = self.generate(indices, mesh=self.with_mesh)
        noisy, visible, exact = self._noisy(geo["keypoints_2d_gt"], indices)
        normalised, box = normalize_keypoints(
            noisy.double(), visible, isotropic=self.isotropic_input
        )
        return {
            "keypoints_2d": normalised.float(),
            "visible": visible,
            "exact": exact,
            "keypoints_2d_pixels": noisy,
            "box": box.float(),
            **geo,
        }

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        """One sample (see the module docstring for its keys)."""
        batch = self.__getitems__([index])
        return {k: v[0] for k, v in batch.items()}

    # ------------------------------------------------------------------ cache
    def _shard_path(self, shard: int) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / f"synthetic-{self.config_hash()}-s{self.shard_size}-{shard:05d}.pt"

    def _num_shards(self) -> int:
        return (self.length + self.shard_size - 1) // self.shard_size

    def _load_shard(self, shard: int) -> dict[str, Tensor] | None:
        path = self._shard_path(shard)
        try:
            if not path.exists():
                return None
        except OSError:  # an unreadable cache folder: as if empty
            return None
        try:
            data = load_torch(path, what="dataset cache shard")
            if not isinstance(data, dict):
                raise ValueError("it is not a shard")
            if data.get("config_hash") != self.config_hash() or data.get("shard") != shard:
                raise ValueError("it was written for another configuration")
            n = min(self.shard_size, self.length - shard * self.shard_size)
            if any(k not in data or data[k].shape[0] < n for k in _GEOMETRY_KEYS):
                raise ValueError("it is incomplete")
            return data
        except Exception as err:
            warnings.warn(f"dataset cache shard {path} is unusable ({err}); rebuilding it",
                          RuntimeWarning, stacklevel=3)  # fmt: skip
            return None

    def _write_shard(self, shard: int) -> dict[str, Tensor]:
        start = shard * self.shard_size
        stop = min(start + self.shard_size, self.length)
        data: dict[str, Any] = {}
        for lo in range(start, stop, 64):
            part = self.generate(range(lo, min(lo + 64, stop)))
            for k, v in part.items():
                data.setdefault(k, []).append(v)
        data = {k: torch.cat(v).cpu() for k, v in data.items()}  # shards live on the CPU
        data["config_hash"] = self.config_hash()
        data["shard"] = shard
        if self._cache_writable:
            try:
                atomic_write(self._shard_path(shard), lambda fh: torch.save(data, fh))
            except OSError as err:  # a read-only or full cache: generate on, without writing
                self._cache_writable = False
                warnings.warn(
                    f"could not write the dataset cache in {self.cache_dir} ({err}); "
                    "continuing without writing it",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return data

    def _build_cache(self) -> None:
        missing = [s for s in range(self._num_shards()) if self._load_shard(s) is None]
        if not missing:
            return
        bar = None
        if self.progress:
            try:
                from tqdm import tqdm

                bar = tqdm(total=len(missing), desc="building synthetic dataset cache",
                           unit="shard", file=sys.stderr)  # fmt: skip
            except ImportError:  # pragma: no cover - tqdm is optional
                print(f"building {len(missing)} cache shards in {self.cache_dir}", file=sys.stderr)
        for s in missing:
            self._write_shard(s)
            if not self._cache_writable:  # warned: shards are generated when first used
                break
            if bar is not None:
                bar.update(1)
        if bar is not None:
            bar.close()

    def _cached(self, indices: list[int]) -> dict[str, Tensor]:
        out: dict[str, list[Tensor]] = {}
        for i in indices:
            shard, offset = divmod(i, self.shard_size)
            if shard not in self._shards:
                data = self._load_shard(shard)
                if data is None:
                    data = self._write_shard(shard)
                if len(self._shards) >= 4:  # keep a few shards in memory
                    self._shards.pop(next(iter(self._shards)))
                self._shards[shard] = data
            data = self._shards[shard]
            for k in _GEOMETRY_KEYS:
                if self.with_mesh or k not in ("vertices", "mesh_joints_3d"):
                    out.setdefault(k, []).append(data[k][offset])
        return {k: torch.stack(v).to(self.device) for k, v in out.items()}
