"""Anny body and hand models (skipped when anny is not installed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("anny")

from meshgraph.bodies import H36M, HAND, AnnyModel, axis_angle_to_matrix
from tests.helpers import run_python


def _random_pose(model, n, scale=0.3, seed=3):
    g = torch.Generator().manual_seed(seed)
    pose = scale * torch.randn(n, model.num_bones, 3, generator=g)
    pose[:, 0] = 0
    return pose


def test_sizes(body, hand):
    assert body.num_vertices == 13718 and body.num_bones == 104
    assert tuple(body.faces.shape) == (27420, 3)
    assert body.topology.num_vertices == 13718
    assert hand.num_vertices == 1609 and hand.num_bones == 21
    assert body.dtype == torch.float32
    v = body(torch.zeros(2, 104, 3))
    assert v.shape == (2, 13718, 3) and v.dtype == torch.float32


def test_translation_and_root_rotation(body):
    pose = _random_pose(body, 2)
    base = body(pose)
    shift = torch.tensor([[0.1, -0.2, 0.3], [1.0, 2.0, 3.0]])
    torch.testing.assert_close(
        body(pose, translation=shift), base + shift[:, None], atol=1e-5, rtol=0
    )
    rot = torch.tensor([[0.0, 0.0, 1.2], [0.5, -0.3, 0.1]])
    posed = pose.clone()
    posed[:, 0] = rot
    r = axis_angle_to_matrix(rot)
    torch.testing.assert_close(body(posed), base @ r.transpose(1, 2), atol=1e-4, rtol=0)


def test_bad_parameters(body):
    with pytest.raises(ValueError, match=r"pose must have shape \(B, 104, 3\)"):
        body(torch.zeros(2, 24, 3))
    with pytest.raises(ValueError, match="NaN"):
        body(torch.full((1, 104, 3), float("nan")))
    with pytest.raises(ValueError, match=r"\[0, 1\].*\(age\)"):
        body(torch.zeros(1, 104, 3), shape=torch.tensor([[0.5, 1.5, 0.5, 0.5, 0.5, 0.5]]))
    with pytest.raises(ValueError, match="shape must have shape"):
        body(torch.zeros(1, 104, 3), shape=torch.zeros(1, 5))
    with pytest.raises(TypeError, match="floating"):
        body(torch.zeros(1, 104, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="kind"):
        AnnyModel("foot")
    with pytest.raises(ValueError, match="no regressor for joint set 'hand'"):
        body.joint_regressor("hand")
    with pytest.raises(ValueError, match="known"):
        body.joint_regressor("mpii")


def test_regressors_are_affine_and_nonnegative(body, hand):
    for model, names in ((body, ("coco", "h36m")), (hand, ("hand",))):
        for name in names:
            r = model.joint_regressor(name)
            assert r.shape[1] == model.num_vertices
            assert torch.all(r >= 0)
            torch.testing.assert_close(r.sum(1), torch.ones(r.shape[0]), atol=1e-5, rtol=0)


def test_coco_matches_anny_keypoints(body):
    import anny

    kp = anny.KeypointsRegressor.coco(body.model)
    out = body.run(_random_pose(body, 2))
    theirs = kp(out)
    ours = body.regress_joints(out["vertices"], "coco")
    for i, name in enumerate(kp.labels[:17]):
        torch.testing.assert_close(ours[:, i], theirs[:, i], atol=1e-5, rtol=0, msg=name)
    lh, rh = kp.labels.index("left_hip"), kp.labels.index("right_hip")
    torch.testing.assert_close(
        ours[:, 17], 0.5 * (theirs[:, lh] + theirs[:, rh]), atol=1e-5, rtol=0
    )


def test_h36m_joints_on_the_rest_pose(body):
    out = body.run(torch.zeros(1, 104, 3))
    j = body.regress_joints(out["vertices"], "h36m")[0]
    x = {n: j[H36M.index(n)] for n in H36M.names}
    # left is +x on Anny (the model faces -y, z up)
    for part in ("Hip", "Knee", "Ankle", "Shoulder", "Elbow", "Wrist"):
        assert x[f"L_{part}"][0] > 0.05 and x[f"R_{part}"][0] < -0.05, part
    torch.testing.assert_close(x["Pelvis"], 0.5 * (x["L_Hip"] + x["R_Hip"]))
    z = {n: float(v[2]) for n, v in x.items()}
    assert z["L_Ankle"] < z["L_Knee"] < z["L_Hip"] < z["Torso"] < z["Neck"] < z["Head"]
    assert z["L_Wrist"] < z["L_Elbow"] < z["L_Shoulder"]
    assert x["Nose"][1] < x["Neck"][1] - 0.05  # the nose is in front
    assert z["Nose"] < z["Head"]


def test_fitted_joints_move_with_the_rig(body, hand):
    """On held-out poses, regressed joints move with the rig's bone heads.

    The regressors are fitted on poses of the average shape: there the joints must coincide
    with the rig's joint centres and move rigidly with them.
    """
    for model, pairs in (
        (body, {"R_Knee": "lowerleg01.R", "L_Elbow": "lowerarm01.L", "Neck": "neck01"}),
        (hand, {"index_2": "finger2-2.R", "thumb_1": "finger1-1.R", "wrist": "wrist.R"}),
    ):
        pose = _random_pose(model, 8, seed=11)
        pose[0] = 0.0
        out = model.run(pose)
        heads = model.bone_heads(out)
        js = "h36m" if model is body else "hand"
        names = H36M if model is body else HAND
        j = model.regress_joints(out["vertices"], js)
        for jn, bone in pairs.items():
            offset = j[:, names.index(jn)] - heads[:, model.bone_labels.index(bone)]
            # measured: < 3 mm for limb joints, up to 7 mm for the neck (many bones meet there)
            assert offset.norm(dim=-1).max() < 0.01, (jn, offset)


def test_hand_tips_beyond_distal_joints(hand):
    out = hand.run(torch.zeros(1, 21, 3))
    j = hand.regress_joints(out["vertices"], "hand")[0]
    wrist = j[0]
    for f in range(5):
        base, dip, tip = j[1 + 4 * f], j[3 + 4 * f], j[4 + 4 * f]
        assert (tip - wrist).norm() > (dip - wrist).norm() > (base - wrist).norm()
        assert 0.01 < (tip - dip).norm() < 0.05


def test_simplified_topology_regressors_follow_the_full_mesh(body):
    small = AnnyModel("body", topology="notoes_collapse10pc", regressor_cache_dir=False)
    assert small.num_vertices == 1229 and small.num_bones == 104
    pose = 0.3 * torch.randn(8, 104, 3, generator=torch.Generator().manual_seed(4))
    pose[:, 0] = 0
    for js in ("coco", "h36m"):
        err = small.regress_joints(small(pose), js) - body.regress_joints(body(pose), js)
        # measured: at most 6 mm (COCO's eyes and the H36M head are rebuilt from fewer vertices)
        assert err.norm(dim=-1).mean(0).max() < 0.01, js


def test_regressor_cache_is_reused(tmp_path, monkeypatch):
    model = AnnyModel("hand.L", regressor_cache_dir=tmp_path)
    r = model.joint_regressor("hand")
    assert len(list(tmp_path.glob("regressor-anny-hand.L-*.npz"))) == 1
    again = AnnyModel("hand.L", regressor_cache_dir=tmp_path)
    monkeypatch.setattr(again, "_fit_regressor", lambda js: (_ for _ in ()).throw(AssertionError))
    torch.testing.assert_close(again.joint_regressor("hand"), r)
    assert np.isfinite(r.numpy()).all()


def test_anny_rig_facts(anny_body, anny_hand):
    assert not anny_body.is_hand and anny_body.side is None
    assert anny_hand.is_hand and anny_hand.side == "R"
    torch.testing.assert_close(anny_body.world_rotation, torch.eye(3, dtype=torch.float64))
    heads = anny_body.rest_joints()
    assert heads.shape == (anny_body.num_bones, 3)
    # z is up in Anny's world: the head is above the feet, the left hip at +x
    labels = anny_body.bone_labels
    assert heads[labels.index("head"), 2] > heads[labels.index("foot.L"), 2] + 1.2
    assert heads[labels.index("upperleg01.L"), 0] > heads[labels.index("upperleg01.R"), 0]


@pytest.mark.parametrize("which", ["body", "hand"])
def test_posed_vertices_match_the_whole_mesh(which, body, hand, device):
    """Skinning a subset equals Anny's own forward (warp or torch skinning) on those vertices."""
    model = (body if which == "body" else hand).to(device)
    n = 3
    g = torch.Generator().manual_seed(5)
    pose = 0.4 * torch.randn(n, model.num_bones, 3, generator=g)
    shape = torch.rand(n, 6, generator=g)
    shift = torch.randn(n, 3, generator=g)
    ids = torch.randperm(model.num_vertices, generator=g)[:50]
    ids[:2] = torch.tensor([0, model.num_vertices - 1])
    args = (pose.to(device), shape.to(device), shift.to(device))
    with torch.no_grad():
        whole = model(*args)
        some = model.posed_vertices(ids, *args)
        plain = model.posed_vertices(ids, args[0])  # default shape, no translation
    assert some.shape == (n, 50, 3) and some.device == whole.device
    torch.testing.assert_close(some, whole[:, ids.to(device)], atol=2e-5, rtol=0)
    torch.testing.assert_close(plain, model(args[0])[:, ids.to(device)], atol=2e-5, rtol=0)
    # more than half the mesh: Anny's own skinning, indexed
    many = torch.randperm(model.num_vertices, generator=g)[: 3 * model.num_vertices // 4]
    with torch.no_grad():
        torch.testing.assert_close(model.posed_vertices(many, *args), whole[:, many.to(device)])
    # repeated and empty index lists
    twice = model.posed_vertices(torch.tensor([7, 7]), args[0])
    torch.testing.assert_close(twice[:, 0], twice[:, 1])
    assert model.posed_vertices(torch.zeros(0, dtype=torch.long), args[0]).shape == (n, 0, 3)
    model.to("cpu")


def test_posed_vertices_bad_indices(body):
    pose = torch.zeros(1, 104, 3)
    with pytest.raises(TypeError, match="integer tensor"):
        body.posed_vertices(torch.tensor([0.0, 1.0]), pose)
    with pytest.raises(TypeError, match="integer tensor"):
        body.posed_vertices([0, 1], pose)
    with pytest.raises(ValueError, match="one-dimensional"):
        body.posed_vertices(torch.zeros(2, 2, dtype=torch.long), pose)
    with pytest.raises(ValueError, match=r"\[0, 13718\)"):
        body.posed_vertices(torch.tensor([0, 13718]), pose)
    with pytest.raises(ValueError, match=r"\[0, 13718\)"):
        body.posed_vertices(torch.tensor([-1]), pose)
    with pytest.raises(ValueError, match="pose must have shape"):
        body.posed_vertices(torch.tensor([0]), torch.zeros(1, 3, 3))


@pytest.mark.parametrize("kind", ["body", "hand.R", "hand.L"])
def test_run_matches_annys_own_forward(kind, tmp_path):
    """run() calls Anny's steps one by one with meshgraph's forward kinematics: the same
    vertices, bone poses and rest data as anny.Anny's forward, first call and later ones."""
    model = AnnyModel(kind, "notoes_collapse10pc" if kind == "body" else None,
                      regressor_cache_dir=tmp_path)  # fmt: skip
    g = torch.Generator().manual_seed(11)
    pose = 0.5 * torch.randn(4, model.num_bones, 3, generator=g)
    shape = torch.rand(4, 6, generator=g)
    shift = torch.randn(4, 3, generator=g)
    mats = model.pose_matrices(pose, shift)
    with torch.no_grad():
        ref = model.model(pose_parameters=mats, phenotype_kwargs=shape)
        first = model.run(pose, shape, shift)  # compares the two kinematics, keeps meshgraph's
        assert model._fast_kinematics is True
        later = model.run(pose, shape, shift)
    assert set(later) == set(ref)
    for key, value in later.items():  # the first call gave the numbers of the later ones
        assert torch.equal(first[key], value), key
    for out in (first, later):
        for key in ("vertices", "bone_poses", "rest_vertices", "rest_bone_poses"):
            torch.testing.assert_close(out[key], ref[key], atol=1e-5, rtol=0, msg=key)


def test_kinematics_fall_back_to_annys_when_they_disagree(tmp_path, monkeypatch):
    from meshgraph.bodies import anny_model

    model = AnnyModel("hand.R", regressor_cache_dir=tmp_path)
    pose = 0.3 * torch.randn(2, model.num_bones, 3)
    with torch.no_grad():  # Anny's own forward (the model has not compared kinematics yet)
        expected = model.model(pose_parameters=model.pose_matrices(pose))["vertices"]

    def wrong(m, rest, deltas):
        t, p = m.get_bone_transforms(deltas, rest)
        return t + 0.01, p

    monkeypatch.setattr(anny_model, "_local_ref_kinematics", wrong)
    with torch.no_grad():
        torch.testing.assert_close(model(pose), expected, atol=1e-5, rtol=0)
        assert model._fast_kinematics is False
        torch.testing.assert_close(model(pose), expected, atol=1e-5, rtol=0)  # Anny's from now on
    # another parameterisation, or no kinematic chain: not handled
    fake = type("Fake", (), {"pose_parameterization": "local-bone"})()
    assert anny_model.__dict__["_local_ref_kinematics"] is wrong
    monkeypatch.undo()
    assert anny_model._local_ref_kinematics(fake, torch.zeros(1, 2, 4, 4), None) is None


def test_kinematics_check_does_not_trust_the_rest_pose(tmp_path, monkeypatch):
    """Kinematics right at the rest pose only are refused even if the first call is the rest
    pose (the check poses every bone)."""
    from meshgraph.bodies import anny_model

    real = anny_model._local_ref_kinematics

    def right_at_rest_only(m, rest, deltas):
        t, p = real(m, rest, deltas)
        eye = torch.eye(4, dtype=deltas.dtype, device=deltas.device)
        moved = not torch.allclose(deltas, eye.expand_as(deltas))
        return (t + 0.01, p) if moved else (t, p)

    model = AnnyModel("hand.R", regressor_cache_dir=tmp_path)
    monkeypatch.setattr(anny_model, "_local_ref_kinematics", right_at_rest_only)
    with torch.no_grad():
        model(torch.zeros(1, model.num_bones, 3))
    assert model._fast_kinematics is False


def test_left_hand_is_the_right_hand_mirrored(anny_hand, tmp_path):
    """What Pose2Mesh.mirrored() relies on: Anny's left hand is its right hand with x negated,
    vertex for vertex, and its Hand-21 joints are regressed from the same vertices."""
    left = AnnyModel("hand.L", regressor_cache_dir=tmp_path)
    right_t = anny_hand.template_vertices().double()
    mirrored = right_t * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(left.template_vertices().double(), mirrored, rtol=0, atol=1e-6)
    torch.testing.assert_close(left.joint_regressor("hand"), anny_hand.joint_regressor("hand"),
                               rtol=0, atol=1e-5)  # fmt: skip
    # the same triangles, wound the other way
    as_sets = {frozenset(f) for f in left.faces.tolist()}
    assert as_sets == {frozenset(f) for f in anny_hand.faces.tolist()}


def test_warp_greets_on_stdout_and_stderr_only_when_the_user_asked_for_it():
    pytest.importorskip("warp")
    # a posed hand: Anny starts Warp and launches its skinning kernels
    pose = (
        "from meshgraph.bodies import AnnyModel\n"
        "import torch\n"
        "v = AnnyModel('hand.R')(torch.full((1, 21, 3), 0.1))\n"
        "print('shape', tuple(v.shape))\n"
    )
    quiet = run_python(pose)
    assert quiet.stdout.splitlines() == ["shape (1, 1609, 3)"]
    # Warp's native no-driver warning is left out of stderr (on a machine with a driver Warp
    # does not write it at all); whatever else goes to stderr is kept
    assert "CUDA driver" not in quiet.stderr
    noisy = run_python("import sys\nprint('kept', file=sys.stderr)\n" + pose)
    assert noisy.stderr.splitlines()[0] == "kept"
    # a process that set up Warp itself keeps its settings (here: the greeting)
    user = "import warp\nwarp.config.log_level = warp.LOG_INFO\n" + pose
    out = run_python(user).stdout
    assert "Warp" in out and out.splitlines()[-1] == "shape (1, 1609, 3)"


def test_population_height_sd_gives_adult_statures_a_population_spread(body):
    """Uniform height phenotypes spread adult statures far wider than people's (about 10 cm)."""
    from meshgraph.data.poses import POPULATION_HEIGHT_SD, ShapeSampler

    def statures(sampler):
        shapes = sampler.sample(256, torch.Generator().manual_seed(0)).float()
        with torch.no_grad():
            v = body(torch.zeros(256, body.num_bones, 3), shapes)
        return (v.amax(1) - v.amin(1)).amax(-1).double()  # head to heel: the longest extent

    uniform = statures(ShapeSampler())
    population = statures(ShapeSampler(height_sd=POPULATION_HEIGHT_SD))
    assert 0.25 < float(uniform.std()) < 0.37  # 1.2 to 2.4 m
    assert 0.08 < float(population.std()) < 0.12
    assert 1.5 < float(population.mean()) < 1.9
