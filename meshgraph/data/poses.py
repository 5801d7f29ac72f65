"""Anatomically limited random poses and random shapes for the Anny body and hands.

Anny's ``local-ref`` pose parameters are rotations about the bone's head in *world-aligned*
axes at rest (x: the subject's left, y: backwards, z: up), carried along by the parent bones.
The samplers describe every joint by three angles in degrees about axes of that frame:

* ``x``: rotation about the lateral axis (sagittal plane). Signs, measured on Anny: hip
  flexion (thigh forward) is negative, knee flexion positive, spine and neck flexion
  (bending forward) positive, ankle plantar flexion positive.
* ``y``: rotation about the front-back axis (frontal plane). For the left leg, abduction is
  negative; for the left arm, lowering it from Anny's A-pose towards the body is positive.
* ``z``: rotation about the vertical axis.
* ``flex`` and ``twist`` (arms, hands): rotations about the axis perpendicular to the bone and
  the forward direction (elbow and wrist flexion, positive = forward) and about the bone
  itself (forearm pronation/supination, upper-arm rotation).

Limits are given for the left side; the right side is their mirror image (``x`` and ``flex``
keep their sign, ``y``, ``z`` and ``twist`` flip). A joint's rotation composes, in this order,
``twist``, ``y``, ``x``, ``z`` and ``flex`` (so ``{"y": 42, "x": -90}`` first lowers the arm from
the A-pose to the side, then swings it forward). A pose is a canonical pose (standing,
walking, running, sitting, crouching, arms raised, reaching; for hands open, fist, pinch,
point) with Gaussian perturbations, clipped to the limits. The tables (:data:`BODY_LIMITS`,
:data:`HAND_CURL`) document every range.

Other skeletons (SMPL, SMPL-H, MANO) use the same tables through a *bone map*
(:data:`BONE_MAPS`): table bone -> the rig's joint. Several table bones mapped to one joint
compose as Anny's parent and child bones do, so a rig with fewer joints than Anny still makes
the same poses (SMPL's ``spine1`` does Anny's ``spine05`` and ``spine04``, its shoulder both
``upperarm01`` and the ``upperarm02`` twist). Where a rig's rest pose differs from
Anny's (SMPL's T-pose: arms horizontal and straight; Anny: arms 48 degrees below horizontal,
elbows bent 42 degrees, :data:`ANNY_REST_ANGLES`), the difference, measured on the rig's rest
joints, is added to the shoulder's ``y`` and the elbow's ``flex``, so that a canonical pose
looks the same on every rig. ``world_rotation`` takes the rig's coordinates to the frame above
(SMPL is y-up, facing +z).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

from meshgraph.data.random import Source, integers, normal, uniform
from meshgraph.geometry import axis_angle_to_matrix
from meshgraph.geometry import matrix_to_axis_angle as matrix_to_axis_angle  # moved there

__all__ = [
    "ANNY_REST_ANGLES",
    "BODY_CANONICAL",
    "BODY_LIMITS",
    "BONE_MAPS",
    "HAND_CANONICAL",
    "HAND_CURL",
    "PHENOTYPE_RANGES",
    "POPULATION_HEIGHT_SD",
    "BetaSampler",
    "BodyPoseSampler",
    "HandPoseSampler",
    "ShapeSampler",
]

#: Per-joint limits (degrees) for the left side: bone -> axis -> (low, high).
BODY_LIMITS: dict[str, dict[str, tuple[float, float]]] = {
    "upperleg01": {"x": (-120, 25), "y": (-45, 15), "z": (-35, 35)},
    "lowerleg01": {"x": (0, 145), "z": (-8, 8)},
    "foot": {"x": (-20, 45), "y": (-15, 15), "z": (-15, 15)},
    "spine05": {"x": (-6, 15), "y": (-6, 6), "z": (-6, 6)},
    "spine04": {"x": (-6, 15), "y": (-6, 6), "z": (-6, 6)},
    "spine03": {"x": (-6, 15), "y": (-6, 6), "z": (-8, 8)},
    "spine02": {"x": (-6, 15), "y": (-6, 6), "z": (-8, 8)},
    "spine01": {"x": (-6, 12), "y": (-6, 6), "z": (-8, 8)},
    "neck01": {"x": (-12, 15), "y": (-12, 12), "z": (-20, 20)},
    "neck02": {"x": (-12, 15), "y": (-12, 12), "z": (-20, 20)},
    "head": {"x": (-25, 25), "y": (-15, 15), "z": (-30, 30)},
    "clavicle": {"x": (-10, 10), "y": (-12, 8), "z": (-15, 15)},
    "upperarm01": {"x": (-110, 45), "y": (-140, 45), "z": (-50, 70)},
    "upperarm02": {"twist": (-45, 45)},
    "lowerarm01": {"flex": (0, 145)},
    "lowerarm02": {"twist": (-70, 70)},
    "wrist": {"flex": (-60, 60), "y": (-20, 20)},
}

#: Canonical body poses: bone -> axis -> degrees, in the left-side convention. A bone name
#: without side applies to both sides (mirrored); ``.L``/``.R`` entries set one side (the
#: ``.R`` values are mirrored too, so ``{"y": 35}`` lowers either arm).
BODY_CANONICAL: dict[str, dict[str, dict[str, float]]] = {
    "standing": {"upperarm01": {"y": 35}, "lowerarm01": {"flex": 10}},
    "walking": {
        "upperleg01.L": {"x": -25}, "upperleg01.R": {"x": 15},
        "lowerleg01.L": {"x": 15}, "lowerleg01.R": {"x": 30},
        "upperarm01.L": {"y": 35, "x": 20}, "upperarm01.R": {"y": 35, "x": -20},
        "lowerarm01": {"flex": 20},
    },
    "running": {
        "upperleg01.L": {"x": -60}, "upperleg01.R": {"x": 20},
        "lowerleg01.L": {"x": 70}, "lowerleg01.R": {"x": 100},
        "spine04": {"x": 8}, "spine03": {"x": 6},
        "upperarm01.L": {"y": 40, "x": 40}, "upperarm01.R": {"y": 40, "x": -45},
        "lowerarm01": {"flex": 90},
    },
    "sitting": {
        "upperleg01": {"x": -90}, "lowerleg01": {"x": 90}, "foot": {"x": 5},
        "upperarm01": {"y": 30, "x": -20}, "lowerarm01": {"flex": 50},
    },
    "crouching": {
        "upperleg01": {"x": -115, "y": -15}, "lowerleg01": {"x": 135}, "foot": {"x": -20},
        "spine05": {"x": 12}, "spine04": {"x": 12}, "spine03": {"x": 10},
        "upperarm01": {"y": 10, "x": -40}, "lowerarm01": {"flex": 60},
    },
    "arms_raised": {"upperarm01": {"y": -120}, "lowerarm01": {"flex": 15}},
    "reaching": {
        "upperarm01.L": {"y": 40, "x": -90}, "lowerarm01.L": {"flex": 10},
        "upperarm01.R": {"y": 35}, "spine03": {"z": 8}, "spine02": {"x": 5},
    },
}  # fmt: skip

#: Finger curl (0 = straight, 1 = fully flexed) -> flexion in degrees per finger joint.
HAND_CURL: dict[str, tuple[float, float, float]] = {
    "thumb": (40.0, 50.0, 70.0),
    "finger": (85.0, 100.0, 70.0),
}
#: Canonical hand poses: curl per finger (thumb, index, middle, ring, pinky).
HAND_CANONICAL: dict[str, tuple[float, ...]] = {
    "open": (0.0, 0.0, 0.0, 0.0, 0.0),
    "relaxed": (0.2, 0.2, 0.25, 0.3, 0.35),
    "fist": (0.8, 0.95, 0.95, 0.95, 0.95),
    "pinch": (0.6, 0.55, 0.1, 0.1, 0.1),
    "point": (0.7, 0.0, 0.95, 0.95, 0.95),
}

#: Phenotype ranges (gender, age, muscle, weight, height, proportions) for ``adults_only``.
PHENOTYPE_RANGES: dict[str, tuple[float, float]] = {
    "gender": (0.0, 1.0),
    "age": (0.5, 1.0),
    "muscle": (0.0, 1.0),
    "weight": (0.0, 1.0),
    "height": (0.0, 1.0),
    "proportions": (0.0, 1.0),
}

#: :class:`ShapeSampler`'s ``height_sd`` that gives adult Anny bodies the stature spread of a
#: population (about 10 cm standard deviation over both sexes, as measured adult statures
#: have): Anny's stature changes by about 1.07 m per unit of its height phenotype, and its sex,
#: age and the rest add about 7 cm more spread of their own (a linear fit on 1,024 bodies).
POPULATION_HEIGHT_SD: float = 0.065

#: Anny's rest pose (degrees), measured on its rest bone heads: the upper arm's angle below the
#: horizontal in the frontal plane, and the elbow's bend (angle between upper arm and forearm).
ANNY_REST_ANGLES: dict[str, float] = {"arm_elevation": 48.0, "elbow": 42.1}

_SMPL_SIDES = {"L": "left", "R": "right"}
_SMPL_FINGERS = ("thumb", "index", "middle", "ring", "pinky")  # Anny's finger1 .. finger5


def _smpl_body_map() -> dict[str, str]:
    out = {"spine05": "spine1", "spine04": "spine1", "spine03": "spine2", "spine02": "spine2",
           "spine01": "spine3", "neck01": "neck", "neck02": "neck", "head": "head"}  # fmt: skip
    pairs = (("upperleg01", "hip"), ("lowerleg01", "knee"), ("foot", "ankle"),
             ("clavicle", "collar"), ("upperarm01", "shoulder"), ("upperarm02", "shoulder"),
             ("lowerarm01", "elbow"), ("lowerarm02", "elbow"), ("wrist", "wrist"))  # fmt: skip
    for s, side in _SMPL_SIDES.items():
        for table, joint in pairs:
            out[f"{table}.{s}"] = f"{side}_{joint}"
    return out


def _smpl_hand_map() -> dict[str, str]:
    out = {}
    for s, side in _SMPL_SIDES.items():
        out[f"wrist.{s}"] = f"{side}_wrist"
        for f, finger in enumerate(_SMPL_FINGERS, 1):
            for k in range(1, 4):
                out[f"finger{f}-{k}.{s}"] = f"{side}_{finger}{k}"
    return out


#: Bone maps of the SMPL family (joint names as :class:`~meshgraph.bodies.SMPLModel` labels
#: them): table bone -> rig joint. Table bones missing from a map are not sampled.
BONE_MAPS: dict[str, dict[str, str]] = {
    "smpl": _smpl_body_map(),
    "smplh": {**_smpl_body_map(), **_smpl_hand_map()},
    "mano": _smpl_hand_map(),
}


def _axis_rotation(axis: Tensor, degrees: Tensor) -> Tensor:
    return axis_angle_to_matrix(axis * torch.deg2rad(degrees).unsqueeze(-1))


class _Rig:
    """Name lookup and world frame shared by the samplers.

    ``bone_map`` ``None`` means the rig is Anny's (the table names are its bone labels).
    """

    def __init__(
        self,
        labels: list[str],
        parents: list[int],
        heads: Tensor,
        bone_map: dict[str, str] | None,
        world_rotation: Tensor | None,
    ) -> None:
        if len(parents) != len(labels) or heads.shape != (len(labels), 3):
            raise ValueError(
                f"{len(labels)} bone labels, {len(parents)} parents and rest heads of shape "
                f"{tuple(heads.shape)} do not describe one skeleton"
            )
        self.labels, self.parents, self.bone_map = labels, parents, bone_map
        self.world = None
        heads = heads.detach().double().cpu()
        if world_rotation is not None:
            w = torch.as_tensor(world_rotation, dtype=torch.float64).cpu()
            eye = torch.eye(3, dtype=torch.float64)
            if w.shape != (3, 3) or not torch.allclose(w @ w.T, eye, atol=1e-6):
                raise ValueError("world_rotation must be a 3x3 rotation matrix")
            self.world = w
            heads = heads @ w.T
        self.heads = heads

    def find(self, key: str) -> int | None:
        """Bone index of table bone ``key``; ``None`` if the rig does not map it."""
        if self.bone_map is None:
            return self.labels.index(key) if key in self.labels else None
        if key not in self.bone_map:
            return None
        name = self.bone_map[key]
        if name not in self.labels:
            raise ValueError(f"the bone map sends {key!r} to {name!r}, which the rig lacks")
        return self.labels.index(name)

    def index(self, key: str) -> int:
        found = self.find(key)
        if found is None:
            raise ValueError(f"the rig has no bone {key!r}")
        return found

    def direction(self, bone: int) -> Tensor:
        """Unit direction of ``bone`` at rest: towards its first child (or from its parent)."""
        kids = [k for k, p in enumerate(self.parents) if p == bone]
        if kids:
            d = self.heads[kids[0]] - self.heads[bone]
        else:
            d = self.heads[bone] - self.heads[self.parents[bone]]
        return d / d.norm()

    def to_rig(self, rot: Tensor) -> Tensor:
        """World-frame local rotations -> the rig's frame (``W^T R W``)."""
        if self.world is None:
            return rot
        return self.world.T @ rot @ self.world


