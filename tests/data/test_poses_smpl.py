"""Pose and shape sampling for the SMPL family, on humanoid stand-in model files.

The expectations are anatomical (arms hang when standing, thighs point forward when sitting,
a fist curls the fingers towards the palm) or comparisons with the same canonical pose on
Anny's rig, never values taken from the sampler itself.
"""

from __future__ import annotations

import math

import pytest
import torch

pytest.importorskip("smplx")

from meshgraph.bodies.smpl import SMPLModel
from meshgraph.data import BetaSampler, SyntheticPoseMeshDataset, default_pose_sampler
from meshgraph.data.poses import (
    ANNY_REST_ANGLES,
    BODY_CANONICAL,
    BONE_MAPS,
    BodyPoseSampler,
    HandPoseSampler,
)
from tests import humanoid


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("licensed")
    return {
        kind: SMPLModel(kind, humanoid.write(folder, kind), dtype=torch.float64)
        for kind in ("smpl", "smplh", "mano")
    }


def _world_joints(model: SMPLModel, pose: torch.Tensor) -> torch.Tensor:
    """Posed joints (smplx's kinematic chain) in meshgraph's world frame."""
    n = pose.shape[0]
    kw = {"global_orient": pose[:, 0], "betas": torch.zeros(n, 10, dtype=pose.dtype),
          "transl": torch.zeros(n, 3, dtype=pose.dtype)}  # fmt: skip
    if model.kind == "mano":
        out = model.model(hand_pose=pose[:, 1:].reshape(n, -1), **kw)
    elif model.kind == "smplh":
        out = model.model(body_pose=pose[:, 1:22].reshape(n, -1),
                          left_hand_pose=pose[:, 22:37].reshape(n, -1),
                          right_hand_pose=pose[:, 37:].reshape(n, -1), **kw)  # fmt: skip
    else:
        out = model.model(body_pose=pose[:, 1:].reshape(n, -1), **kw)
    return out.joints[:, : model.num_bones] @ model.world_rotation.T


def _sampler(model: SMPLModel, **kw) -> BodyPoseSampler:
    return BodyPoseSampler(model.bone_labels, model.rest_joints(), model.bone_parents,
                           bone_map=BONE_MAPS[model.kind], world_rotation=model.world_rotation,
                           **kw)  # fmt: skip


def _unit(j: torch.Tensor, labels: list[str], a: str, b: str) -> torch.Tensor:
    d = j[..., labels.index(b), :] - j[..., labels.index(a), :]
    return d / d.norm(dim=-1, keepdim=True)


def test_bone_maps_name_the_rigs_joints(models):
    for kind, model in models.items():
        targets = set(BONE_MAPS[kind].values())
        if kind == "mano":  # one hand: the other side's entries are unused
            targets = {t for t in targets if t.startswith("right_")}
        assert targets <= set(model.bone_labels), kind


def test_world_rotation_turns_smpl_upright(models):
    model = models["smpl"]
    w = model.world_rotation
    torch.testing.assert_close(w @ w.T, torch.eye(3, dtype=torch.float64))
    assert torch.det(w) > 0
    rest = model.rest_joints() @ w.T
    labels = model.bone_labels
    assert rest[labels.index("head"), 2] > rest[labels.index("pelvis"), 2] + 0.4  # z up
    assert rest[labels.index("left_hip"), 0] > rest[labels.index("right_hip"), 0]  # x left
    # the toes point forward, and forward is -y
    assert rest[labels.index("left_foot"), 1] < rest[labels.index("left_ankle"), 1]


