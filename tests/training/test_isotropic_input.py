"""The isotropic input normalisation: model, datasets, evaluation, training (needs anny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("anny")

from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.datasets.base import KeypointDataset, with_missing_joints
from meshgraph.geometry import normalize_keypoints
from meshgraph.models import Pose2Mesh, Pose2MeshConfig
from meshgraph.models.pretrained import PRETRAINED, weights_dir
from meshgraph.training import TrainConfig, Trainer, evaluate
from meshgraph.training.evaluate import check_normalisation, evaluate_benchmark
from meshgraph.training.pipeline import RunConfig, run_isotropic_input

CFG = {"posenet_epochs": 1, "epochs": 1, "samples_per_epoch": 32, "batch_size": 16,
       "checkpoint_every": 1}  # fmt: skip


def _hand_model(hand, isotropic):
    torch.manual_seed(0)
    return Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand", num_levels=4,
                               posenet_width=16, coarse_channels=8,
                               isotropic_input=isotropic)  # fmt: skip


def test_synthetic_batches_follow_the_flag(hand):
    axis = SyntheticPoseMeshDataset(hand, 20, joint_set="hand", seed=3)
    iso = SyntheticPoseMeshDataset(hand, 20, joint_set="hand", seed=3, isotropic_input=True)
    a, b = axis.__getitems__(range(8)), iso.__getitems__(range(8))
    # the same samples (geometry, noise); only the normalisation differs
    for key in ("keypoints_2d_pixels", "vertices", "joints_3d", "box", "visible"):
        assert torch.equal(a[key], b[key]), key
    px, vis = a["keypoints_2d_pixels"].double(), a["visible"]
    torch.testing.assert_close(b["keypoints_2d"], normalize_keypoints(px, vis, isotropic=True)[0]
                               .float())  # fmt: skip
    torch.testing.assert_close(a["keypoints_2d"], normalize_keypoints(px, vis)[0].float())
    assert not torch.allclose(a["keypoints_2d"], b["keypoints_2d"])
    iso.isotropic_input = False  # an attribute: the next batch follows it
    assert torch.equal(iso.__getitems__(range(8))["keypoints_2d"], a["keypoints_2d"])


def test_keypoint_dataset_normalises_again_when_the_flag_changes():
    rng = np.random.default_rng(1)
    pixels = rng.random((5, 19, 2)) * [300, 500]
    visible = np.ones((5, 19), dtype=bool)
    visible[2, 3] = False
    data = KeypointDataset(name="toy", joint_set="coco", pixels=pixels, visible=visible)
    px, vis = torch.as_tensor(pixels, dtype=torch.float32).double(), torch.as_tensor(visible)
    torch.testing.assert_close(data.keypoints_2d, normalize_keypoints(px, vis)[0].float())
    assert data.isotropic_input is False
    data.isotropic_input = True
    torch.testing.assert_close(
        data.keypoints_2d, normalize_keypoints(px, vis, isotropic=True)[0].float()
    )
    assert torch.equal(data[0]["keypoints_2d"], data.keypoints_2d[0])
    # a Body-29 view of it keeps the flag; its missing joints stay 0 when normalised again
    wide = with_missing_joints(data, "body29")
    assert wide.isotropic_input
    wide.isotropic_input = False
    torch.testing.assert_close(wide.keypoints_2d[:, :19], normalize_keypoints(px, vis)[0].float())
    assert wide.keypoints_2d[:, 19:].abs().sum() == 0
    made = KeypointDataset(name="toy", joint_set="coco", pixels=pixels, visible=visible,
                           isotropic_input=True)  # fmt: skip
    torch.testing.assert_close(made.keypoints_2d, data.keypoints_2d)


def test_predict_normalises_as_the_model_expects(hand):
    model = _hand_model(hand, True).eval()
    kp = torch.from_numpy(np.random.default_rng(2).random((2, 21, 2)) * [200, 350]).float()
    out = model.predict(kp)
    iso, _ = normalize_keypoints(kp.double(), isotropic=True)
    axis, _ = normalize_keypoints(kp.double())
    with torch.no_grad():
        torch.testing.assert_close(out.vertices, model(iso.float())["vertices"])
        assert not torch.allclose(out.vertices, model(axis.float())["vertices"], atol=1e-5)


def test_config_round_trip_and_older_files(hand, tmp_path):
    model = _hand_model(hand, True)
    model.save(tmp_path / "iso.pt")
    assert Pose2Mesh.load(tmp_path / "iso.pt").config.isotropic_input is True
    ckpt = torch.load(tmp_path / "iso.pt", weights_only=True)
    del ckpt["config"]["isotropic_input"]  # a file saved before the option existed
    torch.save(ckpt, tmp_path / "old.pt")
    assert Pose2Mesh.load(tmp_path / "old.pt").config.isotropic_input is False
    assert Pose2MeshConfig().isotropic_input is False  # the paper's, unless asked
    with pytest.raises(TypeError, match="isotropic_input must be a bool"):
        Pose2MeshConfig(isotropic_input="yes")


def test_evaluation_and_training_refuse_the_other_normalisation(hand, tmp_path):
    model = _hand_model(hand, True)
    axis = SyntheticPoseMeshDataset(hand, 8, joint_set="hand", seed=99, noise="none")
    iso = SyntheticPoseMeshDataset(hand, 8, joint_set="hand", seed=99, noise="none",
                                   isotropic_input=True)  # fmt: skip
    with pytest.raises(ValueError, match=r"one spread for both axes.*per-axis.*to True"):
        evaluate(model, axis)
    assert evaluate(model, iso)["mpvpe"] > 0
    with pytest.raises(ValueError, match=r"per-axis scores.*isotropic_input=False"):
        check_normalisation(_hand_model(hand, False), iso)
    check_normalisation(model, object())  # a dataset without the attribute: taken as it is
    with pytest.raises(ValueError, match="per-axis"):
        Trainer(model, axis, TrainConfig(**CFG), tmp_path / "t", progress=False)
    rng = np.random.default_rng(4)
    bench = KeypointDataset(name="toybench", joint_set="hand", pixels=rng.random((3, 21, 2)),
                            visible=np.ones((3, 21), bool), mesh_joint_set="hand",
                            mesh_joints_3d=rng.random((3, 21, 3)))  # fmt: skip
    with pytest.raises(ValueError, match="toybench gives per-axis"):
        evaluate_benchmark(model, bench)
    bench.isotropic_input = True
    assert evaluate_benchmark(model, bench)["samples"] == 3


def test_resume_keeps_the_normalisation(hand, tmp_path):
    model = _hand_model(hand, False)
    data = SyntheticPoseMeshDataset(hand, 5000, joint_set="hand", seed=1)
    Trainer(model, data, TrainConfig(**(CFG | {"max_steps": 1})), tmp_path, progress=False).fit()
    other = _hand_model(hand, True)
    data.isotropic_input = True
    with pytest.raises(ValueError, match=r"per-axis scores.*--no-isotropic-input"):
        Trainer(other, data, TrainConfig(**CFG), tmp_path, progress=False).fit(resume=True)


def test_a_run_picks_its_normalisation(hand, tmp_path):
    assert run_isotropic_input(RunConfig()) is True  # a fresh run
    assert run_isotropic_input(RunConfig(model={"isotropic_input": False})) is False
    for flag in (False, True):
        path = _hand_model(hand, flag).save(tmp_path / f"m{flag}.pt")
        assert run_isotropic_input(RunConfig(init_from=str(path))) is flag  # the model's
        explicit = RunConfig(init_from=str(path), model={"isotropic_input": not flag})
        assert run_isotropic_input(explicit) is (not flag)
    # the shipped body was trained on per-axis scores (its file has no such field)
    shipped = torch.load(weights_dir() / PRETRAINED["body"]["file"], weights_only=True)
    expected = bool(shipped["config"].get("isotropic_input", False))
    assert run_isotropic_input(RunConfig(init_from="body")) is expected
    assert run_isotropic_input(RunConfig(init_from=str(tmp_path / "missing.pt"))) is False


def test_box_aspect_matters_only_to_isotropic_scores(hand):
    rng = np.random.default_rng(7)
    px = torch.as_tensor(rng.random((4, 21, 2)) * [300.0, 500.0])
    # per-axis scores: the box (aspect, enlargement) is an affine map per axis that cancels
    for scale in (1.0, 2.0):
        torch.testing.assert_close(normalize_keypoints(px, aspect=1.3, scale=scale)[0],
                                   normalize_keypoints(px)[0])  # fmt: skip
    # one spread for both axes: the enlargement cancels, the aspect stretches y against x
    iso = normalize_keypoints(px, isotropic=True)[0]
    torch.testing.assert_close(normalize_keypoints(px, scale=2.0, isotropic=True)[0], iso)
    wide = normalize_keypoints(px, aspect=1.5, isotropic=True)[0]
    ratio = lambda x: x[..., 1].std(1) / x[..., 0].std(1)  # noqa: E731
    torch.testing.assert_close(ratio(wide), ratio(iso) * 2.0)  # y stretched by 1.5 / 0.75
    data = SyntheticPoseMeshDataset(hand, 4, joint_set="hand", seed=5, isotropic_input=True)
    model = _hand_model(hand, True)
    check_normalisation(model, data)
    model.config.aspect = 1.0
    with pytest.raises(ValueError, match=r"aspect 1.0 \(config.aspect\).*aspect 0.75"):
        check_normalisation(model, data)
    axis = _hand_model(hand, False)
    axis.config.aspect = 1.0
    data.isotropic_input = False
    check_normalisation(axis, data)  # per-axis scores do not depend on the aspect
