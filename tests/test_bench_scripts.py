"""benchmarks/e2e_vs_commit.py and benchmarks/trainer_options.py: their reports, by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from benchmarks import e2e_vs_commit, trainer_options


def _row(wall, train, pa):
    metrics = {"mpjpe": 100.0, "pa_mpjpe": pa, "mpvpe": 150.0, "pa_mpvpe": 90.0}
    return {"wall_s": wall, "train_s": train, "steps": 1792, "gt_2d": metrics,
            "noisy_2d": {**metrics, "pa_mpjpe": pa + 5}}  # fmt: skip


def test_end_to_end_report_gives_both_runs_and_their_ratio():
    rows = {"aaa": _row(300, 290, 85.0), "bbb": _row(200, 145, 84.0)}
    text = e2e_vs_commit._markdown("aaa", "bbb", rows, "cpu", 2)
    lines = text.splitlines()
    assert "| aaa | 300 s | 290 s | 100.0 | 85.0 | 150.0 | 90.0 | 90.0 / 150.0 |" in lines
    assert "| bbb | 200 s | 145 s | 100.0 | 84.0 | 150.0 | 90.0 | 89.0 / 150.0 |" in lines
    assert "1.50 times faster end to end (2.00 times for the training alone)." in lines


def test_end_to_end_rounds_alternate_and_report_medians(tmp_path, monkeypatch):
    """--rounds 3: base, new, new, base, base, new; each tree's median time."""
    order, times = [], {"base0": [330, 300, 360], "new": [210, 240, 200]}
    monkeypatch.setattr(e2e_vs_commit, "git_head", lambda: "new")
    monkeypatch.setattr(e2e_vs_commit, "_export", lambda commit, tmp: tmp / "base-tree")
    monkeypatch.setattr(e2e_vs_commit, "ROOT", tmp_path)
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)

    def fake_run(tree, out, extra):
        name = "base0" if tree.name == "base-tree" else "new"
        order.append(name)
        wall = times[name][sum(n == name for n in order) - 1]
        return _row(wall, wall - 10, 85.0)

    monkeypatch.setattr(e2e_vs_commit, "run_example", fake_run)
    assert e2e_vs_commit.main(["--base", "base0", "--rounds", "3", "--name", "r"]) == 0
    assert order == ["base0", "new", "new", "base0", "base0", "new"]
    lines = (tmp_path / "benchmarks" / "results" / "r.md").read_text().splitlines()
    assert "| base0 | 330 s | 320 s | 100.0 | 85.0 | 150.0 | 90.0 | 90.0 / 150.0 |" in lines
    assert "| new | 210 s | 200 s | 100.0 | 85.0 | 150.0 | 90.0 | 90.0 / 150.0 |" in lines
    assert "1.57 times faster end to end (1.60 times for the training alone)." in lines
    assert "Wall times of each run: base0 [330, 300, 360] s, new [210, 240, 200] s." in lines
    with pytest.raises(SystemExit):
        e2e_vs_commit.main(["--rounds", "0"])


def test_trainer_options_report_ratios_and_failures(tmp_path, monkeypatch):
    canned = {
        (False, False): {"first_s": 0.3, "step_ms": 200.0, "first_loss": 1.5, "peak_mib": None},
        (True, False): {"first_s": 0.3, "step_ms": 160.0, "first_loss": 1.5, "peak_mib": None},
        (False, True): {"error": "RuntimeError: no compiler"},
    }
    monkeypatch.setattr(trainer_options, "_run", lambda preset, device, bf16, compile_, steps:
                        canned[(bf16, compile_)])  # fmt: skip
    stem = tmp_path / "opts"
    args = ["--variants", "eager", "bf16", "compile", "--out", str(stem)]
    assert trainer_options.main(args) == 0
    lines = stem.with_suffix(".md").read_text().splitlines()
    assert "| eager | 0.3 s | 200.0 ms | 1.00x | 1.5000 |  |" in lines
    assert "| bf16 | 0.3 s | 160.0 ms | 1.25x | 1.5000 |  |" in lines
    assert any(line.startswith("| compile | failed: RuntimeError: no compiler") for line in lines)
    record = json.loads(stem.with_suffix(".json").read_text())
    assert record["results"]["bf16"]["step_ms"] == pytest.approx(160.0)


