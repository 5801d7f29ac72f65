"""The meshgraph train / evaluate / predict commands end to end (tiny schedule, needs anny)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("anny")

from meshgraph.cli import main
from meshgraph.models import Pose2Mesh

TINY = ["--posenet-epochs", "1", "--epochs", "1", "--samples-per-epoch", "32", "--batch-size",
        "16", "--test-samples", "16", "--posenet-width", "32"]  # fmt: skip


def test_train_evaluate_predict(tmp_path, capsys):
    out = tmp_path / "run"
    threads = str(torch.get_num_threads())  # --threads sets it: keep the current value
    args = ["train", "--kind", "hand", "--out", str(out), "--no-progress", "--threads", threads]
    assert main([*args, *TINY]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "it/s" not in captured.err and "s/it" not in captured.err  # no progress bar
    assert "mean-mesh baseline" in printed and "pa_mpvpe" in printed
    for name in ("model.pt", "checkpoint.pt", "metrics.csv", "losses.png", "results.json",
                 "results.csv", "prediction.obj", "prediction.ply", "ground_truth.obj",
                 "prediction.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 4 and set(results["gt_2d"]) >= {"mpvpe", "pa_mpvpe", "f5", "f15"}
    # provenance: this checkout's commit, the machine, the versions
    assert len(results["commit"].split()[0]) == 40 and "cores" in results["hardware"]
    assert results["versions"]["torch"] == torch.__version__ and results["command"]
    model = Pose2Mesh.load(out / "model.pt")
    assert model.config.body == "anny-hand.R"

    # `meshgraph evaluate` on as many samples reproduces the run's held-out table
    assert main(["evaluate", str(out / "model.pt"), "--samples", "16", "--json",
                 str(tmp_path / "m.json")]) == 0  # fmt: skip
    again = json.loads((tmp_path / "m.json").read_text())
    assert set(again) == {"gt_2d", "noisy_2d", "detector_2d"}
    for key, row in again.items():
        for metric, value in row.items():
            assert value == pytest.approx(results[key][metric], rel=1e-4, abs=1e-6), (key, metric)
    assert "detector-like 2D" in capsys.readouterr().out

    kp = np.random.default_rng(0).random((21, 2)) * 300
    (tmp_path / "kp.json").write_text(json.dumps({"keypoints": kp.tolist()}))
    assert main(["predict", str(out / "model.pt"), str(tmp_path / "kp.json"), "--out",
                 str(tmp_path / "pred")]) == 0  # fmt: skip
    for name in ("mesh.obj", "mesh.ply", "overlay.png", "camera.json", "mesh_pixels.npy"):
        assert (tmp_path / "pred" / name).stat().st_size > 0
    np.save(tmp_path / "kp.npy", np.concatenate([kp, np.ones((21, 1))], 1))
    assert main(["predict", str(out / "model.pt"), str(tmp_path / "kp.npy")]) == 0

    # a resumed, finished run does nothing more and keeps its outputs
    assert main(["train", "--kind", "hand", "--out", str(out), "--resume", *TINY]) == 0


def test_pose_prior_options_are_for_bodies(tmp_path, capsys):
    args = ["train", "--kind", "hand", "--out", str(tmp_path / "h"), "--pose-uniform", "0.3"]
    assert main([*args, *TINY]) == 2
    assert "HandPoseSampler has no option 'uniform'" in capsys.readouterr().err
    args = ["train", "--kind", "body", "--out", str(tmp_path / "b"), "--pose-blend", "1.5"]
    assert main([*args, "--topology", "notoes_collapse10pc", *TINY]) == 2
    assert "blend must be a fraction in [0, 1], got 1.5" in capsys.readouterr().err
    args = ["train", "--kind", "hand", "--out", str(tmp_path / "m"), "--pose-mirror", "0.5"]
    assert main([*args, *TINY]) == 2
    assert "HandPoseSampler has no option 'mirror'" in capsys.readouterr().err


def test_cli_errors(tmp_path, capsys):
    assert main(["predict", str(tmp_path / "none.pt"), str(tmp_path / "kp.json")]) == 2
    assert "no Pose2Mesh model file" in capsys.readouterr().err
    assert main(["train", "--body", "smpl", "--out", str(tmp_path), *TINY]) == 2
    assert "--model-path" in capsys.readouterr().err


def test_mesh_autoencoder_example_runs(tmp_path, monkeypatch):
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "mesh_autoencoder.py"
    args = ["mesh_autoencoder.py", "--train", "64", "--test", "8", "--steps", "4", "--out",
            str(tmp_path)]  # fmt: skip
    monkeypatch.setattr(sys, "argv", args)
    runpy.run_path(str(script), run_name="__main__")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_vertices"] == 1229 and metrics["mean_vertex_error_mm"] > 0
    assert (tmp_path / "reconstruction.png").stat().st_size > 0


def test_train_with_detector_failures(tmp_path):
    out = tmp_path / "det"
    threads = str(torch.get_num_threads())
    args = ["train", "--kind", "hand", "--out", str(out), "--no-progress", "--threads", threads]
    assert main([*args, *TINY, "--detector"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["detector"] == {} and results["run"]["model"]["visibility_input"]
    assert set(results["detector_2d"]) >= {"mpjpe", "mpvpe"}
    model = Pose2Mesh.load(out / "model.pt")
    assert model.config.visibility_input and model.posenet.inp.in_features == 3 * 21
    # predict with a few joints below the confidence threshold (NaN there) still works
    kp = np.random.default_rng(1).random((21, 3)) * 300
    kp[:, 2] = 1.0
    kp[[4, 8], :] = [np.nan, np.nan, 0.0]
    np.save(tmp_path / "kp.npy", kp)
    assert main(["predict", str(out / "model.pt"), str(tmp_path / "kp.npy"), "--out",
                 str(tmp_path / "pred")]) == 0  # fmt: skip
    assert (tmp_path / "pred" / "mesh.obj").stat().st_size > 0


def test_detector_options_change_the_training_failures_only(tmp_path, capsys):
    out = tmp_path / "mild"
    threads = str(torch.get_num_threads())
    args = ["train", "--kind", "hand", "--out", str(out), "--no-progress", "--threads", threads,
            *TINY, "--max-steps", "1", "--detector"]  # fmt: skip
    mild = ["--detector-option", "offset=0.02", "--detector-option", "drop_limb=0"]
    assert main([*args, *mild]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["detector"] == {"offset": 0.02, "drop_limb": 0.0}
    # the training set's failures are those; the held-out sets keep the defaults
    from meshgraph.data.noise import default_detector_noise
    from meshgraph.training.pipeline import RunConfig, build_body

    cfg = RunConfig(**{k: v for k, v in results["run"].items() if k != "regressors"})
    assert build_body(cfg).input_joint_set == "hand"
    noise = default_detector_noise("hand", **cfg.detector)
    assert (noise.offset, noise.drop_limb, noise.drop) == (0.02, 0.0, 0.05)
    capsys.readouterr()
    bad = [
        (["--detector-option", "offset"], "takes NAME=VALUE"),
        (["--detector-option", "speed=3"], "NAME one of ['drop', 'drop_limb'"),
        (["--detector-option", "drop=much"], "'much' is not a number"),
        (["--detector-option", "drop=1.5"], "DetectorNoise.drop must be a probability, got 1.5"),
    ]
    for extra, message in bad:
        assert main([*args, "--overwrite", *extra]) == 2
        assert message in capsys.readouterr().err, extra
    no_detector = [a for a in args if a != "--detector"]
    assert main([*no_detector, "--overwrite", *mild]) == 2
    assert "give --detector" in capsys.readouterr().err


def test_loss_weights_reach_the_training_loss(tmp_path, capsys):
    import csv

    out = tmp_path / "weighted"
    threads = str(torch.get_num_threads())
    args = ["train", "--kind", "hand", "--out", str(out), "--no-progress", "--threads", threads,
            *TINY, "--edge-loss-start", "0"]  # fmt: skip
    weights = ["--loss-weight", "joint=3", "--loss-weight", "edge=5", "--loss-weight", "normal=0"]
    assert main([*args, *weights]) == 0
    train = json.loads((out / "results.json").read_text())["run"]["train"]
    assert (train["w_joint"], train["w_edge"], train["w_normal"]) == (3.0, 5.0, 0.0)
    assert "w_vertex" not in train  # the preset's
    # the logged stage-2 total is the weighted sum of the logged terms (means of each step's)
    rows = csv.DictReader((out / "metrics.csv").read_text().splitlines())
    row = [r for r in rows if r["stage"] == "2"][-1]
    term = {k: float(row[f"loss_{k}"]) for k in ("vertex", "normal", "edge", "joint", "pose")}
    expected = term["vertex"] + 5 * term["edge"] + 3 * term["joint"] + term["pose"]
    assert float(row["loss_total"]) == pytest.approx(expected, rel=1e-5)
    capsys.readouterr()
    bad = [
        (["--loss-weight", "joint"], "takes NAME=VALUE"),
        (["--loss-weight", "speed=3"], "NAME one of ['edge', 'joint', 'normal', 'pose', 'vertex']"),
        (["--loss-weight", "joint=much"], "'much' is not a non-negative finite number"),
        (["--loss-weight", "joint=-1"], "'-1' is not a non-negative finite number"),
        (["--loss-weight", "joint=nan"], "'nan' is not a non-negative finite number"),
    ]
    for extra, message in bad:
        assert main([*args, "--overwrite", *extra]) == 2
        assert message in capsys.readouterr().err, extra


def test_command_line_is_what_a_user_types_again():
    from meshgraph.training.pipeline import command_line

    assert command_line(["/venv/bin/meshgraph", "train", "--kind", "hand"]) == (
        "meshgraph train --kind hand"
    )
    module = "/src/meshgraph/cli.py"
    assert command_line([module, "train", "--out", "my run"]) == (
        "python -m meshgraph.cli train --out 'my run'"
    )
    assert command_line(["examples/pose2mesh_body.py"]) == "pose2mesh_body.py"


def test_train_with_coco_2d_keypoints(tmp_path, capsys):
    """``meshgraph train --coco DIR``: COCO people (the published annotation layout) join
    every step with the reprojection loss, and the run records where they came from."""
    import csv

    from tests.datasets import writers

    g = np.random.default_rng(0)
    # a standing person in COCO-17 order (pixels), jittered per person; some joints unlabelled
    base = np.array([[320, 100], [330, 90], [310, 90], [340, 95], [300, 95], [360, 150],
                     [280, 150], [380, 210], [260, 210], [390, 270], [250, 270], [345, 270],
                     [295, 270], [350, 360], [290, 360], [355, 450], [285, 450]],
                    float)  # fmt: skip
    people = []
    for n in range(24):
        kp = np.concatenate([base + g.normal(scale=8, size=base.shape), np.full((17, 1), 2.0)], 1)
        kp[g.choice(17, 3, replace=False), 2] = 0
        people.append({"image": 1000 + n, "keypoints": kp})
    writers.coco(tmp_path / "coco", people, split="train2017")
    out = tmp_path / "run"
    args = ["train", "--kind", "body", "--topology", "notoes_collapse10pc", "--out", str(out),
            "--no-progress", "--coco", str(tmp_path / "coco"), "--batch-2d", "8", "--w-2d",
            "0.3"]  # fmt: skip
    assert main([*args, *TINY]) == 0
    assert "2D-only training samples: COCOKeypoints('COCO train2017': 24 samples" in (
        capsys.readouterr().out
    )
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 2 and all(float(r["loss_2d"]) > 0 for r in rows)
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["config"]["batch_size_2d"] == 8 and ckpt["config"]["w_2d"] == 0.3
    # hands have no COCO input; --w-2d means nothing without --coco
    hand = ["train", "--kind", "hand", "--out", str(tmp_path / "h"), "--coco", str(tmp_path)]
    assert main([*hand, *TINY]) == 2
    assert "needs COCO input joints, the run uses hand" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "x"), "--w-2d", "1", *TINY]) == 2
    assert "--w-2d weighs the --coco samples" in capsys.readouterr().err


def test_height_sd_reaches_the_training_sets_shape_sampler(tmp_path, capsys, monkeypatch):
    from meshgraph.data.poses import ShapeSampler
    from meshgraph.training import pipeline

    made = []
    real = pipeline.SyntheticPoseMeshDataset

    def spy(*args, **kwargs):
        made.append(kwargs.get("shape_sampler"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "SyntheticPoseMeshDataset", spy)
    out = tmp_path / "narrow"
    threads = str(torch.get_num_threads())
    args = ["train", "--kind", "hand", "--out", str(out), "--no-progress", "--threads", threads,
            *TINY, "--max-steps", "1"]  # fmt: skip
    assert main([*args, "--height-sd", "0.05"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["shapes"] == {"height_sd": 0.05}
    # the training set draws from it (the held-out sets are made elsewhere, with the default)
    assert len(made) == 1 and isinstance(made[0], ShapeSampler) and made[0].height_sd == 0.05
    made.clear()
    assert main([*args, "--overwrite"]) == 0
    assert made[0] is None and json.loads((out / "results.json").read_text())["run"]["shapes"] == {}
    capsys.readouterr()
    assert main([*args, "--overwrite", "--height-sd", "0"]) == 2
    assert "height_sd must be a positive finite number or None, got 0.0" in capsys.readouterr().err