#: The axes whose angle changes sign in the mirror image (the right side's convention).
_MIRROR_NEGATES = ("y", "z", "twist")


@dataclass
class _JointSpec:
    bone: int
    key: str  # table bone, with side suffix where sided
    axes: dict[str, Tensor]  # axis name -> unit vector (3,)
    limits: dict[str, tuple[float, float]]
    mirror: bool
    offset: dict[str, float] = field(default_factory=dict)  # rest-pose offsets, left convention


@dataclass
class BodyPoseSampler:
    """Random anatomically limited poses of a body rig (Anny's, or SMPL's through a bone map).

    Args:
        bone_labels: The rig's bone names (``AnnyModel.bone_labels``, ``SMPLModel.bone_labels``).
        rest_heads: ``(num_bones, 3)`` bone heads (joints) at rest, in the rig's coordinates.
        bone_parents: Parent index of every bone.
        canonical: Names of the canonical poses to mix (default: all), with equal weights.
        noise_std: Standard deviation (degrees) of the perturbation around the canonical pose.
        global_rotation: Random rotation of the whole body about the vertical axis (the camera
            supplies the viewpoint, so the default is none).
        finger_curl: Range of random finger curl of the body's hands (rigs with fingers).
        bone_map: Table bone -> rig bone, e.g. ``BONE_MAPS["smpl"]``; ``None`` for Anny's
            rig (see the module docstring).
        world_rotation: ``(3, 3)`` rotation from the rig's coordinates to the tables' frame
            (x left, y backwards, z up); ``None`` if they coincide (Anny).
        blend: Fraction of poses centred between two random canonical poses (every angle
            ``(1 - t) a + t b`` with ``t`` uniform in ``[0, 1]``) before the perturbation:
            the transitions between the canonical poses.
        uniform: Fraction of poses whose every angle is uniform within its anatomical limits
            (no canonical pose): a broad prior beyond the canonical mixture.
        mirror: Fraction of poses whose canonical centre (or blend of two) is mirrored: left
            and right swapped (the mirror image across the body's sagittal plane: every
            ``x`` and ``flex`` angle of a bone moves to its counterpart, ``y``, ``z`` and
            ``twist`` also change sign). Several canonical poses lead with one side
            (``walking``, ``running``, ``reaching``); ``0.5`` makes the mixture symmetric.
            The perturbation is drawn as before, so with ``noise_std=0`` a mirrored pose
            poses the body into the exact mirror image of the unmirrored one.

    With ``blend``, ``uniform`` and ``mirror`` at 0 (the default) the samples are those of
    earlier versions, number for number; otherwise more random numbers are drawn per sample.

    Raises:
        ValueError: For an unknown canonical pose, a rig that lacks a bone the tables (or the
            bone map) need, or fractions outside ``[0, 1]`` (or summing to more than 1).
    """

    bone_labels: list[str]
    rest_heads: Tensor
    bone_parents: list[int]
    canonical: tuple[str, ...] = tuple(BODY_CANONICAL)
    noise_std: float = 12.0
    global_rotation: bool = False
    finger_curl: tuple[float, float] = (0.0, 0.8)
    bone_map: dict[str, str] | None = None
    world_rotation: Tensor | None = None
    blend: float = 0.0
    uniform: float = 0.0
    mirror: float = 0.0
    _specs: list[_JointSpec] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("blend", "uniform", "mirror"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a fraction in [0, 1], got {value!r}")
        if self.blend + self.uniform > 1.0:
            raise ValueError(
                f"blend + uniform must be at most 1, got {self.blend} + {self.uniform}"
            )
        unknown = set(self.canonical) - set(BODY_CANONICAL)
        if unknown:
            raise ValueError(
                f"unknown canonical poses {sorted(unknown)}; known: {list(BODY_CANONICAL)}"
            )
        rig = _Rig(self.bone_labels, self.bone_parents, self.rest_heads, self.bone_map,
                   self.world_rotation)  # fmt: skip
        self._rig = rig
        fwd = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
        ex, ey, ez = torch.eye(3, dtype=torch.float64)
        self._specs = []
        for name, limits in BODY_LIMITS.items():
            if self.bone_map is None:
                keys = [name] if name in self.bone_labels else [f"{name}.L", f"{name}.R"]
            else:
                keys = [k for k in (name, f"{name}.L", f"{name}.R") if k in self.bone_map]
            for key in keys:
                b = rig.index(key)
                t = rig.direction(b)
                flex = torch.linalg.cross(t, fwd)
                flex = flex / flex.norm() if flex.norm() > 0.3 else ex
                axes = {"x": ex, "y": ey, "z": ez, "flex": flex, "twist": t}
                self._specs.append(_JointSpec(b, key, axes, limits, key.endswith(".R")))
        if self.bone_map is not None:
            self._match_rest_pose()
        self._fingers = self._finger_specs()

    def _match_rest_pose(self) -> None:
        """Offsets that turn the rig's rest arms into Anny's (see :data:`ANNY_REST_ANGLES`)."""
        specs = {s.key: s for s in self._specs}
        for side in ("L", "R"):
            arm, elbow = specs.get(f"upperarm01.{side}"), specs.get(f"lowerarm01.{side}")
            if arm is None:
                continue
            u = arm.axes["twist"]
            elevation = math.degrees(math.atan2(-float(u[2]), abs(float(u[0]))))
            arm.offset["y"] = ANNY_REST_ANGLES["arm_elevation"] - elevation
            if elbow is not None:
                bend = math.degrees(math.acos(float((u @ elbow.axes["twist"]).clamp(-1, 1))))
                elbow.offset["flex"] = ANNY_REST_ANGLES["elbow"] - bend

    def _finger_specs(self) -> list[tuple[int, Tensor, float, int, int]]:
        """(bone, flexion axis, max degrees, finger, phalanx) of the body's finger bones."""
        out = []
        for side in ("L", "R"):
            if (
                self._rig.find(f"wrist.{side}") is None
                or self._rig.find(f"finger2-1.{side}") is None
            ):
                continue
            out.extend(_hand_finger_axes(self._rig, side))
        return out

    def _angles(self, name: str, bone_name: str, canonical: dict) -> dict[str, float]:
        for key in (bone_name, name):
            if key in canonical:
                values = dict(canonical[key])
                if bone_name.endswith(".R"):  # every entry is written in left-side convention
                    values = {a: (-v if a in _MIRROR_NEGATES else v) for a, v in values.items()}
                return values
        return {}

    def _axis_list(self) -> list[tuple[int, str]]:
        """(spec index, axis name) of every sampled angle, in composition order."""
        order = ("twist", "y", "x", "z", "flex")
        return [(k, a) for k, spec in enumerate(self._specs) for a in order if a in spec.limits]

    def draw(self, n: int, generator: Source) -> dict[str, Tensor]:
        """The random numbers of ``n`` poses (:meth:`from_draws` turns them into poses).

        ``generator``: a :class:`torch.Generator` or a
        :class:`~meshgraph.data.random.CounterRandom` of ``n`` samples.
        """
        draws = {
            "which": integers(generator, len(self.canonical), n),
            "normal": normal(generator, n, len(self._axis_list())),
            "curl": uniform(generator, n),
            "yaw": uniform(generator, n),
        }
        if self.blend > 0 or self.uniform > 0:  # drawn after the others: those stay the same
            draws["mode"] = uniform(generator, n)
            draws["other"] = integers(generator, len(self.canonical), n)
            draws["t"] = uniform(generator, n)
            draws["box"] = uniform(generator, n, len(self._axis_list()))
        if self.mirror > 0:  # drawn last: the samples without it stay the same
            draws["flip"] = uniform(generator, n)
        return draws

    def _build_tables(self) -> None:
        axis_list = self._axis_list()
        ncol = len(axis_list)
        centres = torch.zeros(len(self.canonical), ncol, dtype=torch.float64)
        lows = torch.zeros(ncol, dtype=torch.float64)
        highs = torch.zeros(ncol, dtype=torch.float64)
        axes = torch.zeros(ncol, 3, dtype=torch.float64)
        for c, (k, axis_name) in enumerate(axis_list):
            spec = self._specs[k]
            base = spec.key[:-2] if spec.key.endswith((".L", ".R")) else spec.key
            flips = spec.mirror and axis_name in _MIRROR_NEGATES
            off = spec.offset.get(axis_name, 0.0)
            lo, hi = spec.limits[axis_name]
            lo, hi = lo + off, hi + off
            if flips:
                lo, hi = -hi, -lo
            lows[c], highs[c] = lo, hi
            axes[c] = spec.axes[axis_name]
            for p, name in enumerate(self.canonical):
                angle = self._angles(base, spec.key, BODY_CANONICAL[name]).get(axis_name, 0.0)
                centres[p, c] = angle + (-off if flips else off)
        # per bone, the columns in the order they apply: two table bones on one rig bone
        # compose as Anny's parent and child (the later table entry, the child, first)
        compose: dict[int, list[int]] = {}
        for k in reversed(range(len(self._specs))):
            cols = [c for c, (kk, _) in enumerate(axis_list) if kk == k]
            compose.setdefault(self._specs[k].bone, []).extend(cols)
        order = sorted(compose, key=lambda b: min(compose[b]))
        self._tables = (centres, lows, highs, axes, [(b, compose[b]) for b in order])
        # the mirror image: each column takes its counterpart's angle (the other side's bone,
        # or the same midline bone), y / z / twist negated
        if self.mirror > 0:
            column = {(self._specs[k].key, a): c for c, (k, a) in enumerate(axis_list)}
            source, sign = [], []
            for k, a in axis_list:
                key = self._specs[k].key
                other = {".L": ".R", ".R": ".L"}.get(key[-2:])
                pair = (key[:-2] + other, a) if other else (key, a)
                if pair not in column:
                    raise ValueError(f"mirror: the rig has {key} but not its counterpart {pair[0]}")
                source.append(column[pair])
                sign.append(-1.0 if a in _MIRROR_NEGATES else 1.0)
            self._mirror = (torch.tensor(source), torch.tensor(sign, dtype=torch.float64))

    def from_draws(self, draws: dict[str, Tensor]) -> Tensor:
        """``(n, num_bones, 3)`` axis-angle poses from :meth:`draw` output (vectorised)."""
        which = draws["which"]
        n = which.shape[0]
        if not hasattr(self, "_tables"):
            self._build_tables()
        centres, lows, highs, axes, compose = self._tables
        centre = centres[which]
        mode = draws.get("mode")
        if mode is not None:  # poses between two canonical ones, and poses from the limits
            t = draws["t"][:, None]
            between = (1 - t) * centre + t * centres[draws["other"]]
            centre = torch.where(((mode >= self.uniform) & (mode < self.uniform + self.blend))
                                 [:, None], between, centre)  # fmt: skip
        flip = draws.get("flip")
        if flip is not None:  # left and right swapped
            source, sign = self._mirror
            centre = torch.where((flip < self.mirror)[:, None], centre[:, source] * sign, centre)
        deg = centre + self.noise_std * draws["normal"]
        deg = torch.maximum(torch.minimum(deg, highs), lows)
        if mode is not None:
            anywhere = lows + (highs - lows) * draws["box"]
            deg = torch.where((mode < self.uniform)[:, None], anywhere, deg)
        mats = axis_angle_to_matrix(axes.unsqueeze(0) * torch.deg2rad(deg).unsqueeze(-1))
        nb = len(self.bone_labels)
        rot = torch.eye(3, dtype=torch.float64).repeat(n, nb, 1, 1)
        for bone, cols in compose:
            r = mats[:, cols[0]]
            for c in cols[1:]:
                r = mats[:, c] @ r
            rot[:, bone] = r
        if self._fingers:
            lo, hi = self.finger_curl
            curl = lo + (hi - lo) * draws["curl"]
            f_axes = torch.stack([f[1] for f in self._fingers])
            f_max = torch.tensor([f[2] for f in self._fingers], dtype=torch.float64)
            f_mats = axis_angle_to_matrix(
                f_axes.unsqueeze(0) * torch.deg2rad(curl[:, None] * f_max).unsqueeze(-1)
            )
            for c, finger in enumerate(self._fingers):
                rot[:, finger[0]] = f_mats[:, c]
        if self.global_rotation:
            yaw = torch.deg2rad(360 * draws["yaw"])
            z = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
            rot[:, 0] = axis_angle_to_matrix(z * yaw.unsqueeze(-1))
        return matrix_to_axis_angle(self._rig.to_rig(rot))

    def sample(self, n: int, generator: Source) -> Tensor:
        """``(n, num_bones, 3)`` axis-angle poses (float64)."""
        return self.from_draws(self.draw(n, generator))


def _palm_normal(rig: _Rig, side: str) -> Tensor:
    """Unit normal of the palm plane: (index base - wrist) x (pinky base - wrist)."""
    heads = rig.heads
    wrist = heads[rig.index(f"wrist.{side}")]
    index_base = heads[rig.index(f"finger2-1.{side}")]
    pinky_base = heads[rig.index(f"finger5-1.{side}")]
    normal = torch.linalg.cross(index_base - wrist, pinky_base - wrist)
    return normal / normal.norm()


def _hand_finger_axes(rig: _Rig, side: str) -> list[tuple[int, Tensor, float, int, int]]:
    """(bone, flexion axis, max degrees, finger 0-4, phalanx 1-3) of the finger bones.

    The flexion axis is perpendicular to the finger and the palm normal. The palm normal is
    the cross product of the index and pinky metacarpal directions, its sign chosen so that
    flexing moves a fingertip towards the thumb side of the palm plane (towards the palm).
    """
    normal = _palm_normal(rig, side)
    if side == "L":
        normal = -normal
    out = []
    for f in range(1, 6):
        for k in range(1, 4):
            b = rig.index(f"finger{f}-{k}.{side}")
            axis = torch.linalg.cross(rig.direction(b), normal)
            axis = axis / axis.norm()
            max_deg = HAND_CURL["thumb" if f == 1 else "finger"][k - 1]
            out.append((b, axis, max_deg, f - 1, k))
    return out


@dataclass
class HandPoseSampler:
    """Random hand poses: canonical finger curls, perturbed, plus wrist motion.

    Args:
        bone_labels: The hand rig's bone names (Anny's hand, or MANO's through a bone map).
        rest_heads: ``(num_bones, 3)`` bone heads at rest.
        bone_parents: Parents.
        side: ``"R"`` or ``"L"``.
        canonical: Canonical hand poses to mix (default all of :data:`HAND_CANONICAL`).
        curl_std: Standard deviation of the per-finger curl perturbation.
        spread_deg: Range of random finger spreading (abduction) in degrees.
        bone_map: Table bone -> rig bone, e.g. ``BONE_MAPS["mano"]``; ``None`` for Anny's
            hands.
        world_rotation: ``(3, 3)`` rotation from the rig's coordinates to the tables' frame;
            ``None`` if they coincide.

    Raises:
        ValueError: For an unknown canonical pose or a rig without the wrist and finger bones.
    """

    bone_labels: list[str]
    rest_heads: Tensor
    bone_parents: list[int]
    side: str = "R"
    canonical: tuple[str, ...] = tuple(HAND_CANONICAL)
    curl_std: float = 0.12
    spread_deg: float = 10.0
    bone_map: dict[str, str] | None = None
    world_rotation: Tensor | None = None

    def __post_init__(self) -> None:
        unknown = set(self.canonical) - set(HAND_CANONICAL)
        if unknown:
            raise ValueError(f"unknown canonical hand poses {sorted(unknown)}")
        if self.side not in ("L", "R"):
            raise ValueError(f"side must be 'L' or 'R', got {self.side!r}")
        self._rig = _Rig(self.bone_labels, self.bone_parents, self.rest_heads, self.bone_map,
                         self.world_rotation)  # fmt: skip
        self._fingers = _hand_finger_axes(self._rig, self.side)
        self._palm_normal = _palm_normal(self._rig, self.side)
        self._wrist = self._rig.index(f"wrist.{self.side}")

    def draw(self, n: int, generator: Source) -> dict[str, Tensor]:
        """The random numbers of ``n`` poses (:meth:`from_draws` turns them into poses).

        ``generator``: a :class:`torch.Generator` or a
        :class:`~meshgraph.data.random.CounterRandom` of ``n`` samples.
        """
        return {
            "which": integers(generator, len(self.canonical), n),
            "curl": normal(generator, n, 5),
            "spread": uniform(generator, n, 5),
            "wrist": normal(generator, n, 3),
        }

    def from_draws(self, draws: dict[str, Tensor]) -> Tensor:
        """``(n, num_bones, 3)`` axis-angle poses from :meth:`draw` output (vectorised)."""
        which = draws["which"]
        n = which.shape[0]
        nb = len(self.bone_labels)
        base = torch.tensor([HAND_CANONICAL[name] for name in self.canonical], dtype=torch.float64)
        curl = (base[which] + self.curl_std * draws["curl"]).clamp(0, 1)
        spread = self.spread_deg * (2 * draws["spread"] - 1)
        rot = torch.eye(3, dtype=torch.float64).repeat(n, nb, 1, 1)
        for bone, axis, max_deg, finger, k in self._fingers:
            r = _axis_rotation(axis.expand(n, 3), curl[:, finger] * max_deg)
            if k == 1:  # spreading at the finger base, about the palm normal
                r = r @ _axis_rotation(self._palm_normal.expand(n, 3), spread[:, finger])
            rot[:, bone] = r
        wr = (25 * draws["wrist"]).clamp(-50, 50)
        rot[:, self._wrist] = axis_angle_to_matrix(torch.deg2rad(wr))
        return matrix_to_axis_angle(self._rig.to_rig(rot))

    def sample(self, n: int, generator: Source) -> Tensor:
        """``(n, num_bones, 3)`` axis-angle poses (float64).

        For a hand-only rig (Anny's hand, MANO) the wrist motion is the root rotation.
        """
        return self.from_draws(self.draw(n, generator))


@dataclass
class ShapeSampler:
    """Random Anny phenotypes ``(B, 6)``: uniform in :data:`PHENOTYPE_RANGES` (adults) or all.

    Args:
        adults_only: Restrict age to adults (Anny's age 0.5 to 1); ``False`` samples all ages.
        ranges: Override the ranges (phenotype name -> (low, high) within [0, 1]).
        height_sd: ``None``: the height phenotype is uniform in its range like the others.
            A number: it is normal around the middle of its range with this standard
            deviation, clipped to the range (the same uniform draw mapped through the
            inverse normal CDF, so every other phenotype of a sample stays the same). A
            height phenotype uniform in [0, 1] gives adult statures from about 1.2 to 2.4 m
            (standard deviation 31 cm); ``0.065`` gives about 10 cm, the spread of adult
            populations (see :data:`POPULATION_HEIGHT_SD`).
    """

    adults_only: bool = True
    ranges: dict[str, tuple[float, float]] | None = None
    height_sd: float | None = None

    def __post_init__(self) -> None:
        r = dict(PHENOTYPE_RANGES)
        if not self.adults_only:
            r["age"] = (0.0, 1.0)
        r.update(self.ranges or {})
        for name, (lo, hi) in r.items():
            if name not in PHENOTYPE_RANGES:
                raise ValueError(f"unknown phenotype {name!r}; known: {list(PHENOTYPE_RANGES)}")
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"phenotype {name} range ({lo}, {hi}) must lie within [0, 1]")
        sd = self.height_sd
        if sd is not None and (
            isinstance(sd, bool) or not isinstance(sd, (int, float)) or not math.isfinite(sd)
            or sd <= 0
        ):  # fmt: skip
            raise ValueError(f"height_sd must be a positive finite number or None, got {sd!r}")
        self._ranges = r

    def sample(self, n: int, generator: Source) -> Tensor:
        """``(n, 6)`` phenotypes in Anny's order (float64)."""
        lo = torch.tensor([self._ranges[k][0] for k in PHENOTYPE_RANGES], dtype=torch.float64)
        hi = torch.tensor([self._ranges[k][1] for k in PHENOTYPE_RANGES], dtype=torch.float64)
        u = uniform(generator, n, 6)
        out = lo + (hi - lo) * u
        if self.height_sd is not None:
            h = list(PHENOTYPE_RANGES).index("height")
            # u in [0, 1): keep ndtri finite (u = 0 would be -inf, then clipped anyway)
            z = torch.special.ndtri(u[:, h].clamp(1e-12, 1 - 1e-12))
            middle = 0.5 * (lo[h] + hi[h])
            out[:, h] = (middle + self.height_sd * z).clamp(lo[h], hi[h])
        return out


@dataclass
class BetaSampler:
    """Random SMPL-family shape coefficients ``(B, num_betas)``: Gaussian, clipped.

    The betas of SMPL, SMPL-H and MANO are PCA coefficients in units of standard deviations
    of their training scans, so a standard normal covers the population.

    Args:
        num_betas: Number of coefficients (the model's ``num_betas``).
        std: Standard deviation.
        clip: Largest absolute value (extreme shapes beyond it are rare and implausible).
    """

    num_betas: int = 10
    std: float = 1.0
    clip: float = 2.5

    def __post_init__(self) -> None:
        if self.num_betas <= 0 or self.std < 0 or self.clip <= 0:
            raise ValueError(
                f"num_betas and clip must be positive and std non-negative, got "
                f"{self.num_betas}, {self.clip}, {self.std}"
            )

    def sample(self, n: int, generator: Source) -> Tensor:
        """``(n, num_betas)`` betas (float64)."""
        x = normal(generator, n, self.num_betas)
        return (self.std * x).clamp(-self.clip, self.clip)