def test_pose_prior_report_rows():
    from benchmarks import pose_prior

    metrics = {"mpjpe": 1.0, "pa_mpjpe": 60.0, "posenet_mpjpe": 90.0, "mpvpe": 120.0,
               "pa_mpvpe": 70.0}  # fmt: skip
    beyond = {**metrics, "pa_mpjpe": 150.0, "mpvpe": 300.0, "posenet_mpjpe": 250.0}
    rows = {"wide": {"poses": {"uniform": 0.5}, "train_s": 241.2, "canonical": metrics,
                     "beyond": beyond}}  # fmt: skip
    lines = pose_prior.markdown(rows, "quick").splitlines()
    assert '| wide {"uniform": 0.5} | 60.0 | 120.0 | 150.0 | 300.0 | 250.0 | 241 s |' in lines


def test_pose_prior_evaluates_given_models(tmp_path, capsys):
    pytest.importorskip("anny")
    import torch

    from benchmarks import pose_prior
    from meshgraph.models import Pose2Mesh
    from meshgraph.training.pipeline import build_body, preset

    cfg = preset("body", "quick")
    torch.manual_seed(0)
    model = Pose2Mesh.from_body(build_body(cfg), joint_set="coco", mesh_joint_set="h36m",
                                num_levels=4, posenet_width=16, coarse_channels=8)  # fmt: skip
    (tmp_path / "run").mkdir()
    model.save(tmp_path / "run" / "model.pt")
    (tmp_path / "run" / "results.json").write_text(
        json.dumps({"train_seconds": 12.5, "run": {"poses": {"uniform": 0.5}}})
    )
    stem = tmp_path / "prior"
    path = tmp_path / "run" / "model.pt"
    args = ["--models", f"tiny={path}", "--samples", "8", "--out", str(stem)]
    assert pose_prior.main(args) == 0
    rows = json.loads(stem.with_suffix(".json").read_text())
    assert list(rows) == ["tiny"] and rows["tiny"]["poses"] == {"uniform": 0.5}
    assert rows["tiny"]["train_s"] == 12.5
    assert set(rows["tiny"]) >= {"canonical", "beyond"}
    assert rows["tiny"]["beyond"]["mpvpe"] > 0
    with pytest.raises(SystemExit):
        pose_prior.main(["--models", f"x={tmp_path / 'none.pt'}"])
    assert "NAME=PATH with an existing file" in capsys.readouterr().err


def test_detector_robustness_report_rows():
    from benchmarks import detector_robustness

    def m(pa, v):
        return {"mpjpe": 1.0, "pa_mpjpe": pa, "mpvpe": v}

    rows = {"detector": {"train_s": 250.4, "gt_2d": m(80.0, 140.0), "noisy_2d": m(85.0, 150.0),
                         "detector_2d": m(90.25, 160.0)}}  # fmt: skip
    lines = detector_robustness.markdown(rows, "quick").splitlines()
    assert "| detector | 80.0 / 140.0 | 85.0 / 150.0 | 90.2 / 160.0 | 250 s |" in lines


def test_detector_robustness_evaluates_given_models(tmp_path):
    pytest.importorskip("anny")
    import torch

    from benchmarks import detector_robustness
    from meshgraph.models import Pose2Mesh
    from meshgraph.training.evaluate import evaluate_held_out
    from meshgraph.training.pipeline import build_body, preset

    body = build_body(preset("body", "quick"))
    torch.manual_seed(0)
    model = Pose2Mesh.from_body(body, joint_set="coco", mesh_joint_set="h36m", num_levels=4,
                                posenet_width=16, coarse_channels=8,
                                visibility_input=True)  # fmt: skip
    model.save(tmp_path / "model.pt")
    stem = tmp_path / "det"
    args = ["--models", f"tiny={tmp_path / 'model.pt'}", "--samples", "8", "--out", str(stem)]
    assert detector_robustness.main(args) == 0
    rows = json.loads(stem.with_suffix(".json").read_text())
    # the same numbers as meshgraph evaluate's sets
    expected = evaluate_held_out(Pose2Mesh.load(tmp_path / "model.pt"), body, 8)
    for key in ("gt_2d", "noisy_2d", "detector_2d"):
        assert rows["tiny"][key] == pytest.approx(expected[key])