def test_canonical_poses_look_right_on_smpl(models):
    model = models["smpl"]
    labels = model.bone_labels
    down, up, forward = (torch.tensor(v, dtype=torch.float64) for v in
                         ((0, 0, -1), (0, 0, 1), (0, -1, 0)))  # fmt: skip
    expect = {  # (pose, bone, direction it should point along, smallest cosine)
        ("standing", "left_shoulder", "left_elbow", down, 0.9),  # T-pose arms now hang
        ("standing", "right_shoulder", "right_elbow", down, 0.9),
        ("standing", "left_hip", "left_knee", down, 0.95),
        ("sitting", "left_hip", "left_knee", forward, 0.95),
        ("sitting", "right_knee", "right_ankle", down, 0.95),
        ("arms_raised", "left_shoulder", "left_elbow", up, 0.85),
        ("reaching", "left_shoulder", "left_elbow", forward, 0.9),
    }
    for pose_name, a, b, direction, cosine in expect:
        sampler = _sampler(model, canonical=(pose_name,), noise_std=0.0)
        joints = _world_joints(model, sampler.sample(1, torch.Generator().manual_seed(0)))
        got = float(_unit(joints[0], labels, a, b) @ direction)
        assert got > cosine, (pose_name, a, b, got)
    # the forearm of a standing pose bends forward at the elbow, as Anny's does at rest
    sampler = _sampler(model, canonical=("standing",), noise_std=0.0)
    joints = _world_joints(model, sampler.sample(1, torch.Generator().manual_seed(0)))[0]
    upper = _unit(joints, labels, "left_shoulder", "left_elbow")
    fore = _unit(joints, labels, "left_elbow", "left_wrist")
    bend = math.degrees(math.acos(float(upper @ fore)))
    assert 40 < bend < 65 and float(fore @ forward) > 0.5


def test_canonical_poses_match_anny(models, anny_body):
    """Every canonical pose points the limbs and the spine the same way on SMPL and Anny."""
    model, anny = models["smpl"], anny_body
    names = {"hip": "upperleg01", "knee": "lowerleg01", "ankle": "foot", "shoulder": "upperarm01",
             "elbow": "lowerarm01", "wrist": "wrist"}  # fmt: skip
    segments = [("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist")]
    for pose_name in BODY_CANONICAL:
        s = _sampler(model, canonical=(pose_name,), noise_std=0.0)
        j1 = _world_joints(model, s.sample(1, torch.Generator().manual_seed(0)))[0]
        a = BodyPoseSampler(anny.bone_labels, anny.rest_joints(), anny.bone_parents,
                            canonical=(pose_name,), noise_std=0.0)  # fmt: skip
        pose = a.sample(1, torch.Generator().manual_seed(0)).float()
        j2 = anny.bone_heads(anny.run(pose))[0].double()
        pairs = [(_unit(j1, model.bone_labels, "pelvis", "neck"),
                  _unit(j2, anny.bone_labels, "root", "neck01"), "spine")]  # fmt: skip
        for side, s2 in (("left", "L"), ("right", "R")):
            for p, c in segments:
                pairs.append((_unit(j1, model.bone_labels, f"{side}_{p}", f"{side}_{c}"),
                              _unit(j2, anny.bone_labels, f"{names[p]}.{s2}", f"{names[c]}.{s2}"),
                              f"{side} {p}-{c}"))  # fmt: skip
        for u, v, what in pairs:
            angle = math.degrees(math.acos(float((u @ v).clamp(-1, 1))))
            # rest-pose differences of the two skeletons (Anny's legs are slightly apart
            # and forward) stay below 10 degrees
            assert angle < 10, (pose_name, what, angle)


def test_anny_rest_angles_are_anny_s(anny_body):
    heads = anny_body.rest_joints().double()
    labels = anny_body.bone_labels
    upper = _unit(heads, labels, "upperarm01.L", "lowerarm01.L")
    fore = _unit(heads, labels, "lowerarm01.L", "wrist.L")
    elevation = math.degrees(math.atan2(-float(upper[2]), abs(float(upper[0]))))
    bend = math.degrees(math.acos(float(upper @ fore)))
    assert abs(elevation - ANNY_REST_ANGLES["arm_elevation"]) < 0.5
    assert abs(bend - ANNY_REST_ANGLES["elbow"]) < 0.5


