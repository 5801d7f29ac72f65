"""Body-29 on Anny: COCO-19 plus heels, big toes, knuckles and thumbs (skipped without anny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("anny")

from meshgraph.bodies import BODY29, COCO, AnnyModel
from tests.bodies.test_anny import _random_pose


def _joints(model, pose):
    j = model.regress_joints(model(pose), "body29")
    return {name: j[:, i] for i, name in enumerate(BODY29.names)}


def test_body29_regressor_is_affine_and_starts_with_coco(body):
    r = body.joint_regressor("body29")
    assert r.shape == (29, body.num_vertices)
    assert torch.all(r >= 0)
    torch.testing.assert_close(r.sum(1), torch.ones(29), atol=1e-5, rtol=0)
    torch.testing.assert_close(r[:19], body.joint_regressor("coco"))


def test_body29_extra_joints_sit_where_their_names_say_at_rest(body):
    x = {k: v[0] for k, v in _joints(body, torch.zeros(1, 104, 3)).items()}
    # Anny at rest: z up, the body faces -y, its left is +x
    for side, sign in (("left", 1.0), ("right", -1.0)):
        ankle, heel, toe = x[f"{side}_ankle"], x[f"{side}_heel"], x[f"{side}_big_toe"]
        assert heel[1] > ankle[1] + 0.02  # the heel is behind the ankle
        assert toe[1] < ankle[1] - 0.12  # the toe tip well in front of it
        assert heel[2] < ankle[2] - 0.03 and toe[2] < ankle[2] - 0.03  # both below it
        assert 0.18 < float((toe - heel).norm()) < 0.30  # an adult foot's length
        wrist = x[f"{side}_wrist"]
        forearm = wrist - x[f"{side}_elbow"]
        forearm = forearm / forearm.norm()
        for part in ("index", "pinky", "thumb"):
            reach = float((x[f"{side}_{part}"] - wrist) @ forearm)
            assert 0.03 < reach < 0.15, (side, part, reach)  # beyond the wrist, on the hand
        # in Anny's rest A-pose the pinky knuckle lies further from the midline than the index
        assert sign * float(x[f"{side}_pinky"][0] - x[f"{side}_index"][0]) > 0.0


def test_body29_is_mirror_symmetric_at_rest(body):
    x = {k: v[0] for k, v in _joints(body, torch.zeros(1, 104, 3)).items()}
    flip = torch.tensor([-1.0, 1.0, 1.0])
    for name in BODY29.names[19:]:
        if name.startswith("left_"):
            other = x["right_" + name[5:]]
            # Anny's mesh is mirror-symmetric to about 0.4 mm
            torch.testing.assert_close(x[name] * flip, other, atol=2e-3, rtol=0)


def test_body29_feet_and_hands_move_with_their_bones(body):
    """On random poses the heel and toe keep their distances to the ankle (one rigid foot)."""
    rest = _joints(body, torch.zeros(1, 104, 3))
    posed = _joints(body, _random_pose(body, 6, seed=5))
    for side in ("left", "right"):
        for part in ("heel", "big_toe"):
            d0 = (rest[f"{side}_{part}"] - rest[f"{side}_ankle"]).norm(dim=-1)
            d = (posed[f"{side}_{part}"] - posed[f"{side}_ankle"]).norm(dim=-1)
            # the toe bends at its own joints: allow 2 cm; the heel is rigid to 1 cm
            tol = 0.02 if part == "big_toe" else 0.01
            assert (d - d0).abs().max() < tol, (side, part, d, d0)
        out = body.run(_random_pose(body, 6, seed=5))
        j = body.regress_joints(out["vertices"], "body29")
        heads = body.bone_heads(out)
        for part, bone in (("index", "finger2-1"), ("pinky", "finger5-1"), ("thumb", "finger1-2")):
            b = body.bone_labels.index(f"{bone}.{side[0].upper()}")
            off = j[:, BODY29.index(f"{side}_{part}")] - heads[:, b]
            assert off.norm(dim=-1).max() < 0.01, (side, part)


def test_simplified_topology_body29_follows_the_full_mesh(body):
    small = AnnyModel("body", topology="notoes_collapse10pc", regressor_cache_dir=False)
    pose = _random_pose(body, 8, seed=9)
    err = small.regress_joints(small(pose), "body29") - body.regress_joints(body(pose), "body29")
    per_joint = err.norm(dim=-1).mean(0)
    # measured below 1 cm for the COCO joints; the toes are collapsed on the small mesh
    assert per_joint[:19].max() < 0.01
    assert per_joint[19:].max() < 0.02, per_joint[19:]


def test_body29_flip_pairs_join_left_and_right_of_each_name():
    perm = BODY29.flip_permutation()
    for i, name in enumerate(BODY29.names):
        if name.startswith("left_"):
            assert BODY29.names[perm[i]] == "right_" + name[5:]
        elif name.startswith("right_"):
            assert BODY29.names[perm[i]] == "left_" + name[6:]
        else:
            assert perm[i] == i
    assert BODY29.names[:19] == COCO.names and BODY29.root == COCO.root


def test_body29_bones_hang_each_extra_joint_from_its_ankle_or_wrist():
    parents = {b: a for a, b in BODY29.bones if b >= 19}
    for i, name in enumerate(BODY29.names[19:], start=19):
        side, part = name.split("_", 1)
        limb_end = "ankle" if part in ("heel", "big_toe") else "wrist"
        assert BODY29.names[parents[i]] == f"{side}_{limb_end}"


def test_body29_runs_through_a_pose2mesh_model(body):
    from meshgraph.models import Pose2Mesh, Pose2MeshConfig

    small = AnnyModel("body", topology="notoes_collapse10pc", regressor_cache_dir=False)
    cfg = Pose2MeshConfig(
        joint_set="body29", num_levels=4, posenet_width=64, coarse_channels=16,
        visibility_input=True,
    )  # fmt: skip
    torch.manual_seed(0)
    model = Pose2Mesh.from_body(small, cfg).eval()
    kp = np.random.default_rng(0).uniform(100, 400, (29, 3))
    kp[:, 2] = 1.0
    kp[19:, 2] = 0.0  # a COCO-only detector: the extra joints missing
    out = model.predict(kp)
    assert out.vertices.shape == (1, 1229, 3) and out.joints_3d.shape == (1, 29, 3)
    assert torch.isfinite(out.vertices).all()
    assert out.visible[0].tolist() == [True] * 19 + [False] * 10
    with pytest.raises(ValueError, match="29"):
        model.predict(kp[:19])


def test_anchors_are_the_old_joints_the_new_ones_hang_from():
    # by hand from the bone lists: heels and toes on the ankles, hand points on the wrists
    assert BODY29.anchors(19) == [15, 16, 15, 16, 9, 10, 9, 10, 9, 10]
    # COCO-19's pelvis is joined to the hips (left first), its neck to the shoulders
    assert COCO.anchors(17) == [11, 5]
    assert COCO.anchors(19) == []