def test_image_path_report_rows():
    from benchmarks import image_path

    row = {"mpjpe": 80.0, "pa_mpjpe": 50.0, "mpvpe": 95.0, "pa_mpvpe": 60.0}
    body = {"photos": 4, "detected": 3, "missed": [2], "vertices": 1229,
            "detector_px": {"median": 5.5, "mean": 7.0},
            "detector_pct_height": {"median": 1.9, "mean": 2.5},
            "detected_2d": row, "exact_2d": {k: v - 10 for k, v in row.items()},
            "seconds_per_image": {"median": 0.31, "mean": 0.33}}  # fmt: skip
    hand = dict(body, detected=0, detected_2d={}, exact_2d={})
    results = {"args": {"bodies": 4, "hands": 4, "threads": 2}, "machine": "x86_64, 2 cores",
               "mediapipe": "0.10.21", "body": body, "hand": hand}  # fmt: skip
    text = image_path.markdown(results)
    head = "| body (1,229 vertices) | 3 / 4 | 5.5 px (1.9 %) |"
    assert f"{head} detector | 80.0 | 50.0 | 95.0 | 60.0 | 0.31 |" in text
    assert "| | | | exact 2D | 70.0 | 40.0 | 85.0 | 50.0 | |" in text
    assert "| hand | 0 / 4 |" in text
    assert "own joints" not in text
    body["detected_2d_uncorrected"] = {k: v + 5 for k, v in row.items()}
    text = image_path.markdown(results)
    assert "| | | | detector, BlazePose's own joints | 85.0 | 55.0 | 100.0 | 65.0 | |" in text


def test_detector_offsets_in_the_torso_frame_by_hand():
    from benchmarks import detector_offsets

    names = ("nose", "left_hip", "right_hip", "left_shoulder", "right_shoulder")
    # a person lying along +x in the image: hips at x = 0, shoulders at x = 200 (torso 200 px)
    truth = np.array([[250.0, 0], [0, -30], [0, 30], [200, -40], [200, 40]])
    detected = truth.copy()
    detected[1] += (20, 6)  # left hip: 0.1 torso towards the shoulders, 0.03 towards its mate
    detected[0] += (-10, 50)  # nose: -0.05 along the torso (its sideways part is not measured)
    up, out, median = detector_offsets.offsets_in_torso_frame(detected, truth, names)
    np.testing.assert_allclose(up, [-0.05, 0.1, 0, 0, 0])
    np.testing.assert_allclose(out, [0, -0.03, 0, 0, 0])
    assert median == 0.0


def test_detector_offsets_report_rows():
    from benchmarks import detector_offsets
    from meshgraph.keypoint_formats import KEYPOINT_FORMATS

    joints = {n: {"up": 0.01, "up_se": 0.002, "out": -0.02, "out_se": 0.003, "spread": 0.0125,
                  "up_both_sides": 0.015, "out_both_sides": -0.025}
              for n in KEYPOINT_FORMATS["body29"]}  # fmt: skip
    results = {"args": {"photos": 8, "seed": 7}, "machine": "x86_64, 2 cores",
               "mediapipe": "0.10.21", "used": 7, "missed": [], "lost": [3],
               "joints": joints}  # fmt: skip
    text = detector_offsets.markdown(results)
    assert "7 photos measured; 0 without a detection, 1 where the detector lost" in text
    assert "| nose | +0.010 ± 0.002 | -0.020 ± 0.003 | +0.015 | -0.025 |  | 1.2 % |" in text
    row = (
        "| left_hip | +0.010 ± 0.002 | -0.020 ± 0.003 | +0.015 | -0.025 | +0.068, -0.026 | 1.2 % |"
    )
    assert row in text


def test_conv_compare_runs_and_reports_ratios(tmp_path, monkeypatch):
    """A tiny real run (torus stand-ins), then the table's ratios from canned figures."""
    from benchmarks import conv_compare

    monkeypatch.setenv("MESHGRAPH_BENCH_ANNY", "0")
    result = conv_compare.main(["--rounds", "1", "--batch", "2", "--channels", "4",
                                "--meshes", "hand", "--out", str(tmp_path)])  # fmt: skip
    (row,) = result["meshes"]
    assert set(row["median_s"]) == set(conv_compare.IMPLS) and row["mesh"].startswith("torus")
    assert (tmp_path / "convs-cpu.md").exists() and (tmp_path / "convs-cpu.json").exists()
    canned = {**result, "meshes": [{
        "mesh": "m", "median_s": {"meshgraph-sparse": 0.1, "spiral": 0.3, "spiral-gather": 0.4},
        "peak_mib": {"meshgraph-sparse": 100.0, "spiral": 150.0, "spiral-gather": 500.0},
    }]}  # fmt: skip
    lines = conv_compare.to_markdown(canned).splitlines()
    assert "| m | MeshChebConv (K = 3) | 100.0 | 1.00x | 100 | 1.00x |" in lines
    assert "| m | SpiralConv (length 9) | 300.0 | 3.00x | 150 | 1.50x |" in lines
    assert "| m | spiral, gather + Linear | 400.0 | 4.00x | 500 | 5.00x |" in lines


