"""The exactness channel: models told whether their 2D keypoints are exact (needs anny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("anny")

from meshgraph.cli import main
from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.data.noise import default_detector_noise
from meshgraph.data.protocol import check_sample
from meshgraph.models import Pose2Mesh
from meshgraph.training import TrainConfig, Trainer, evaluate


def _model(hand, **options):
    torch.manual_seed(0)
    model = Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand", num_levels=4,
                                posenet_width=16, coarse_channels=8, **options)  # fmt: skip
    return model.eval()


def _exactness_weights(model):
    """PoseNet's first-layer weights that read the exactness channel (the last of each joint's)."""
    c = model.posenet.in_channels
    return model.posenet.inp.weight.view(model.posenet.inp.out_features, -1, c)[..., -1]


def test_network_input_channels(hand):
    kp = torch.randn(3, 21, 2)
    visible = torch.ones(3, 21, dtype=torch.bool)
    visible[1, 4] = False
    exact = torch.tensor([True, False, True])
    both = _model(hand, visibility_input=True, exactness_input=True)
    x = both.network_input(kp, visible, exact)
    assert x.shape == (3, 21, 4)
    torch.testing.assert_close(x[..., :2], kp * visible[..., None])  # missing joints zeroed
    torch.testing.assert_close(x[..., 2], visible.float())
    torch.testing.assert_close(x[..., 3], exact.float()[:, None].expand(3, 21))
    only = _model(hand, exactness_input=True)
    y = only.network_input(kp, None, True)
    assert y.shape == (3, 21, 3) and bool((y[..., 2] == 1).all())
    torch.testing.assert_close(y[..., :2], kp)
    assert bool((only.network_input(kp)[..., 2] == 0).all())  # default: detected
    plain = _model(hand)
    assert torch.equal(plain.network_input(kp, visible, exact), kp)  # no channel: ignored
    with pytest.raises(ValueError, match=r"exact must have shape \(3,\)"):
        only.network_input(kp, None, torch.ones(2, dtype=torch.bool))


def test_the_flag_reaches_posenet(hand):
    model = _model(hand, exactness_input=True)
    with torch.no_grad():  # weights that read the channel (fresh ones may ignore it little)
        _exactness_weights(model).normal_()
    kp = torch.randn(4, 21, 2)
    with torch.no_grad():
        detected, exact = model(kp), model(kp, exact=True)
        as_tensor = model(kp, exact=torch.ones(4, dtype=torch.bool))
        mixed = model(kp, exact=torch.tensor([True, False, True, False]))
    assert not torch.allclose(detected["joints_3d"], exact["joints_3d"])
    assert not torch.allclose(detected["vertices"], exact["vertices"])
    for key in ("joints_3d", "vertices"):
        torch.testing.assert_close(as_tensor[key], exact[key])
        # each sample answered with its own flag (eval mode: samples are independent)
        torch.testing.assert_close(mixed[key][::2], exact[key][::2])
        torch.testing.assert_close(mixed[key][1::2], detected[key][1::2])
    # MeshNet reads PoseNet's answer, not the channel: the 2D joints without the flag
    assert model.meshnet.keypoint_channels == 2 and model.posenet.in_channels == 3
    with torch.no_grad():
        joints = model.posenet(model.network_input(kp, None, True))
        torch.testing.assert_close(model.meshnet(kp, joints), exact["vertices"])


def test_flip_test_passes_each_sample_its_flag():
    from meshgraph.generators import icosphere_vertices_faces
    from tests.test_pose2mesh import _model as _toy_body

    torch.manual_seed(0)
    model = _toy_body(exactness_input=True).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # no symmetry left in the weights
    pts, _ = icosphere_vertices_faces(3)
    tested = model.flip_tested(torch.from_numpy(pts))
    kp = torch.randn(2, 17, 2, dtype=torch.float64)
    with torch.no_grad():
        mixed = tested(kp, exact=torch.tensor([True, False]))
        first, second = tested(kp[:1], exact=True), tested(kp[1:], exact=False)
        untold = tested(kp[:1])
    for key in ("joints_3d", "vertices"):
        torch.testing.assert_close(mixed[key][:1], first[key])
        torch.testing.assert_close(mixed[key][1:], second[key])
    assert not torch.allclose(first["vertices"], untold["vertices"])
    with pytest.raises(ValueError, match=r"exact must have shape \(2,\)"):
        tested(kp, exact=torch.ones(4, dtype=torch.bool))


def test_predict_passes_the_flag(hand):
    model = _model(hand, exactness_input=True)
    with torch.no_grad():
        _exactness_weights(model).normal_()
    pixels = torch.rand(21, 2) * 200 + 50
    detected, exact = model.predict(pixels), model.predict(pixels, exact=True)
    assert not torch.allclose(detected.vertices, exact.vertices)
    assert torch.equal(detected.keypoints_2d, exact.keypoints_2d)  # the same input
    plain = _model(hand)  # a model without the channel ignores it
    torch.testing.assert_close(plain.predict(pixels).vertices,
                               plain.predict(pixels, exact=True).vertices)  # fmt: skip


def test_synthetic_samples_say_which_are_exact(hand):
    clean = SyntheticPoseMeshDataset(hand, 12, joint_set="hand", seed=3, noise="none")
    assert bool(clean.__getitems__(range(12))["exact"].all())
    noisy = SyntheticPoseMeshDataset(hand, 12, joint_set="hand", seed=3, noise="gaussian")
    assert not bool(noisy.__getitems__(range(12))["exact"].any())
    failing = SyntheticPoseMeshDataset(hand, 12, joint_set="hand", seed=3, noise="none",
                                       detector=default_detector_noise("hand"))  # fmt: skip
    assert not bool(failing.__getitems__(range(12))["exact"].any())
    mixed = SyntheticPoseMeshDataset(hand, 64, joint_set="hand", seed=3, noise="gaussian",
                                     detector=default_detector_noise("hand"),
                                     clean_fraction=0.5)  # fmt: skip
    batch = mixed.__getitems__(range(64))
    # independently: a sample is exact where its input pixels are the true ones
    same = (batch["keypoints_2d_pixels"] == batch["keypoints_2d_gt"]).flatten(1).all(1)
    assert torch.equal(batch["exact"], same)
    assert 10 < int(same.sum()) < 54
    assert bool(batch["visible"][batch["exact"]].all())
    check_sample(batch, mixed.joint_set, mixed.mesh_joint_set, hand.num_vertices,
                 keys=list(batch))  # fmt: skip
    with pytest.raises(ValueError, match=r"sample\['exact'\] must have shape \(\)"):
        check_sample({**batch, "exact": batch["exact"][:, None]}, mixed.joint_set,
                     keys=["exact"])  # fmt: skip


def test_evaluate_passes_the_flag(hand):
    model = _model(hand, exactness_input=True)
    with torch.no_grad():
        _exactness_weights(model).normal_()
    data = SyntheticPoseMeshDataset(hand, 16, joint_set="hand", seed=5, noise="none")
    batch = data.__getitems__(range(16))
    with torch.no_grad():
        told = model(batch["keypoints_2d"], exact=True)["vertices"]
        untold = model(batch["keypoints_2d"])["vertices"]
    ref = (told - batch["vertices"]).norm(dim=-1).mean() * 1000
    wrong = (untold - batch["vertices"]).norm(dim=-1).mean() * 1000
    root = model.mesh_joint_set.root
    # MPVPE aligns the roots of the mesh joints; recompute it that way for both answers
    with torch.no_grad():
        pj_told = model(batch["keypoints_2d"], exact=True)["mesh_joints_3d"]
    shift = (pj_told[:, root] - batch["mesh_joints_3d"][:, root])[:, None]
    ref = float(((told - shift) - batch["vertices"]).norm(dim=-1).mean() * 1000)
    got = evaluate(model, data)["mpvpe"]
    assert got == pytest.approx(ref, rel=1e-4)
    assert abs(float(wrong) - ref) > 1e-3 * ref  # the two answers are told apart


@pytest.mark.parametrize("stage", [1, 2])
def test_training_reads_the_flag(hand, tmp_path, stage):
    """PoseNet's weights on the exactness channel learn only where the flag is given (an
    input of 0 has no gradient on them), in stage 1 (PoseNet alone) and in stage 2."""
    cfg = TrainConfig(posenet_epochs=int(stage == 1), epochs=int(stage == 2),
                      samples_per_epoch=32, batch_size=16, checkpoint_every=1)  # fmt: skip
    for fraction, moves in ((0.5, True), (0.0, False)):
        model = _model(hand, exactness_input=True, visibility_input=True).train()
        before = _exactness_weights(model).detach().clone()
        data = SyntheticPoseMeshDataset(hand, 64, joint_set="hand", seed=7,
                                        detector=default_detector_noise("hand"),
                                        clean_fraction=fraction)  # fmt: skip
        Trainer(model, data, cfg, tmp_path / f"run{fraction}", progress=False).fit()
        changed = not torch.equal(_exactness_weights(model), before)
        assert changed is moves, fraction


def test_cli_train(tmp_path):
    out = tmp_path / "run"
    threads = str(torch.get_num_threads())
    args = ["train", "--kind", "hand", "--out", str(out), "--no-progress", "--threads", threads,
            "--posenet-epochs", "1", "--epochs", "1", "--samples-per-epoch", "32",
            "--batch-size", "16", "--test-samples", "16", "--posenet-width", "32",
            "--exactness-input", "--clean-fraction", "0.5"]  # fmt: skip
    assert main(args) == 0
    model = Pose2Mesh.load(out / "model.pt")
    assert model.config.exactness_input and model.posenet.inp.in_features == 3 * 21


def test_cli_predict(hand, tmp_path, capsys):
    model = _model(hand, exactness_input=True)
    with torch.no_grad():
        _exactness_weights(model).normal_()
    path = model.save(tmp_path / "model.pt")
    kp = tmp_path / "kp.npy"
    np.save(kp, (np.random.default_rng(0).random((21, 2)) * 200 + 50))
    outs = {}
    for flag in ([], ["--exact"]):
        out = tmp_path / ("exact" if flag else "detected")
        assert main(["predict", str(path), str(kp), "--out", str(out), *flag]) == 0
        outs[bool(flag)] = (out / "mesh.obj").read_text()
    assert outs[True] != outs[False]
    assert "changes nothing" not in capsys.readouterr().err
    plain = _model(hand).save(tmp_path / "plain.pt")  # no channel: told so
    assert main(["predict", str(plain), str(kp), "--out", str(tmp_path / "p"), "--exact"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err
    assert "the model was trained without --exactness-input: --exact changes nothing" in err
    assert main(["predict", "--image", str(tmp_path), "--exact"]) == 2
    assert "--exact goes with a keypoint file" in capsys.readouterr().err


def _toy(variant, exactness, seed, visibility=True):
    from meshgraph.generators import icosphere
    from meshgraph.models import Pose2MeshConfig

    mesh = icosphere(2)
    reg = torch.rand(17, mesh.num_vertices, generator=torch.Generator().manual_seed(0))
    cfg = Pose2MeshConfig(joint_set="h36m", mesh_joint_set="h36m", num_levels=3,
                          posenet_width=32, coarse_channels=8, decoder_channels=(8, 8, 8),
                          visibility_input=visibility, exactness_input=exactness,
                          variant=variant, fc_hidden=(16,))  # fmt: skip
    torch.manual_seed(seed)
    return Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True))


@pytest.mark.parametrize("variant", ["coarse_to_fine", "fc"])
@pytest.mark.parametrize("visibility", [True, False])
def test_a_trained_model_gains_the_channel_and_answers_as_before(tmp_path, variant, visibility):
    from meshgraph.training.pipeline import warm_start

    old = _toy(variant, False, 1, visibility)
    with torch.no_grad():
        for p in old.parameters():
            p.add_(0.05 * torch.randn_like(p))
    old.eval()
    new = _toy(variant, True, 2, visibility)
    record = warm_start(new, old.save(tmp_path / "old.pt"))
    assert record["exactness_added"] is True
    old, new = old.double(), new.double().eval()  # float64: sums of other lengths round alike
    kp = torch.randn(5, 17, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    visible = torch.ones(5, 17, dtype=torch.bool)
    visible[2, [3, 7]] = False
    with torch.no_grad():
        before = old(kp, visible)
        for flag in (False, True):  # zero weights on the channel: both answers the old one
            after = new(kp, visible, flag)
            for key in ("joints_3d", "vertices"):
                torch.testing.assert_close(after[key], before[key], rtol=0, atol=1e-12)
    # every weight but the two input layers' new slices is the trained one, by a naive loop
    c = new.posenet.in_channels
    w_old, w_new = old.posenet.inp.weight, new.posenet.inp.weight
    for joint in range(17):
        for ch in range(c):
            col = w_new[:, joint * c + ch]
            if ch == c - 1:
                assert not col.any()
            else:
                assert torch.equal(col, w_old[:, joint * (c - 1) + ch])
    for key, value in old.state_dict().items():  # MeshNet and the rest: as trained
        if key != "posenet.inp.weight":
            assert torch.equal(new.state_dict()[key], value), key


def test_adding_the_channel_refuses_what_does_not_fit():
    from meshgraph.training.pipeline import add_exactness_channel

    old = _toy("coarse_to_fine", False, 1)
    with pytest.raises(ValueError, match="has no exactness channel"):
        add_exactness_channel(old.state_dict(), old)
    new = _toy("coarse_to_fine", True, 1)
    with pytest.raises(ValueError, match=r"posenet\.inp\.weight: expected 51 inputs"):
        add_exactness_channel(new.state_dict(), new)  # already has it
