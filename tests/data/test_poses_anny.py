"""Pose samplers on the real Anny rigs (skipped without anny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("anny")

from meshgraph.bodies import H36M, HAND
from meshgraph.data.poses import BODY_CANONICAL, BodyPoseSampler, HandPoseSampler


def _sampler(model, **kw):
    heads = model.bone_heads(model.run(torch.zeros(1, model.num_bones, 3)))[0]
    cls = BodyPoseSampler if model.kind == "body" else HandPoseSampler
    return cls(model.bone_labels, heads, model.bone_parents, **kw)


def _angle(a, b, c):
    u, v = a - b, c - b
    cos = (u * v).sum(-1) / (u.norm(dim=-1) * v.norm(dim=-1))
    return torch.rad2deg(torch.acos(cos.clamp(-1, 1)))


def test_body_samples_are_seeded_and_anatomical(body):
    s = _sampler(body)
    pose = s.sample(64, torch.Generator().manual_seed(0))
    assert pose.shape == (64, 104, 3)
    assert torch.equal(pose, s.sample(64, torch.Generator().manual_seed(0)))
    with torch.no_grad():
        verts = body(pose.float())
    j = body.regress_joints(verts, "h36m")
    with torch.no_grad():
        rest = body.regress_joints(body(torch.zeros(1, 104, 3)), "h36m")

    def angles(joints, side, names):
        return _angle(*(joints[:, H36M.index(f"{side}_{p}")] for p in names))

    for side in ("L", "R"):
        # flexion stays within the limits (145 degrees from the rest angle, which is bent a
        # little at rest), up to 3 degrees of regressor offset; no hyperextension
        for names in (("Hip", "Knee", "Ankle"), ("Shoulder", "Elbow", "Wrist")):
            at_rest = angles(rest, side, names)[0]
            sampled = angles(j, side, names)
            assert sampled.min() > at_rest - 145 - 3, (names, at_rest, sampled.min())
            assert sampled.max() <= 180.5
    # heads stay above pelvis in all canonical poses
    assert torch.all(j[:, H36M.index("Head"), 2] > j[:, H36M.index("Pelvis"), 2])


def test_canonical_poses_look_like_their_names(body):
    gen = torch.Generator().manual_seed(0)
    out = {}
    for name in BODY_CANONICAL:
        pose = _sampler(body, canonical=(name,), noise_std=0.0).sample(1, gen)
        with torch.no_grad():
            out[name] = body.regress_joints(body(pose.float()), "h36m")[0]
    z = {k: v[:, 2] for k, v in out.items()}
    head = H36M.index("Head")
    ankles = [H36M.index("L_Ankle"), H36M.index("R_Ankle")]
    height = {k: v[head] - v[ankles].min() for k, v in z.items()}  # head above the feet
    # crouching and sitting lower the head; arms raised puts the wrists above the head
    assert height["crouching"] < height["sitting"] < height["standing"]
    assert z["arms_raised"][H36M.index("L_Wrist")] > z["arms_raised"][head]
    assert z["arms_raised"][H36M.index("R_Wrist")] > z["arms_raised"][head]
    # sitting: thighs horizontal (knee at hip height), feet in front of the hips (-y is forward)
    sit = out["sitting"]
    assert abs(sit[H36M.index("L_Knee"), 2] - sit[H36M.index("L_Hip"), 2]) < 0.1
    assert sit[H36M.index("L_Knee"), 1] < sit[H36M.index("L_Hip"), 1] - 0.3
    # reaching: the left wrist is far in front of the body
    reach = out["reaching"]
    assert reach[H36M.index("L_Wrist"), 1] < reach[H36M.index("Neck"), 1] - 0.3
    # standing: arms hang down at the sides
    stand = out["standing"]
    assert stand[H36M.index("L_Wrist"), 2] < stand[H36M.index("Pelvis"), 2] + 0.1


def test_hand_poses(hand):
    gen = torch.Generator().manual_seed(0)
    tips = [4, 8, 12, 16, 20]
    res = {}
    for name in ("open", "fist", "point"):
        s = _sampler(hand, canonical=(name,), curl_std=0.0, spread_deg=0.0)
        pose = s.sample(1, gen)
        pose[:, hand.bone_labels.index("wrist.R")] = 0.0
        with torch.no_grad():
            j = hand.regress_joints(hand(pose.float()), "hand")[0]
        res[name] = (j[tips] - j[0]).norm(dim=-1)
    assert torch.all(res["fist"][1:] < 0.75 * res["open"][1:])  # fingers curl in
    assert res["point"][1] > 0.95 * res["open"][1]  # the index stays straight
    assert res["point"][2] < 0.75 * res["open"][2]
    poses = _sampler(hand).sample(32, gen)
    assert poses.shape == (32, 21, 3) and torch.isfinite(poses).all()
    assert HAND.num_joints == 21
    with pytest.raises(ValueError, match="unknown"):
        _sampler(hand, canonical=("wave",))
    assert np.isfinite(poses.numpy()).all()
