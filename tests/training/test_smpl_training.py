"""Training, evaluating and predicting with SMPL-family models (humanoid stand-in files)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("smplx")

from meshgraph.cli import main
from meshgraph.models import Pose2Mesh
from tests import humanoid

TINY = ["--posenet-epochs", "1", "--epochs", "1", "--samples-per-epoch", "32", "--batch-size",
        "16", "--test-samples", "16", "--posenet-width", "32", "--no-progress"]  # fmt: skip
# (no --threads: it would change the thread count of the whole test process)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("licensed")
    for kind in ("smpl", "mano"):
        humanoid.write(folder, kind)
    return folder


def test_train_smpl_end_to_end(files, tmp_path, capsys):
    out = tmp_path / "smpl"
    args = ["train", "--body", "smpl", "--model-path", str(files), "--out", str(out)]
    assert main([*args, *TINY, "--samples-per-epoch", "16"]) == 0
    printed = capsys.readouterr().out
    assert "smpl: 6890 vertices" in printed and "coco input" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 2
    assert np.isfinite(results["gt_2d"]["mpvpe"]) and results["mean_mesh_baseline"]["mpvpe"] > 0
    for name in ("model.pt", "prediction.obj", "prediction.png", "metrics.csv"):
        assert (out / name).stat().st_size > 0
    model = Pose2Mesh.load(out / "model.pt")
    assert model.config.body == "smpl" and model.config.mesh_joint_set == "h36m"
    # evaluating needs the model files again, and says so
    assert main(["evaluate", str(out / "model.pt"), "--samples", "4"]) == 2
    assert "--model-path" in capsys.readouterr().err
    assert main(["evaluate", str(out / "model.pt"), "--samples", "4", "--model-path",
                 str(files)]) == 0  # fmt: skip


def test_train_mano_infers_the_hand_kind(files, tmp_path, capsys):
    out = tmp_path / "mano"
    assert main(["train", "--body", "mano", "--model-path", str(files), "--out", str(out),
                 *TINY]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text())
    assert set(results["gt_2d"]) >= {"pa_mpvpe", "f5", "f15"}
    assert Pose2Mesh.load(out / "model.pt").config.joint_set == "hand"
    capsys.readouterr()
    assert main(["train", "--kind", "body", "--body", "mano", "--model-path", str(files),
                 "--out", str(out / "x"), *TINY]) == 2  # fmt: skip
    assert "hand model" in capsys.readouterr().err


def test_released_regressors_replace_the_built_in_ones(files, tmp_path, capsys):
    reg = np.zeros((17, 6890))
    reg[np.arange(17), np.arange(17) * 100] = 1.0
    np.save(tmp_path / "h36m.npy", reg)
    out = tmp_path / "run"
    args = ["train", "--body", "smpl", "--model-path", str(files), "--out", str(out),
            "--regressor", f"h36m={tmp_path / 'h36m.npy'}"]  # fmt: skip
    assert main([*args, *TINY, "--samples-per-epoch", "16"]) == 0
    model = Pose2Mesh.load(out / "model.pt")
    np.testing.assert_array_equal(model.mesh_regressor.numpy(), reg)
    assert main([*args[:-2], "--regressor", "h36m", *TINY]) == 2
    assert "NAME=PATH" in capsys.readouterr().err


def test_built_in_smpl_regressors_follow_the_posed_joints(files):
    from meshgraph.bodies.smpl import SMPLModel

    model = SMPLModel("smpl", files, dtype=torch.float64)
    pose = 0.3 * torch.randn(2, 24, 3, dtype=torch.float64)
    verts = model(pose)
    joints = model.model(global_orient=pose[:, 0], body_pose=pose[:, 1:].reshape(2, -1)).joints
    coco = model.regress_joints(verts, "coco")
    h36m = model.regress_joints(verts, "h36m")
    # the humanoid's joint rings move rigidly with their joints: exact equality
    torch.testing.assert_close(coco[:, 9], joints[:, 20])  # left wrist
    torch.testing.assert_close(h36m[:, 2], joints[:, 5])  # right knee
    torch.testing.assert_close(coco[:, 17], (joints[:, 1] + joints[:, 2]) / 2)  # pelvis
    # the head top is at the top of the head (the skull ends 15 cm above the head joint)
    rest = model(torch.zeros(1, 24, 3, dtype=torch.float64))[0]
    top = model.regress_joints(rest[None], "h36m")[0, 10]
    head = model.model.lbs_weights[:, 15] > 0.5
    assert rest[head, 1].max() - top[1] < 0.02
    assert top[1] - model.rest_joints()[15, 1] > 0.14