def _palm_side(model: SMPLModel, pose: torch.Tensor, side: str) -> torch.Tensor:
    """How far each fingertip (the last joint) lies on the palm side, per finger (mm)."""
    joints = _world_joints(model, pose)
    rest = model.rest_joints() @ model.world_rotation.T
    labels = model.bone_labels
    palm = -torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)  # humanoid palms face down
    if model.kind == "mano":  # rest-frame hand: SMPL's axes, palm towards -y
        palm = torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64)
    out = []
    for finger in ("index", "middle", "ring", "pinky"):
        tip, base = labels.index(f"{side}_{finger}3"), labels.index(f"{side}_{finger}1")
        moved = (joints[:, tip] - joints[:, base]) - (rest[tip] - rest[base])
        out.append(1000 * moved @ palm)
    return torch.stack(out, -1)


def test_mano_fist_curls_towards_the_palm(models):
    model = models["mano"]
    sampler = default_pose_sampler(model)
    assert isinstance(sampler, HandPoseSampler) and sampler.side == "R"
    open_hand = HandPoseSampler(model.bone_labels, model.rest_joints(), model.bone_parents, "R",
                                canonical=("open",), curl_std=0.0, spread_deg=0.0,
                                bone_map=BONE_MAPS["mano"])  # fmt: skip
    fist = HandPoseSampler(model.bone_labels, model.rest_joints(), model.bone_parents, "R",
                           canonical=("fist",), curl_std=0.0, spread_deg=0.0,
                           bone_map=BONE_MAPS["mano"])  # fmt: skip
    g = torch.Generator().manual_seed(0)
    p_open, p_fist = open_hand.sample(4, g), fist.sample(4, g)
    p_open[:, 0] = p_fist[:, 0] = 0.0  # without the random wrist motion
    assert _palm_side(model, p_open, "right").abs().max() < 1e-6  # open = the flat rest hand
    assert (_palm_side(model, p_fist, "right") > 20).all()  # curled into the palm


def test_smplh_body_poses_curl_both_hands(models):
    model = models["smplh"]
    sampler = _sampler(model, canonical=("standing",), finger_curl=(0.8, 0.8))
    pose = sampler.sample(2, torch.Generator().manual_seed(0))
    for side in ("left", "right"):
        hand = [i for i, n in enumerate(model.bone_labels) if n.startswith(f"{side}_")
                and n[-1].isdigit()]  # fmt: skip
        assert pose[:, hand].norm(dim=-1).min() > 0.1  # every finger joint is bent
    curled = pose.clone()
    curled[:, :22] = 0.0  # the fingers alone, on the T-pose (palms down)
    for side in ("left", "right"):
        assert (_palm_side(model, curled, side) > 20).all(), side


def test_beta_sampler():
    s = BetaSampler(16, std=1.0, clip=2.0)
    x = s.sample(1000, torch.Generator().manual_seed(0))
    assert x.shape == (1000, 16) and x.dtype == torch.float64
    assert x.abs().max() <= 2.0 and 0.8 < float(x.std()) < 1.0  # clipping narrows the spread
    with pytest.raises(ValueError, match="num_betas"):
        BetaSampler(0)


def test_dataset_films_upright_smpl_bodies(models):
    model = models["smpl"]
    ds = SyntheticPoseMeshDataset(model, 32, seed=3, noise="none")
    assert isinstance(ds.shape_sampler, BetaSampler) and ds.shape_sampler.num_betas == 10
    batch = ds.__getitems__(list(range(32)))
    assert batch["vertices"].shape == (32, 6890, 3) and batch["shape"].shape == (32, 10)
    kp = batch["keypoints_2d_gt"]
    names = ds.joint_set.names
    # cameras look at an upright subject (elevation -15..45, roll +-10 degrees): the nose is
    # above the ankles in every image (image y grows downwards)
    nose, ankle = names.index("nose"), names.index("left_ankle")
    assert (kp[:, nose, 1] < kp[:, ankle, 1]).all()
    other = SyntheticPoseMeshDataset(models["smplh"], 8, seed=3)
    assert other.config_hash() != ds.config_hash()
