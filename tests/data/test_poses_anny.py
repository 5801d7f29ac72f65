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


def test_wider_pose_priors(body, hand):
    """blend: poses between two canonical ones; uniform: angles anywhere within the limits."""
    from meshgraph.data import default_pose_sampler
    from meshgraph.data.random import CounterRandom

    base = _sampler(body, canonical=("standing", "sitting"), noise_std=0.0)
    mixed = _sampler(body, canonical=("standing", "sitting"), noise_std=0.0, blend=1.0)
    # the defaults draw what they always drew; the wider priors draw more afterwards
    source = CounterRandom(3, [0, 1, 2], 0)
    draws = base.draw(3, source)
    assert set(draws) == {"which", "normal", "curl", "yaw"}
    wide = mixed.draw(3, CounterRandom(3, [0, 1, 2], 0))
    for k, v in draws.items():
        assert torch.equal(wide[k], v), k
    assert set(wide) - set(draws) == {"mode", "other", "t", "box"}
    # blend, t = 0 and t = 1: the two canonical poses themselves
    n = 2
    zeros = torch.zeros(n, dtype=torch.float64)
    common = {"normal": torch.zeros(n, draws["normal"].shape[1], dtype=torch.float64),
              "curl": zeros, "yaw": zeros, "which": torch.tensor([0, 1]),
              "box": torch.zeros(n, wide["box"].shape[1])}  # fmt: skip
    plain = base.from_draws({k: common[k] for k in ("normal", "curl", "yaw", "which")})
    ends = mixed.from_draws({**common, "mode": torch.full((n,), 0.5), "other": torch.tensor([1, 0]),
                             "t": torch.tensor([0.0, 1.0], dtype=torch.float64)})  # fmt: skip
    torch.testing.assert_close(ends[0], plain[0])  # standing, t = 0
    torch.testing.assert_close(ends[1], plain[0])  # sitting -> standing, t = 1
    middle = mixed.from_draws({**common, "mode": torch.full((n,), 0.5),
                               "other": torch.tensor([1, 0]),
                               "t": torch.tensor([0.5, 0.5], dtype=torch.float64)})  # fmt: skip
    torch.testing.assert_close(middle[0], middle[1])  # half-way either way
    hip = body.bone_labels.index("upperleg01.L")
    lo, hi = sorted((plain[0, hip].norm().item(), plain[1, hip].norm().item()))
    assert lo < middle[0, hip].norm().item() < hi  # the hip bends half-way
    # uniform: every angle within its limits, spread over them
    anywhere = _sampler(body, uniform=1.0)
    anywhere._build_tables()
    _, lows, highs, _, _ = anywhere._tables
    d = anywhere.draw(4000, torch.Generator().manual_seed(1))
    deg = lows + (highs - lows) * d["box"]
    assert torch.all((deg >= lows) & (deg <= highs))
    pose = anywhere.from_draws(d)
    assert pose.shape == (4000, 104, 3) and torch.isfinite(pose).all()
    # beyond the canonical mixture: farther from the nearest canonical pose than its samples
    exact = _sampler(body, noise_std=0.0)
    k = len(exact.canonical)
    zeros_k = torch.zeros(k, dtype=torch.float64)
    centres_pose = exact.from_draws({"which": torch.arange(k), "curl": zeros_k, "yaw": zeros_k,
                                     "normal": torch.zeros(k, d["normal"].shape[1],
                                                           dtype=torch.float64)})  # fmt: skip

    def nearest(p):
        return torch.cdist(p.flatten(1), centres_pose.flatten(1)).min(1).values.mean()

    usual = _sampler(body).sample(4000, torch.Generator().manual_seed(1))
    assert nearest(pose) > 1.2 * nearest(usual)  # measured: 5.1 against 3.5 (radians)
    # bad fractions and options
    for kw in ({"blend": -0.1}, {"uniform": 1.5}, {"blend": 0.6, "uniform": 0.5}):
        with pytest.raises(ValueError, match=r"blend|uniform"):
            _sampler(body, **kw)
    with pytest.raises(ValueError, match="BodyPoseSampler has no option 'blnd'"):
        default_pose_sampler(body, blnd=0.3)
    with pytest.raises(ValueError, match="HandPoseSampler has no option 'blend'"):
        default_pose_sampler(hand, blend=0.3)
    assert default_pose_sampler(body, uniform=0.25).uniform == 0.25


def test_mirrored_poses_are_the_mirror_image(body):
    """mirror: the same draws pose the body into the mirror image of the unmirrored pose.

    The vertex counterparts come from the template (each vertex's nearest neighbour across
    the plane x = mean x), the mirror image by negating x: independent of the sampler's
    tables. Anny's skinning itself is symmetric to 0.4 mm (inner thighs), hence the 1 mm.
    """
    from meshgraph.data.random import CounterRandom

    base = _sampler(body, noise_std=0.0, blend=0.5)
    flipped = _sampler(body, noise_std=0.0, blend=0.5, mirror=1.0)
    n = 2 * len(base.canonical)
    draws = base.draw(n, CounterRandom(7, list(range(n)), 0))
    more = flipped.draw(n, CounterRandom(7, list(range(n)), 0))
    for k, v in draws.items():  # the mirror draws after the others: they stay the same
        assert torch.equal(more[k], v), k
    assert set(more) - set(draws) == {"flip"}
    draws["which"] = torch.arange(n) % len(base.canonical)  # every canonical pose
    va = body(base.from_draws(draws)).double()
    vb = body(flipped.from_draws({**draws, "flip": torch.zeros(n)})).double()
    tv = body.template_vertices().double()
    cx = tv[:, 0].mean()
    mirror_tv = torch.stack([2 * cx - tv[:, 0], tv[:, 1], tv[:, 2]], dim=1)
    counterpart = torch.cat([torch.cdist(c, tv).argmin(1) for c in mirror_tv.split(2048)])
    expected = torch.stack([2 * cx - va[..., 0], va[..., 1], va[..., 2]], dim=-1)
    expected = expected[:, counterpart]
    assert (expected - vb).norm(dim=-1).max() < 1e-3
    lopsided = [i for i in range(n) if base.canonical[int(draws["which"][i])] == "reaching"]
    assert (va[lopsided] - vb[lopsided]).norm(dim=-1).max() > 0.3  # the other arm reaches
    # a fraction: flip draws at or above it keep the pose as it was
    half = _sampler(body, noise_std=0.0, blend=0.5, mirror=0.5)
    keep = half.from_draws({**draws, "flip": torch.full((n,), 0.7)})
    torch.testing.assert_close(keep, base.from_draws(draws))
    with pytest.raises(ValueError, match=r"mirror must be a fraction in \[0, 1\], got 2"):
        _sampler(body, mirror=2)