def test_same_as_commit_flags_any_difference(tmp_path, monkeypatch):
    from benchmarks import same_as_commit

    hashes = {"base-tree": {"a": "1", "b": "2"}, "new": {"a": "1", "b": "3", "c": "4"}}
    monkeypatch.setattr(same_as_commit, "_export", lambda rev, tmp: tmp / "base-tree")
    monkeypatch.setattr(same_as_commit, "ROOT", tmp_path / "new")
    monkeypatch.setattr(same_as_commit, "git_head", lambda: "head")
    monkeypatch.setattr(same_as_commit, "fingerprint", lambda tree, steps: hashes[tree.name])
    assert same_as_commit.main(["--base", "b0", "--out", str(tmp_path)]) == 1
    record = json.loads((tmp_path / "same-as-b0.json").read_text())
    assert [(r["item"], r["same"]) for r in record["rows"]] == [
        ("a", True), ("b", False), ("c", False)
    ]  # fmt: skip
    lines = (tmp_path / "same-as-b0.md").read_text().splitlines()
    assert "| b | `2` | `3` | **no** |" in lines and "| c | `None` | `4` | **no** |" in lines
    hashes["new"] = dict(hashes["base-tree"])
    assert same_as_commit.main(["--base", "b0", "--out", str(tmp_path)]) == 0


def test_topology_map_runs_and_reports(tmp_path):
    pytest.importorskip("anny")
    from benchmarks import topology_map

    threads = torch.get_num_threads()
    topology_map.main(["--fit-samples", "8", "--test-samples", "2", "--threads", "1",
                       "--out", str(tmp_path)])  # fmt: skip
    assert torch.get_num_threads() == threads  # the command's count ends with it
    result = json.loads((tmp_path / "topology-map-cpu.json").read_text())
    rows = {(r["k"], r["ridge"]): r for r in result["rows"]}
    assert set(rows) == set(topology_map.ROWS)
    # the nearest vertex alone moves noise unchanged; the ridge keeps the weights small
    assert rows[(1, 1e-3)]["noise_gain"] == pytest.approx(1.0, abs=0.02)
    assert rows[(8, 1e-3)]["max_abs_weight"] < rows[(8, 0.0)]["max_abs_weight"]
    assert rows[(8, 1e-3)]["mean_mm"] < rows[(1, 1e-3)]["mean_mm"]
    text = (tmp_path / "topology-map-cpu.md").read_text()
    assert "| 8 | 0.001 |" in text and "The map (k = 8) on a batch of 64 bodies" in text


def test_input_normalisation_report_by_hand():
    from benchmarks import input_normalisation

    def errors(scale):
        row = {"mpjpe": 100.0 * scale, "n_mpjpe": 80.0 * scale, "pa_mpjpe": 60.0 * scale,
               "x": 30.0, "y": 50.0, "z": 80.0}  # fmt: skip
        return {key: row for key in ("gt_2d", "noisy_2d", "detector_2d")}

    rows = [{"seed": 3, "isotropic": False, "errors": errors(1.0)},
            {"seed": 3, "isotropic": True, "errors": errors(0.9)},
            {"seed": 4, "isotropic": False, "errors": errors(1.0)},
            {"seed": 4, "isotropic": True, "errors": errors(0.95)}]  # fmt: skip
    text = input_normalisation._markdown(rows, {"posenet_epochs": 24, "samples": 512,
                                                "eval_seed": 5})  # fmt: skip
    lines = text.splitlines()
    assert ("| 3 | isotropic | 90.0 | 72.0 | 54.0 | 30.0 / 50.0 / 80.0 | 90.0 | 54.0 | 90.0 | "
            "54.0 |") in lines  # fmt: skip
    assert (
        "| 4 | per axis | 100.0 | 80.0 | 60.0 | 30.0 / 50.0 / 80.0 | 100.0 | 60.0 | 100.0 | 60.0 |"
        in lines
    )
    # (0.9 - 1 + 0.95 - 1) / 2 = -7.5 %
    assert lines[-1].startswith("Isotropic against per axis, mean over the seeds: ground truth "
                                "MPJPE -7.5 %, ground truth PA-MPJPE -7.5 %")  # fmt: skip


