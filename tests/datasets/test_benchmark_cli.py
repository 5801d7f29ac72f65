"""``meshgraph evaluate --dataset``: the shipped hand on FreiHAND-layout files of Anny hands.

The files are written from held-out synthetic hands (joints in the camera frame, and K from
the synthetic camera), so the same model scored by the synthetic evaluation on the same hands
is an independent reference for the loader's whole path (files, projection, normalisation).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from meshgraph.cli import main as cli_main
from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.datasets import FreiHAND
from meshgraph.models import Pose2Mesh
from meshgraph.training.evaluate import evaluate, evaluate_benchmark
from tests.datasets import writers


def test_shipped_hand_on_freihand_files_agrees_with_the_synthetic_evaluation(
    anny_hand, tmp_path, capsys
):
    model = Pose2Mesh.pretrained("hand")
    synthetic = SyntheticPoseMeshDataset(
        anny_hand, 12, joint_set="hand", seed=21, noise="none", progress=False
    )
    b = synthetic.__getitems__(list(range(12)))
    xyz = (b["mesh_joints_3d"] + b["root"][:, None]).double().numpy()
    k = np.zeros((12, 3, 3))
    k[:, 0, 0], k[:, 1, 1] = b["focal"][:, 0].numpy(), b["focal"][:, 1].numpy()
    k[:, :2, 2], k[:, 2, 2] = b["principal"].numpy(), 1.0
    writers.freihand(tmp_path, k, xyz)
    data = FreiHAND(tmp_path)
    # the files give back the synthetic 2D input
    torch.testing.assert_close(data.pixels, b["keypoints_2d_gt"].float(), atol=2e-3, rtol=0)
    ref = evaluate(model, synthetic)
    got = evaluate_benchmark(model, data)
    assert got["pa_mpjpe"] == pytest.approx(ref["pa_mpjpe"], abs=0.05)
    assert got["mpjpe"] == pytest.approx(ref["mpjpe"], abs=0.05)
    assert "pa_mpvpe" not in got  # Anny's 1,609-vertex hand is not MANO's 778
    out = tmp_path / "row.json"
    capsys.readouterr()
    code = cli_main(
        ["evaluate", "--hand", "--dataset", "freihand", "--root", str(tmp_path), "--json", str(out)]
    )
    assert code == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("|")]
    assert lines[0].startswith("| model | dataset | samples | PA-MPJPE |")
    assert lines[2].startswith(f"| shipped hand | FreiHAND | 12 | {got['pa_mpjpe']:.1f} |")
    saved = json.loads(out.read_text())
    assert saved["dataset"] == "freihand"
    assert saved["metrics"]["pa_mpjpe"] == pytest.approx(got["pa_mpjpe"])


def test_evaluate_dataset_exact_tells_the_model(anny_hand, tmp_path, capsys):
    """``--exact``: a model trained with the exactness channel is told that ground-truth 2D is
    exact; the synthetic evaluation of the same hands (exact 2D, flagged) is the reference."""
    torch.manual_seed(0)
    model = Pose2Mesh.from_body(anny_hand, joint_set="hand", mesh_joint_set="hand", num_levels=4,
                                posenet_width=16, coarse_channels=8,
                                exactness_input=True).eval()  # fmt: skip
    with torch.no_grad():  # weights that read the channel (the last input of each joint)
        model.posenet.inp.weight.view(16, 21, 3)[..., 2].normal_()
    path = model.save(tmp_path / "m.pt")
    synthetic = SyntheticPoseMeshDataset(
        anny_hand, 8, joint_set="hand", seed=22, noise="none", progress=False
    )
    b = synthetic.__getitems__(list(range(8)))
    assert bool(b["exact"].all())
    xyz = (b["mesh_joints_3d"] + b["root"][:, None]).double().numpy()
    k = np.zeros((8, 3, 3))
    k[:, 0, 0], k[:, 1, 1] = b["focal"][:, 0].numpy(), b["focal"][:, 1].numpy()
    k[:, :2, 2], k[:, 2, 2] = b["principal"].numpy(), 1.0
    writers.freihand(tmp_path, k, xyz)
    ref = evaluate(model, synthetic)["pa_mpjpe"]
    rows = {}
    for flag in ([], ["--exact"]):
        out = tmp_path / f"row{len(flag)}.json"
        args = ["evaluate", str(path), "--dataset", "freihand", "--root", str(tmp_path)]
        assert cli_main([*args, "--json", str(out), *flag]) == 0
        rows[bool(flag)] = json.loads(out.read_text())["metrics"]["pa_mpjpe"]
    assert rows[True] == pytest.approx(ref, abs=0.05)
    assert abs(rows[False] - ref) > 0.1  # untold, the model answers otherwise
    data = FreiHAND(tmp_path)
    assert not bool(data[0]["exact"]) and "exact" not in repr(data)
    data.exact = True
    assert bool(data.__getitems__([0, 1])["exact"].all()) and "exact 2D" in repr(data)
    with pytest.raises(TypeError, match="exact must be a bool"):
        data.exact = 1
    capsys.readouterr()
    assert cli_main([*args, "--exact", "--keypoints", "det.json"]) == 2
    assert "--keypoints det.json are a detector's" in capsys.readouterr().err
    assert cli_main(["evaluate", str(path), "--exact", "--samples", "2"]) == 2
    assert "--exact goes with --dataset" in capsys.readouterr().err


def test_evaluate_dataset_errors_are_one_line(tmp_path, capsys):
    assert cli_main(["evaluate", "--dataset", "freihand"]) == 2
    assert "--dataset needs --root" in capsys.readouterr().err
    assert cli_main(["evaluate", "--dataset", "3dpw", "--root", str(tmp_path)]) == 2
    assert "licensed SMPL files" in capsys.readouterr().err
    assert cli_main(["evaluate", "--hand", "--dataset", "freihand", "--root", str(tmp_path)]) == 2
    assert "evaluation_K.json" in capsys.readouterr().err
    # the shipped body takes COCO keypoints; Human3.6M without SMPL gives Human3.6M-17 only
    (tmp_path / "annotations").mkdir()
    assert cli_main(["evaluate", "--dataset", "h36m-p2", "--root", str(tmp_path)]) == 2
    assert "smpl" in capsys.readouterr().err.lower()
