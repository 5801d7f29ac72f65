from __future__ import annotations

import numpy as np
import pytest
import torch

from meshgraph.generators import icosphere
from meshgraph.models import Pose2Mesh, Pose2MeshConfig, fit_weak_perspective


def _model(layout="compact", **config):
    mesh = icosphere(3)
    reg = torch.rand(17, mesh.num_vertices)
    reg = reg / reg.sum(1, keepdim=True)
    cfg = Pose2MeshConfig(joint_set="h36m", num_levels=4, layout=layout, posenet_width=32,
                          coarse_channels=8, decoder_channels=(8, 8, 8, 8), **config)  # fmt: skip
    return Pose2Mesh(cfg, mesh, reg).eval()


def _pixels(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 300 + 100 * torch.randn(n, 17, 2, generator=g, dtype=torch.float64)


def test_fit_weak_perspective_recovers_a_known_camera():
    x = torch.randn(3, 17, 3, dtype=torch.float64)
    cam = torch.tensor([[500.0, 10.0, -20.0], [80.0, 300.0, 200.0], [1.0, 0.0, 0.0]],
                       dtype=torch.float64)  # fmt: skip
    u = cam[:, :1, None] * x[..., :2] + cam[:, None, 1:]
    torch.testing.assert_close(fit_weak_perspective(x, u), cam)
    vis = torch.ones(3, 17, dtype=torch.bool)
    vis[:, :5] = False
    u2 = u.clone()
    u2[:, :5] += 1000.0  # invisible joints are ignored
    torch.testing.assert_close(fit_weak_perspective(x, u2, vis), cam)


@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
def test_forward_and_predict(layout):
    model = _model(layout)
    pred = model.predict(_pixels())
    assert pred.vertices.shape == (2, model.num_vertices, 3)
    assert pred.joints_3d.shape == (2, 17, 3) and pred.mesh_joints_3d.shape == (2, 17, 3)
    assert pred.camera.shape == (2, 3)
    single = model.predict(_pixels()[0].numpy())  # (J, 2) numpy works too
    torch.testing.assert_close(single.vertices[0], pred.vertices[0], atol=1e-5, rtol=1e-5)
    # confidences: low-confidence joints are ignored
    conf = torch.ones(2, 17, 1, dtype=torch.float64)
    conf[:, 3] = 0.0
    with_conf = model.predict(torch.cat([_pixels(), conf], dim=-1))
    assert not with_conf.visible[:, 3].any() and with_conf.visible[:, 4].all()
    # the prediction is invariant to translating and scaling the pixel input
    moved = model.predict(_pixels() * 2.5 + 40)
    torch.testing.assert_close(moved.vertices, pred.vertices, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(moved.camera[:, 0], pred.camera[:, 0] * 2.5, atol=1e-3, rtol=1e-4)


@pytest.mark.parametrize("variant", ["coarse_to_fine", "fc"])
def test_visibility_input_ignores_missing_joints(variant, tmp_path):
    torch.manual_seed(0)
    model = _model(visibility_input=True, variant=variant)
    assert model.posenet.inp.in_features == 3 * 17
    x = torch.randn(4, 17, 2)
    visible = torch.ones(4, 17, dtype=torch.bool)
    visible[:, [3, 6]] = False
    out = model(x, visible)
    # whatever a missing joint holds, the output is the same
    moved = x.clone()
    moved[:, [3, 6]] = torch.randn(4, 2, 2) * 5
    again = model(moved, visible)
    for key in out:
        torch.testing.assert_close(again[key], out[key], rtol=0, atol=0)
    # ... and it differs from the output with those joints seen
    assert not torch.allclose(model(x)["vertices"], out["vertices"])
    # the network input, by hand: zeroed coordinates and a 0/1 channel
    inp = model.network_input(moved, visible)
    assert inp.shape == (4, 17, 3)
    assert torch.equal(inp[..., 2], visible.float()) and not inp[:, [3, 6], :2].any()
    with pytest.raises(ValueError, match=r"visible must have shape \(4, 17\)"):
        model(x, visible[:, :5])
    # predict hands its visibility to the network: a NaN on a low-confidence joint is harmless,
    # and the result is what the network gives for those joints missing
    px = _pixels(4).double()
    conf = torch.ones(4, 17, 1, dtype=torch.float64)
    conf[:, [3, 6]] = 0.0
    px_nan = px.clone()
    px_nan[:, [3, 6]] = float("nan")
    pred = model.predict(torch.cat([px_nan, conf], -1))
    pred_other = model.predict(torch.cat([px, conf], -1))
    torch.testing.assert_close(pred.vertices, pred_other.vertices, rtol=0, atol=0)
    # a model without the visibility channel takes the mask and ignores it
    plain = _model()
    torch.testing.assert_close(plain(x, visible)["vertices"], plain(x)["vertices"])
    # the setting survives save and load
    model.save(tmp_path / "m.pt")
    loaded = Pose2Mesh.load(tmp_path / "m.pt").eval()
    assert loaded.config.visibility_input
    torch.testing.assert_close(loaded(x, visible)["vertices"], out["vertices"])


def _hand_model(**config):
    mesh = icosphere(2)
    reg = torch.rand(21, mesh.num_vertices)
    reg = reg / reg.sum(1, keepdim=True)
    cfg = Pose2MeshConfig(body="anny-hand.R", joint_set="hand", mesh_joint_set="hand",
                          num_levels=3, posenet_width=32, coarse_channels=8,
                          decoder_channels=(8, 8, 8), **config)  # fmt: skip
    return Pose2Mesh(cfg, mesh, reg).eval()


def test_mirrored_hand_is_the_mirror_image(tmp_path):
    torch.manual_seed(0)
    right = _hand_model(canonical_frame=True)
    left = right.mirrored().eval()
    assert left.config.mirror and left.config.body == "anny-hand.L"
    assert right.config.body == "anny-hand.R" and not right.config.mirror  # a copy
    # by hand: the left model's answer to x is the right model's answer to the image mirrored
    # (x -> -x), mirrored back in 3D (X -> -X)
    x = torch.randn(3, 21, 2)
    flip2, flip3 = torch.tensor([-1.0, 1.0]), torch.tensor([-1.0, 1.0, 1.0])
    out, ref = left(x), right(x * flip2)
    for key in out:
        torch.testing.assert_close(out[key], ref[key] * flip3, rtol=1e-5, atol=1e-6)
    # faces wound the other way, so normals still point outwards
    assert torch.equal(left.faces, right.faces[:, [0, 2, 1]])
    # pixels: a mirrored photo of a right hand gives the left model the right hand's mesh,
    # mirrored, and a camera that places it where the photo has it
    px = 200 + 40 * torch.randn(21, 2, dtype=torch.float64)
    mirrored_px = px * torch.tensor([-1.0, 1.0], dtype=torch.float64) + torch.tensor([640.0, 0])
    a, b = left.predict(mirrored_px), right.predict(px)
    torch.testing.assert_close(a.vertices, b.vertices * flip3, rtol=1e-4, atol=1e-5)
    assert a.camera[0, 0] == pytest.approx(float(b.camera[0, 0]), rel=1e-4)
    # twice mirrored is the original; save and load keep the side
    back = left.mirrored()
    assert not back.config.mirror and back.config.body == "anny-hand.R"
    torch.testing.assert_close(back(x)["vertices"], right(x)["vertices"])
    left.save(tmp_path / "left.pt")
    loaded = Pose2Mesh.load(tmp_path / "left.pt").eval()
    torch.testing.assert_close(loaded(x)["vertices"], out["vertices"])
    assert torch.equal(loaded.faces, left.faces)


def test_flip_test_averages_the_answer_to_the_mirrored_input(tmp_path):
    from meshgraph.generators import icosphere_vertices_faces

    torch.manual_seed(0)
    model = _model(visibility_input=True).double()  # float64: the batches round alike
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # no symmetry left in the weights
    pts, _ = icosphere_vertices_faces(3)
    tested = model.flip_tested(torch.from_numpy(pts))
    assert model.vertex_flip is None and tested.vertex_flip is not None  # a copy
    # the reference, by hand: each vertex's mirror partner by brute force; H3.6M's left and
    # right joints by name
    partner = [int(np.argmin(((pts - p * [-1.0, 1.0, 1.0]) ** 2).sum(1))) for p in pts]
    names = model.joint_set.names
    swap = [names.index(n.replace("L_", "R_") if n.startswith("L_") else n.replace("R_", "L_"))
            for n in names]  # fmt: skip
    assert swap != list(range(17))
    x = torch.randn(3, 17, 2, dtype=torch.float64)
    vis = torch.rand(3, 17) > 0.2
    xm = (x * torch.tensor([-1.0, 1.0], dtype=torch.float64))[:, swap]
    a, b = model(x, vis), model(xm, vis[:, swap])
    flip3 = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    ref_v = 0.5 * (a["vertices"] + (b["vertices"] * flip3)[:, partner])
    ref_j = 0.5 * (a["joints_3d"] + (b["joints_3d"] * flip3)[:, swap])
    out = tested(x, vis)
    torch.testing.assert_close(out["vertices"], ref_v, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out["joints_3d"], ref_j, rtol=1e-5, atol=1e-6)
    reg = model.mesh_regressor.double()
    torch.testing.assert_close(out["mesh_joints_3d"], torch.einsum("jv,bvc->bjc", reg, ref_v))
    # so the flip-tested model is exactly mirror-equivariant (the plain one is not)
    mirrored = tested(xm, vis[:, swap])
    torch.testing.assert_close(mirrored["vertices"], (out["vertices"] * flip3)[:, partner],
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    assert not torch.allclose(b["vertices"], (a["vertices"] * flip3)[:, partner], atol=1e-3)
    # predict uses it; save and load keep it
    px = _pixels()
    assert not torch.allclose(tested.predict(px).vertices, model.predict(px).vertices)
    tested.save(tmp_path / "t.pt")
    loaded = Pose2Mesh.load(tmp_path / "t.pt").eval()
    assert torch.equal(loaded.vertex_flip, tested.vertex_flip)
    assert tested.joint_flip.tolist() == loaded.joint_flip.tolist() == swap  # kept, not rebuilt
    torch.testing.assert_close(loaded(x, vis)["vertices"], out["vertices"])
    assert Pose2Mesh.load(model.save(tmp_path / "m.pt")).vertex_flip is None
    with pytest.raises(ValueError, match=r"visible must have shape \(3, 17\).*got \(2, 17\)"):
        tested(x, vis[:2])


def test_flip_test_needs_left_and_right_and_a_symmetric_template():
    from meshgraph.generators import icosphere_vertices_faces

    pts = torch.from_numpy(icosphere_vertices_faces(3)[0])
    with pytest.raises(ValueError, match="flip test: the hand joint set has no left/right"):
        _hand_model().flip_tested(pts)
    with pytest.raises(ValueError, match=r"template must have shape \(642, 3\)"):
        _model().flip_tested(pts[:10])
    lopsided = pts.clone()
    lopsided[5, 0] += 0.01  # one vertex 1 cm off the plane (the unit sphere as metres)
    with pytest.raises(ValueError, match="not mirror symmetric"):
        _model().flip_tested(lopsided)
    assert _model().flip_tested(lopsided, atol=0.03).vertex_flip is not None


def test_only_anny_hands_mirror():
    with pytest.raises(ValueError, match="only hands can be mirrored"):
        _model().mirrored()
    hand = _hand_model()
    hand.config.body = "mano"
    with pytest.raises(ValueError, match="'mano' is not one of Anny's hands"):
        hand.mirrored()
    with pytest.raises(ValueError, match="mirror: the h36m joint set has left/right joints"):
        _model(mirror=True)


def test_predict_rejects_degenerate_input():
    model = _model()
    with pytest.raises(ValueError, match=r"\(17, 2\|3\).*Pelvis"):
        model.predict(torch.zeros(19, 2))
    bad = _pixels()
    bad[0, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        model.predict(bad)
    with pytest.raises(ValueError, match="one point"):
        model.predict(torch.full((17, 2), 100.0))
    conf = torch.zeros(17, 3)
    conf[:, :2] = _pixels()[0].float()
    conf[:3, 2] = 1.0
    with pytest.raises(ValueError, match="too few visible joints: 3"):
        model.predict(conf)


def test_save_load_roundtrip(tmp_path):
    model = _model("binary_tree")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))  # not the initial weights
    path = model.save(tmp_path / "m.pt")
    assert not list(tmp_path.glob("*.tmp"))
    loaded = Pose2Mesh.load(path)
    assert loaded.config == model.config
    assert loaded.hierarchy.sizes == model.hierarchy.sizes
    a, b = model.predict(_pixels()), loaded.predict(_pixels())
    torch.testing.assert_close(a.vertices, b.vertices)
    torch.testing.assert_close(a.mesh_joints_3d, b.mesh_joints_3d)
    with pytest.raises(FileNotFoundError, match="no Pose2Mesh model"):
        Pose2Mesh.load(tmp_path / "missing.pt")
    torch.save({"format": "other"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not a meshgraph Pose2Mesh"):
        Pose2Mesh.load(tmp_path / "x.pt")


def test_regressor_shape_is_checked():
    mesh = icosphere(1)
    with pytest.raises(ValueError, match="mesh_regressor"):
        Pose2Mesh(Pose2MeshConfig(joint_set="h36m", num_levels=2), mesh, torch.zeros(17, 5))


def test_from_anny_hand(anny_hand):
    model = Pose2Mesh.from_body(anny_hand, joint_set="hand", mesh_joint_set="hand", num_levels=5,
                                posenet_width=32, coarse_channels=8)  # fmt: skip
    assert model.config.body == "anny-hand.R" and model.num_vertices == 1609
    pred = model.predict(np.random.default_rng(0).random((21, 2)) * 200)
    assert pred.vertices.shape == (1, 1609, 3)


def test_fc_variant_trains_saves_and_loads(tmp_path):
    from meshgraph.models import FCBaseline

    mesh = icosphere(2)
    reg = torch.full((17, mesh.num_vertices), 1.0 / mesh.num_vertices)
    cfg = Pose2MeshConfig(joint_set="h36m", num_levels=3, variant="fc", fc_hidden=(16,),
                          posenet_width=32)  # fmt: skip
    model = Pose2Mesh(cfg, mesh, reg)
    assert isinstance(model.meshnet, FCBaseline)
    out = model(torch.randn(4, 17, 2))
    assert out["vertices"].shape == (4, mesh.num_vertices, 3)
    out["vertices"].square().mean().backward()  # gradients reach the MLP
    assert model.meshnet.mlp[0].weight.grad.abs().sum() > 0
    loaded = Pose2Mesh.load(model.eval().save(tmp_path / "fc.pt"))
    assert loaded.config.fc_hidden == (16,)
    a, b = loaded.predict(_pixels()), model.predict(_pixels())
    torch.testing.assert_close(a.vertices, b.vertices)
    with pytest.raises(ValueError, match="variant must be"):
        Pose2Mesh(Pose2MeshConfig(joint_set="h36m", num_levels=2, variant="mlp"), mesh, reg)


@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
def test_spiral_pose2mesh_trains_saves_and_loads(layout, tmp_path):
    from meshgraph.nn import MeshChebConv, SpiralConv

    model = _model(layout, conv="spiral", spiral_length=7, spiral_dilation=2)
    mesh_convs = [m for m in model.meshnet.decoder.modules() if isinstance(m, SpiralConv)]
    assert mesh_convs and all((c.length, c.dilation) == (7, 2) for c in mesh_convs)
    assert not any(isinstance(m, MeshChebConv) for m in model.meshnet.decoder.modules())
    model.train()
    out = model(torch.randn(4, 17, 2))
    out["vertices"].square().mean().backward()
    assert all(c.weight.grad is not None for c in mesh_convs)
    model.eval()
    loaded = Pose2Mesh.load(model.save(tmp_path / "spiral.pt"))
    assert loaded.config.conv == "spiral" and loaded.config.spiral_length == 7
    torch.testing.assert_close(
        loaded.predict(_pixels()).vertices, model.predict(_pixels()).vertices
    )


def test_config_refuses_unknown_convolutions():
    with pytest.raises(ValueError, match="conv must be one of"):
        Pose2MeshConfig(conv="gcn")
    with pytest.raises(ValueError, match="spiral_length"):
        Pose2MeshConfig(conv="spiral", spiral_length=0)


def _output_map():
    """A map from icosphere(3) (the test model's mesh) onto icosphere(4): 3/4 of the nearest
    rest vertex and 1/4 of the next."""
    from scipy.spatial import cKDTree

    from meshgraph.generators import icosphere_vertices_faces
    from meshgraph.nn.vertex_map import VertexMap

    v3, _ = icosphere_vertices_faces(3)
    v4, f4 = icosphere_vertices_faces(4)
    _, index = cKDTree(v3).query(v4, 2)
    weight = torch.tensor([[0.75, 0.25]]).expand(len(v4), 2)
    return VertexMap(torch.from_numpy(index), weight, len(v3)), torch.from_numpy(f4).long()


def test_output_map_answers_on_the_larger_mesh(tmp_path):
    torch.manual_seed(0)
    model = _model()
    vmap, faces = _output_map()
    big = model.with_output_map(vmap, faces, body="big", body_spec={"family": "test"})
    assert model.output_map is None and model.num_vertices == 642  # the original is unchanged
    assert big.num_vertices == 2562 and torch.equal(big.faces, faces)
    assert big.config.body == "big" and big.config.working_body == model.config.body
    kp = _pixels().float()
    base, out = model.predict(kp), big.predict(kp)
    assert out.vertices.shape == (2, 2562, 3)
    index, w = vmap.index.numpy(), vmap.weight.numpy()
    ref = base.vertices.numpy()
    expected = w[None, :, 0, None] * ref[:, index[:, 0]] + w[None, :, 1, None] * ref[:, index[:, 1]]
    np.testing.assert_allclose(out.vertices.numpy(), expected, atol=1e-6)
    # the joints come from the network's own mesh, as before
    torch.testing.assert_close(out.mesh_joints_3d, base.mesh_joints_3d)
    torch.testing.assert_close(out.joints_3d, base.joints_3d)
    # one file: saved and loaded with its map, the same answers
    big.save(tmp_path / "big.pt")
    again = Pose2Mesh.load(tmp_path / "big.pt").eval()
    assert again.num_vertices == 2562 and torch.equal(again.faces, faces)
    assert again.config.working_body == model.config.body
    torch.testing.assert_close(again.predict(kp).vertices, out.vertices)
    # and without the map: the network's own mesh again
    small = again.without_output_map()
    assert small.num_vertices == 642 and small.config.body == model.config.body
    assert small.config.working_body is None and torch.equal(small.faces, model.faces)
    torch.testing.assert_close(small.predict(kp).vertices, base.vertices)
    assert model.without_output_map() is model
    # a second map replaces the first
    twice = big.with_output_map(vmap, faces)
    assert twice.config.working_body == model.config.body and twice.num_vertices == 2562


def test_output_map_must_fit_the_network():
    from meshgraph.nn.vertex_map import VertexMap

    model = _model()
    vmap, faces = _output_map()
    wrong = VertexMap(torch.zeros(3, 1, dtype=torch.long), torch.ones(3, 1), 100)
    with pytest.raises(ValueError, match="reads 100 vertices, the network's mesh has 642"):
        model.with_output_map(wrong, faces)
    with pytest.raises(ValueError, match=r"index the output map's 2562 vertices"):
        model.with_output_map(vmap, faces + 5000)
    with pytest.raises(ValueError, match=r"shape \(F, 3\)"):
        model.with_output_map(vmap, faces[:, :2])