def test_posenet_options_report_by_hand():
    from benchmarks import posenet_options

    def errors(gt, det):
        def row(v):
            return {"mpjpe": v, "n_mpjpe": 0.8 * v, "pa_mpjpe": 0.5 * v, "x": 1.0, "y": 2.0,
                    "z": 3.0}  # fmt: skip

        return {"gt_2d": row(gt), "noisy_2d": row(gt), "detector_2d": row(det)}

    rows = [{"seed": 3, "variant": "baseline", "errors": errors(100.0, 150.0)},
            {"seed": 3, "variant": "clean25", "errors": errors(90.0, 152.0)},
            {"seed": 4, "variant": "baseline", "errors": errors(110.0, 160.0)},
            {"seed": 4, "variant": "clean25", "errors": errors(96.0, 161.0)}]  # fmt: skip
    text = posenet_options._markdown(rows, {"posenet_epochs": 24, "samples": 512,
                                            "eval_seed": 5})  # fmt: skip
    lines = text.splitlines()
    assert (
        "| 3 | clean25 | 90.0 | 72.0 | 45.0 | 1.0 / 2.0 / 3.0 | 90.0 | 45.0 | 152.0 | 76.0 |"
        in lines
    )
    assert "clean25: `--clean-fraction 0.25`" in text and "blocks4" not in text
    # gt: (-10 - 14) / 2 = -12 mm, PA half of it; detector-like: (2 + 1) / 2 = +1.5 mm
    assert lines[-1] == (
        "clean25 against baseline, mean over the seeds: ground truth MPJPE -12.0 mm, ground "
        "truth PA-MPJPE -6.0 mm, noisy MPJPE -12.0 mm, noisy PA-MPJPE -6.0 mm, detector-like "
        "MPJPE +1.5 mm, detector-like PA-MPJPE +0.8 mm."
    )


def test_input_normalisation_posenet_errors_match_evaluate(hand):
    """The benchmark's PoseNet MPJPE is evaluate()'s, on each held-out set."""
    from benchmarks import input_normalisation
    from meshgraph.models import Pose2Mesh
    from meshgraph.training.evaluate import evaluate, held_out_sets

    torch.manual_seed(0)
    model = Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand", num_levels=4,
                                posenet_width=16, coarse_channels=8, visibility_input=True,
                                isotropic_input=True).eval()  # fmt: skip
    got = input_normalisation.posenet_errors(model, hand, 12, seed=2)
    sets = held_out_sets(hand, 12, joint_set="hand", seed=2, isotropic_input=True)
    for key, data in sets.items():
        assert got[key]["mpjpe"] == pytest.approx(evaluate(model, data)["posenet_mpjpe"], rel=1e-5)


def test_error_budget_far_joints_by_a_naive_loop():
    from benchmarks.error_budget import far_joints
    from meshgraph.bodies.joint_sets import get_joint_set
    from meshgraph.data.noise import COCO_SIGMAS

    js = get_joint_set("body29")
    g = torch.Generator().manual_seed(0)
    truth = torch.rand(3, 29, 2, generator=g, dtype=torch.float64) * torch.tensor([120.0, 300.0])
    noisy = truth + 15 * torch.randn(3, 29, 2, generator=g, dtype=torch.float64)
    far = far_joints(noisy, truth, js)
    anchors = js.anchors(19)
    for b in range(3):
        w = float(truth[b, :17, 0].max() - truth[b, :17, 0].min())
        h = float(truth[b, :17, 1].max() - truth[b, :17, 1].min())
        s = (0.53 * w * h) ** 0.5
        for j in list(range(17)) + list(range(19, 29)):
            sigma = COCO_SIGMAS[j if j < 17 else anchors[j - 19]]
            # OKS = exp(-d^2 / (2 s^2 (2 sigma)^2)) = 0.5  <=>  d = 2 sigma s sqrt(2 ln 2)
            limit = 2 * sigma * s * (2 * np.log(2)) ** 0.5
            assert bool(far[b, j]) == (float((noisy[b, j] - truth[b, j]).norm()) >= limit)
        assert bool(far[b, 17]) == bool(far[b, 11] or far[b, 12])  # the pelvis: the hips
        assert bool(far[b, 18]) == bool(far[b, 5] or far[b, 6])  # the neck: the shoulders
    assert 0 < int(far.sum()) < far.numel()


def test_error_budget_rows_switch_on_one_part_at_a_time(anny_body, tmp_path):
    from benchmarks import error_budget
    from benchmarks.error_budget import BudgetInputs, far_joints
    from meshgraph.data import SyntheticPoseMeshDataset

    base = SyntheticPoseMeshDataset(anny_body, 6, joint_set="body29", seed=11, noise="none",
                                    isotropic_input=True, progress=False)  # fmt: skip
    idx = list(range(6))

    def batch(part=None, **kw):
        det = None if part is None else error_budget._detector("body29", part)
        options = {"exact": False, "posefix": 1.0, "oracle": None, **kw}
        return BudgetInputs(base, detector=det, seed=5, **options).__getitems__(idx)

    truth = base.__getitems__(idx)["keypoints_2d_gt"].double()
    exact = batch(exact=True, posefix=None)
    assert torch.equal(exact["keypoints_2d_pixels"].double(), truth.float().double())
    assert bool(exact["exact"].all()) and not bool(batch()["exact"].any())
    good = batch(posefix=0.0)["keypoints_2d_pixels"].double()
    assert not bool(far_joints(good, truth, base.joint_set, oks=0.85).any())  # within OKS 0.85
    posefix = batch()
    moved = posefix["keypoints_2d_pixels"].double()
    assert bool(far_joints(moved, truth, base.joint_set, oks=0.85).any())  # jitter and misses
    for oks in (0.5, 0.85):
        oracle = batch(oracle=oks)
        assert torch.equal(oracle["keypoints_2d_pixels"], posefix["keypoints_2d_pixels"])
        assert torch.equal(~oracle["visible"], far_joints(moved, truth, base.joint_set, oks=oks))
    offsets, drops, every = batch("offsets"), batch("drops"), batch("all")
    assert bool(offsets["visible"].all()) and not bool(drops["visible"].all())
    # missing joints move nothing: the offsets row's pixels, fewer of them given
    assert torch.equal(drops["keypoints_2d_pixels"], offsets["keypoints_2d_pixels"])
    assert every["keypoints_2d_pixels"].shape == drops["keypoints_2d_pixels"].shape
    # the whole command on a tiny untrained model writes every row
    torch.manual_seed(0)
    from meshgraph.models import Pose2Mesh

    model = Pose2Mesh.from_body(anny_body, joint_set="body29", mesh_joint_set="h36m",
                                num_levels=4, posenet_width=16, coarse_channels=8,
                                visibility_input=True, exactness_input=True,
                                isotropic_input=True)  # fmt: skip
    path = model.eval().save(tmp_path / "tiny.pt")
    threads = torch.get_num_threads()
    assert error_budget.main([str(path), "--samples", "4", "--out", str(tmp_path),
                              "--threads", "1"]) == 0  # fmt: skip
    assert torch.get_num_threads() == threads  # the command's count ends with it
    record = json.loads((tmp_path / "error-budget-cpu.json").read_text())
    assert [r["label"] for r in record["rows"]] == [r[0] for r in error_budget.ROWS]
    first = record["rows"][0]
    assert first["input_error"] == 0.0 and first["given"] == 1.0
    assert record["rows"][3]["input_error"] > record["rows"][2]["input_error"] > 0


def test_benchmark_commands_that_set_threads_restore_them():
    """Every benchmark command that sets torch's thread count gives the caller's back."""
    import ast
    import importlib
    from pathlib import Path

    from benchmarks._common import restores_torch_threads

    setters = []
    for path in sorted((Path(__file__).parent.parent / "benchmarks").glob("*.py")):
        tree = ast.parse(path.read_text())
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and getattr(n.func, "attr", None) == "set_num_threads"]  # fmt: skip
        if calls and not path.stem.startswith("_"):  # a child script's text is no call
            setters.append(path.stem)
            main = importlib.import_module(f"benchmarks.{path.stem}").main
            assert getattr(main, "restores_torch_threads", False), path.name
    assert len(setters) >= 8

    calls = []

    @restores_torch_threads
    def sets(n):
        torch.set_num_threads(n)
        calls.append(torch.get_num_threads())
        raise RuntimeError("fails after setting")

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="fails after"):
        sets(before + 1)
    assert calls == [before + 1] and torch.get_num_threads() == before
