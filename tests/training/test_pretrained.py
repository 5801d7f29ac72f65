"""Shipped weights: export from a run, float16 storage, provenance, loading and its errors."""

from __future__ import annotations

import importlib
import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("anny")

import meshgraph
from meshgraph.cli import main
from meshgraph.models import Pose2Mesh
from meshgraph.models.pretrained import (
    PRETRAINED,
    PROVENANCE_KEYS,
    load_pretrained,
    pretrained_info,
    weights_dir,
)
from meshgraph.training.export import export_pretrained

TINY = ["--posenet-epochs", "1", "--epochs", "1", "--samples-per-epoch", "32", "--batch-size",
        "16", "--test-samples", "16", "--posenet-width", "32", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained") / "run"
    threads = str(torch.get_num_threads())
    assert main(["train", "--kind", "hand", "--out", str(out), "--threads", threads, *TINY]) == 0
    return out


def test_export_and_load_roundtrip(hand_run, tmp_path):
    path = export_pretrained(hand_run, "hand", tmp_path / PRETRAINED["hand"]["file"])
    original = Pose2Mesh.load(hand_run / "model.pt")
    # float16 storage: about half the bytes of the float32 model file
    assert path.stat().st_size < 0.6 * (hand_run / "model.pt").stat().st_size
    raw = torch.load(path, weights_only=True)
    assert raw["state_dict"]["posenet.inp.weight"].dtype == torch.float16
    assert raw["state_dict"]["mesh_regressor"].dtype == torch.float32
    model = Pose2Mesh.pretrained("hand", directory=tmp_path)
    assert not model.training and model.posenet.inp.weight.dtype == torch.float32
    for k, v in original.state_dict().items():  # the float16 rounding of every weight
        rounded = v.half().float() if v.is_floating_point() and k != "mesh_regressor" else v
        torch.testing.assert_close(model.state_dict()[k], rounded, rtol=0, atol=0, msg=k)
    kp = torch.from_numpy(np.random.default_rng(0).random((2, 21, 2)) * 300).float()
    # float16 weights: relative errors of about 1e-3 in the output (an untrained model's)
    torch.testing.assert_close(model.predict(kp).vertices, original.predict(kp).vertices,
                               atol=1e-3, rtol=5e-3)  # fmt: skip
    # provenance, the same through the model and through pretrained_info
    info = model.provenance
    assert info == pretrained_info("hand", directory=tmp_path)
    assert set(PROVENANCE_KEYS) <= set(info) and info["name"] == "hand"
    results = json.loads((hand_run / "results.json").read_text())
    assert info["commit"] == results["commit"] and info["seed"] == 0
    # the metrics are those of the float16 weights, as `meshgraph evaluate` measures them
    metrics = json.loads(info["metrics"])
    assert set(metrics) == {"gt_2d", "noisy_2d", "detector_2d", "mean_mesh_baseline"}
    assert info["metrics_command"] == "meshgraph evaluate --hand --samples 16 --seed 0"
    assert main(["evaluate", str(path), "--samples", "16", "--json", str(tmp_path / "e.json")]) == 0
    again = json.loads((tmp_path / "e.json").read_text())
    for key, row in again.items():
        assert row == pytest.approx(metrics[key], rel=1e-6, abs=1e-9), key
        # float16 rounding moves the float32 run's numbers by well under a percent
        assert row["mpvpe"] == pytest.approx(results[key]["mpvpe"], rel=0.01)
    assert metrics["mean_mesh_baseline"] == results["mean_mesh_baseline"]
    assert json.loads(info["data"])["kind"] == "hand"
    assert info["train_seconds"] == pytest.approx(results["train_seconds"])


def test_export_measures_another_seeds_held_out_sets(hand_run, tmp_path, capsys):
    """``export-weights --eval-seed``: the table of ``meshgraph evaluate --seed S``."""
    out = tmp_path / PRETRAINED["hand"]["file"]
    assert main(["export-weights", str(hand_run), "--name", "hand", "--out", str(out),
                 "--eval-seed", "3"]) == 0  # fmt: skip
    info = pretrained_info("hand", directory=tmp_path)
    assert info["metrics_command"] == "meshgraph evaluate --hand --samples 16 --seed 3"
    assert info["seed"] == 0  # the training seed stays the run's
    metrics = json.loads(info["metrics"])
    args = ["evaluate", str(out), "--samples", "16", "--json", str(tmp_path / "e.json")]
    assert main([*args, "--seed", "3"]) == 0
    again = json.loads((tmp_path / "e.json").read_text())
    for key, row in again.items():
        assert row == pytest.approx(metrics[key], rel=1e-6, abs=1e-9), key
    assert main([*args, "--seed", "0"]) == 0  # other samples: other numbers
    seed0 = json.loads((tmp_path / "e.json").read_text())
    assert seed0["gt_2d"]["mpvpe"] != pytest.approx(metrics["gt_2d"]["mpvpe"], rel=1e-4)
    # the baseline is measured on the seed's sets too, not copied from the run
    results = json.loads((hand_run / "results.json").read_text())
    base = metrics["mean_mesh_baseline"]
    assert base["mpvpe"] != pytest.approx(results["mean_mesh_baseline"]["mpvpe"], rel=1e-4)
    assert base["mpvpe"] == pytest.approx(results["mean_mesh_baseline"]["mpvpe"], rel=0.5)
    capsys.readouterr()
    with pytest.raises(ValueError, match="eval_seed must be a non-negative integer, got -1"):
        export_pretrained(hand_run, "hand", tmp_path / "x.pt", eval_seed=-1)
    with pytest.raises(ValueError, match="evaluate=True"):
        export_pretrained(hand_run, "hand", tmp_path / "x.pt", eval_seed=1, evaluate=False)


def test_loading_errors_name_the_file_and_the_mismatch(hand_run, tmp_path):
    with pytest.raises(ValueError, match=r"no pretrained model 'foot'.*\['body', 'hand'\]"):
        load_pretrained("foot", directory=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"pose2mesh-body\.pt.*ships none"):
        Pose2Mesh.pretrained("body", directory=tmp_path)
    hand_file = export_pretrained(hand_run, "hand", tmp_path / "hand.pt")
    # the hand's file under the body's name
    shutil.copy(hand_file, tmp_path / PRETRAINED["body"]["file"])
    with pytest.raises(ValueError, match="holds the 'hand' model, not 'body'"):
        Pose2Mesh.pretrained("body", directory=tmp_path)
    # a record that says body, but hand joints and a hand mesh
    raw = torch.load(hand_file, weights_only=True)
    raw["pretrained"]["name"] = "body"
    torch.save(raw, tmp_path / PRETRAINED["body"]["file"])
    with pytest.raises(ValueError, match="should take 'body29' joints, this one takes 'hand'"):
        Pose2Mesh.pretrained("body", directory=tmp_path)
    # a hand file trained on another body model
    raw = torch.load(hand_file, weights_only=True)
    raw["config"]["body"] = "anny-hand.L"
    torch.save(raw, tmp_path / PRETRAINED["hand"]["file"])
    with pytest.raises(ValueError, match=r"trained on 'anny-hand\.R', this one was trained on"):
        Pose2Mesh.pretrained("hand", directory=tmp_path)
    # an ordinary model file (no provenance), a corrupt file
    shutil.copy(hand_run / "model.pt", tmp_path / PRETRAINED["hand"]["file"])
    with pytest.raises(ValueError, match="no provenance record"):
        Pose2Mesh.pretrained("hand", directory=tmp_path)
    (tmp_path / PRETRAINED["hand"]["file"]).write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"pose2mesh-hand\.pt"):
        Pose2Mesh.pretrained("hand", directory=tmp_path)
    # weights that do not fit the config
    raw = torch.load(hand_file, weights_only=True)
    raw["state_dict"]["posenet.inp.weight"] = raw["state_dict"]["posenet.inp.weight"][:3]
    torch.save(raw, tmp_path / PRETRAINED["hand"]["file"])
    with pytest.raises(ValueError, match=r"pose2mesh-hand\.pt: not a usable Pose2Mesh model"):
        Pose2Mesh.pretrained("hand", directory=tmp_path)


def test_export_refuses_unfinished_or_foreign_runs(hand_run, tmp_path):
    with pytest.raises(ValueError, match="is not the body model"):
        export_pretrained(hand_run, "body", tmp_path / "b.pt")
    with pytest.raises(FileNotFoundError, match=r"results\.json"):
        export_pretrained(tmp_path, "hand", tmp_path / "h.pt")
    run = tmp_path / "run"
    shutil.copytree(hand_run, run)
    results = json.loads((run / "results.json").read_text())
    (run / "results.json").write_text(json.dumps({**results, "complete": False}))
    with pytest.raises(ValueError, match="stopped before its schedule ended"):
        export_pretrained(run, "hand", tmp_path / "h.pt")
    del results["commit"]
    (run / "results.json").write_text(json.dumps(results))
    with pytest.raises(ValueError, match="lacks commit"):
        export_pretrained(run, "hand", tmp_path / "h.pt")
    assert not (tmp_path / "h.pt").exists()


def test_weights_live_in_the_package():
    from pathlib import Path

    assert weights_dir() == Path(meshgraph.__file__).resolve().parent / "weights"


def test_shipped_weight_files_stay_within_the_size_budget():
    # Issue 13: the shipped body and hand together take at most 40 MB (10**6 bytes each).
    files = [weights_dir() / entry["file"] for entry in PRETRAINED.values()]
    assert {"body", "hand"} <= set(PRETRAINED)
    assert all(f.is_file() for f in files), files
    assert sum(f.stat().st_size for f in files) <= 40 * 10**6


def test_export_weights_command(hand_run, tmp_path, capsys):
    out = tmp_path / "w" / "hand.pt"
    assert main(["export-weights", str(hand_run), "--name", "hand", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    shutil.copy(out, tmp_path / PRETRAINED["hand"]["file"])
    assert Pose2Mesh.pretrained("hand", directory=tmp_path).provenance["name"] == "hand"
    assert main(["export-weights", str(hand_run), "--name", "body", "--out", str(out)]) == 2
    assert "is not the body model" in capsys.readouterr().err


def test_predict_command_uses_the_shipped_weights(hand_run, tmp_path, capsys, monkeypatch):
    from meshgraph.models import pretrained

    export_pretrained(hand_run, "hand", tmp_path / PRETRAINED["hand"]["file"])
    monkeypatch.setattr(pretrained, "weights_dir", lambda: tmp_path)
    kp = np.random.default_rng(1).random((21, 2)) * 300
    (tmp_path / "kp.json").write_text(json.dumps(kp.tolist()))
    out = tmp_path / "pred"
    assert main(["predict", "--hand", str(tmp_path / "kp.json"), "--out", str(out)]) == 0
    mesh = (out / "mesh.obj").read_text()
    assert mesh.count("\nv ") + mesh.startswith("v ") == 1609  # the hand's vertices
    # the same mesh as the model loaded from the file by hand
    model = Pose2Mesh.pretrained("hand", directory=tmp_path)
    verts = model.predict(torch.from_numpy(kp)).vertices[0].numpy()
    np.testing.assert_allclose(np.load(out / "mesh_pixels.npy").shape, (1609, 2))
    lines = [ln.split()[1:] for ln in mesh.splitlines() if ln.startswith("v ")]
    np.testing.assert_allclose(np.array(lines, dtype=float), verts, atol=1e-5)
    # no body weights here; --hand with a model file; three paths
    assert main(["predict", str(tmp_path / "kp.json")]) == 2
    assert "pose2mesh-body.pt: the pretrained body weights are missing" in capsys.readouterr().err
    assert main(["predict", "--hand", str(hand_run / "model.pt"), str(tmp_path / "kp.json")]) == 2
    assert "give no MODEL.pt with it" in capsys.readouterr().err
    assert main(["predict", "a.pt", "b.pt", str(tmp_path / "kp.json")]) == 2
    assert "expected [MODEL.pt] KEYPOINTS, got 3 paths" in capsys.readouterr().err


def test_docs_table_reads_the_shipped_files(hand_run, tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    from meshgraph.models import pretrained

    docs = Path(__file__).resolve().parents[2] / "docs"
    monkeypatch.syspath_prepend(str(docs / "scripts"))
    sys.modules.pop("make_figures", None)
    import make_figures

    export_pretrained(hand_run, "hand", tmp_path / PRETRAINED["hand"]["file"])
    monkeypatch.setattr(pretrained, "weights_dir", lambda: tmp_path)
    monkeypatch.setattr(make_figures, "OUT", tmp_path)
    make_figures.shipped_models()
    text = (tmp_path / "shipped_models.rst").read_text()
    assert "*No body weights ship in this checkout.*" in text
    info = pretrained_info("hand", directory=tmp_path)
    metrics = json.loads(info["metrics"])
    # the table holds the record's numbers, and the command that reproduces them
    assert f"     - {metrics['detector_2d']['mpvpe']:.1f}" in text
    assert f"     - {metrics['gt_2d']['f5']:.3f}" in text
    assert "``meshgraph evaluate --hand --samples 16 --seed 0``" in text
    assert info["commit"] in text and "detector failures off" in text


def test_left_hand_side_and_errors(hand_run, tmp_path):
    export_pretrained(hand_run, "hand", tmp_path / PRETRAINED["hand"]["file"], evaluate=False)
    right = Pose2Mesh.pretrained("hand", directory=tmp_path)
    left = Pose2Mesh.pretrained("hand", side="left", directory=tmp_path)
    assert left.config.body == "anny-hand.L" and left.provenance == right.provenance
    same = Pose2Mesh.pretrained("hand", side="R", directory=tmp_path)
    assert not same.config.mirror
    with pytest.raises(ValueError, match="only the hand has sides"):
        Pose2Mesh.pretrained("body", side="left", directory=tmp_path)
    with pytest.raises(ValueError, match="'up' is not a side"):
        Pose2Mesh.pretrained("hand", side="up", directory=tmp_path)


def test_export_writes_the_module_command_in_full(hand_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(hand_run, run)
    results = json.loads((run / "results.json").read_text())
    results["command"] = "cli.py train --kind hand --preset long"  # as earlier versions wrote
    (run / "results.json").write_text(json.dumps(results))
    export_pretrained(run, "hand", tmp_path / PRETRAINED["hand"]["file"], evaluate=False)
    info = pretrained_info("hand", directory=tmp_path)
    assert info["command"] == "python -m meshgraph.cli train --kind hand --preset long"
    assert info["metrics_command"] == "the run's own evaluation (float32 weights)"


@pytest.fixture(scope="module")
def small_body_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pretrained_body") / "run"
    threads = str(torch.get_num_threads())
    args = ["train", "--kind", "body", "--topology", "notoes_collapse10pc", "--out", str(out),
            "--joint-set", "body29", "--threads", threads, *TINY]  # fmt: skip
    assert main(args) == 0
    return out


def test_full_mesh_export_answers_on_the_full_body(small_body_run, tmp_path, capsys):
    from meshgraph.bodies import AnnyModel

    path = tmp_path / PRETRAINED["body"]["file"]
    args = ["export-weights", str(small_body_run), "--name", "body", "--out", str(path)]
    assert main([*args, "--full-mesh"]) == 0
    raw = torch.load(path, weights_only=True)
    assert raw["output_map"]["weight"].dtype == torch.float16
    assert raw["output_map"]["index"].dtype == torch.int16
    assert "fit_topology_map(anny-notoes_collapse10pc -> anny" in raw["pretrained"]["output_map"]
    full = Pose2Mesh.pretrained("body", directory=tmp_path)
    small = Pose2Mesh.pretrained("body", directory=tmp_path, full_mesh=False)
    assert full.num_vertices == 13718 and small.num_vertices == 1229
    assert full.config.body == "anny" and small.config.body == "anny-notoes_collapse10pc"
    anny = AnnyModel("body", regressor_cache_dir=False)
    assert torch.equal(full.faces, anny.faces)
    # the full mesh is the network's small one through the map; the joints are the same
    kp = torch.from_numpy(np.random.default_rng(2).random((2, 29, 2)) * 300).float()
    pf, ps = full.predict(kp), small.predict(kp)
    torch.testing.assert_close(pf.vertices, full.output_map(ps.vertices))
    torch.testing.assert_close(pf.mesh_joints_3d, ps.mesh_joints_3d)
    # the small network as trained: the run's own model, to the float16 rounding
    run_model = Pose2Mesh.load(small_body_run / "model.pt").eval()
    torch.testing.assert_close(ps.vertices, run_model.predict(kp).vertices, atol=2e-3, rtol=1e-2)
    # the record's metrics are the full mesh's, as `meshgraph evaluate` measures them
    metrics = json.loads(raw["pretrained"]["metrics"])
    assert main(["evaluate", str(path), "--samples", "16", "--json", str(tmp_path / "e.json")]) == 0
    again = json.loads((tmp_path / "e.json").read_text())
    for key, row in again.items():
        assert row == pytest.approx(metrics[key], rel=1e-6, abs=1e-9), key
    # --small-mesh: the network's own mesh, from the command line too
    kp_file = tmp_path / "kp.json"
    kp_file.write_text(json.dumps(kp[0].tolist()))
    for flag, count in (([], 13718), (["--small-mesh"], 1229)):
        out = tmp_path / f"pred{count}"
        assert main(["predict", str(path), str(kp_file), "--out", str(out), *flag]) == 0
        mesh = (out / "mesh.obj").read_text()
        assert mesh.count("\nv ") + mesh.startswith("v ") == count
    small_json = tmp_path / "small.json"
    assert main(["evaluate", str(path), "--samples", "16", "--small-mesh", "--json",
                 str(small_json)]) == 0  # fmt: skip
    small_metrics = json.loads(small_json.read_text())["gt_2d"]
    assert small_metrics["mpvpe"] != pytest.approx(metrics["gt_2d"]["mpvpe"], rel=1e-3)
    # the baseline on the full mesh too (not the run's, measured on its small mesh)
    results = json.loads((small_body_run / "results.json").read_text())
    assert metrics["mean_mesh_baseline"]["mpvpe"] != results["mean_mesh_baseline"]["mpvpe"]
    capsys.readouterr()
    # a run on the full mesh already has nothing to map
    run = tmp_path / "run"
    shutil.copytree(small_body_run, run)
    results["run"]["anny_topology"] = None
    (run / "results.json").write_text(json.dumps(results))
    assert (
        main(["export-weights", str(run), "--name", "body", "--out", str(path), "--full-mesh"]) == 2
    )
    assert "already trained on its body's full mesh" in capsys.readouterr().err


def test_flip_test_of_the_shipped_body_layout(small_body_run, tmp_path, capsys):
    path = tmp_path / PRETRAINED["body"]["file"]
    args = ["export-weights", str(small_body_run), "--name", "body", "--out", str(path)]
    assert main([*args, "--full-mesh"]) == 0
    plain = Pose2Mesh.pretrained("body", directory=tmp_path, full_mesh=False)
    small = Pose2Mesh.pretrained("body", directory=tmp_path, full_mesh=False, flip_test=True)
    full = Pose2Mesh.pretrained("body", directory=tmp_path, flip_test=True)
    assert small.vertex_flip.shape == (1229,) and plain.vertex_flip is None
    # the pairing of Anny's 1,229 vertices is the mirror image of its rest pose
    from meshgraph.bodies import AnnyModel

    rest = AnnyModel("body", topology="notoes_collapse10pc", regressor_cache_dir=False)
    rest = rest.template_vertices().double()
    mirrored = rest * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    assert (mirrored - rest[small.vertex_flip]).abs().max() < 1e-6
    # pixels mirrored in the image (x -> 640 - x, left and right swapped): the mesh mirrored
    kp = torch.from_numpy(np.random.default_rng(3).random((2, 29, 2)) * 300 + 100)
    swap = list(small.joint_set.flip_permutation())
    kp_m = kp * torch.tensor([-1.0, 1.0], dtype=torch.float64) + torch.tensor([640.0, 0])
    a, b = small.predict(kp), small.predict(kp_m[:, swap])
    flip3 = torch.tensor([-1.0, 1.0, 1.0])
    torch.testing.assert_close(b.vertices, (a.vertices * flip3)[:, small.vertex_flip],
                               rtol=1e-4, atol=1e-5)  # fmt: skip
    # the full mesh is the averaged small one through the map
    torch.testing.assert_close(full.predict(kp).vertices, full.output_map(a.vertices))
    assert not torch.allclose(a.vertices, plain.predict(kp).vertices, atol=1e-4)
    # the command line: evaluate and predict
    for flags in ([], ["--flip-test"]):
        out = tmp_path / f"e{len(flags)}.json"
        assert main(["evaluate", str(path), "--samples", "8", "--json", str(out), *flags]) == 0
    e0, e1 = (json.loads((tmp_path / f"e{i}.json").read_text()) for i in (0, 1))
    assert e0["gt_2d"]["mpvpe"] != pytest.approx(e1["gt_2d"]["mpvpe"], rel=1e-4)
    kp_file = tmp_path / "kp.json"
    kp_file.write_text(json.dumps(kp[0].tolist()))
    assert main(["predict", str(path), str(kp_file), "--out", str(tmp_path / "p"),
                 "--flip-test"]) == 0  # fmt: skip
    mesh = (tmp_path / "p" / "mesh.obj").read_text()
    assert mesh.count("\nv ") + mesh.startswith("v ") == 13718
    with pytest.raises(ValueError, match="the hand joint set has no left/right joints"):
        Pose2Mesh.pretrained("hand", flip_test=True)
    capsys.readouterr()


def test_int8_rows_round_each_row_to_its_own_step():
    from meshgraph.models.pretrained import from_int8_rows, int8_rows

    w = torch.randn(40, 300, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w[3] = 0.0
    w[5] *= 1e-6  # a tiny row keeps its own fine step
    q = int8_rows(w)
    assert q["values"].dtype == torch.int8 and q["scale"].dtype == torch.float32
    back = from_int8_rows(q).double()
    # by hand: the step of a row is max |row| / 127; rounding errs by at most half a step
    step = w.abs().amax(dim=1, keepdim=True) / 127
    assert ((back - w).abs() <= step / 2 * (1 + 1e-5) + 1e-12).all()
    assert not back[3].any()
    assert (back - w).abs()[5].max() < 1e-8
    with pytest.raises(ValueError, match="floating matrices"):
        int8_rows(torch.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        int8_rows(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(ValueError, match="one 'scale' per row"):
        from_int8_rows({"values": q["values"], "scale": q["scale"][:3]})


def test_export_with_int8_rows_halves_the_big_matrices_and_loads(hand_run, hand, tmp_path):
    half = export_pretrained(hand_run, "hand", tmp_path / "a" / PRETRAINED["hand"]["file"],
                             evaluate=False)  # fmt: skip
    path = export_pretrained(hand_run, "hand", tmp_path / "b" / PRETRAINED["hand"]["file"],
                             int8_min_size=1000)  # fmt: skip
    raw = torch.load(path, weights_only=True)
    original = Pose2Mesh.load(hand_run / "model.pt")
    big = [k for k, v in original.state_dict().items()
           if v.dim() == 2 and v.numel() >= 1000 and k != "mesh_regressor"]  # fmt: skip
    assert big and sorted(raw["int8_rows"]) == sorted(big)
    assert not set(big) & set(raw["state_dict"])
    saved = sum(original.state_dict()[k].numel() for k in big)  # one byte each, not two
    assert path.stat().st_size < half.stat().st_size - 0.9 * saved
    assert raw["pretrained"]["storage"] == "float16; int8 rows: " + ", ".join(raw["int8_rows"])
    model = Pose2Mesh.pretrained("hand", directory=tmp_path / "b")
    for k in big:  # within half a step of each row of the float32 weights
        w = original.state_dict()[k]
        step = w.abs().amax(dim=1, keepdim=True) / 127
        assert ((model.state_dict()[k] - w).abs() <= step / 2 + 1e-7).all(), k
    # hands as the model was trained on (random points put an untrained model's activations,
    # and so the int8 rounding, far from anything it learned)
    from meshgraph.data import SyntheticPoseMeshDataset

    kp = SyntheticPoseMeshDataset(hand, 4, joint_set="hand", seed=5)[0]["keypoints_2d_pixels"]
    torch.testing.assert_close(model.predict(kp).vertices, original.predict(kp).vertices,
                               atol=2e-3, rtol=2e-2)  # fmt: skip
    # the recorded metrics are those of the int8 weights, as `meshgraph evaluate` measures them
    metrics = json.loads(model.provenance["metrics"])
    assert main(["evaluate", str(path), "--samples", "16", "--json", str(tmp_path / "e.json")]) == 0
    again = json.loads((tmp_path / "e.json").read_text())
    for key, row in again.items():
        assert row == pytest.approx(metrics[key], rel=1e-6, abs=1e-9), key
    with pytest.raises(ValueError, match="positive integer"):
        export_pretrained(hand_run, "hand", tmp_path / "c.pt", int8_min_size=0)
    raw["state_dict"][big[0]] = torch.zeros(1)
    with pytest.raises(ValueError, match="also in the state dict"):
        Pose2Mesh.from_checkpoint(raw)


def _zeroed(model: Pose2Mesh) -> Pose2Mesh:
    """A copy of ``model`` with every parameter zero (nothing left of its weights)."""
    import copy

    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            p.zero_()
    return out


def test_warm_start_copies_the_weights_and_records_the_source(hand_run, tmp_path):
    import hashlib

    from meshgraph.training.pipeline import warm_start

    source = Pose2Mesh.load(hand_run / "model.pt")
    model = _zeroed(source)
    record = warm_start(model, hand_run / "model.pt")
    for k, v in source.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0, msg=k)
    results = json.loads((hand_run / "results.json").read_text())
    digest = hashlib.sha256((hand_run / "model.pt").read_bytes()).hexdigest()
    assert record["sha256"] == digest and record["file"] == str(hand_run / "model.pt")
    assert record["command"] == results["command"] and record["commit"] == results["commit"]
    assert record["train_seconds"] == results["train_seconds"] and "init_from" not in record
    # the shipped weights by name: their float16 values, and their provenance
    shipped = Pose2Mesh.pretrained("hand", full_mesh=False)
    model = _zeroed(shipped)
    record = warm_start(model, "hand")
    for k, v in shipped.state_dict().items():
        torch.testing.assert_close(model.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert record["command"] == shipped.provenance["command"]
    assert record["file"].endswith(PRETRAINED["hand"]["file"])
    # another network, another mesh, no file: errors that say which
    with pytest.raises(ValueError, match=r"differs from the run's in posenet_width: 1024 \(the "
                       r"run: 32\)"):  # fmt: skip
        warm_start(_zeroed(source), "hand")
    body = Pose2Mesh.pretrained("body", full_mesh=False)
    with pytest.raises(ValueError, match=r"its network differs from the run's in .*joint_set"):
        warm_start(_zeroed(body), hand_run / "model.pt")
    with pytest.raises(FileNotFoundError, match=r"nothing\.pt: no model file to start from"):
        warm_start(_zeroed(source), tmp_path / "nothing.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"bad\.pt"):
        warm_start(_zeroed(source), tmp_path / "bad.pt")


def test_train_init_fine_tunes_a_run_and_export_keeps_the_chain(hand_run, tmp_path, capsys):
    threads = str(torch.get_num_threads())
    out = tmp_path / "tuned"
    # a learning rate so small that the weights cannot move: the run starts from hand_run's
    start = str(hand_run / "model.pt")
    args = ["train", "--kind", "hand", "--out", str(out), "--threads", threads, *TINY,
            "--posenet-epochs", "0", "--edge-loss-start", "0", "--lr", "1e-12",
            "--init", start]  # fmt: skip
    assert main(args) == 0
    source, tuned = Pose2Mesh.load(hand_run / "model.pt"), Pose2Mesh.load(out / "model.pt")
    for (k, v), (_, w) in zip(source.named_parameters(), tuned.named_parameters(), strict=True):
        torch.testing.assert_close(w, v, rtol=0, atol=1e-6, msg=k)
    results = json.loads((out / "results.json").read_text())
    first = json.loads((hand_run / "results.json").read_text())
    assert results["init_from"]["commit"] == first["commit"]
    assert results["run"]["init_from"] == str(hand_run / "model.pt")
    assert results["run"]["train"]["edge_loss_start"] == 0
    # a fresh run with the same seed and no --init ends elsewhere
    fresh = tmp_path / "fresh"
    assert main([*args[:-2], "--out", str(fresh)]) == 0
    fresh_model = Pose2Mesh.load(fresh / "model.pt")
    assert not torch.allclose(fresh_model.posenet.inp.weight, source.posenet.inp.weight)
    # the shipped file's provenance says where the fine-tuning started
    path = export_pretrained(out, "hand", tmp_path / "hand.pt", evaluate=False)
    info = torch.load(path, weights_only=True)["pretrained"]
    chain = json.loads(info["init_from"])
    assert chain["sha256"] == results["init_from"]["sha256"]
    assert chain["command"] == first["command"]
    assert info["train_seconds"] == pytest.approx(results["train_seconds"])
    # a fine-tuning of the fine-tuned run records the whole chain
    again = tmp_path / "again"
    assert main([*args[:-1], str(out / "model.pt"), "--out", str(again)]) == 0
    chain = json.loads((again / "results.json").read_text())["init_from"]
    assert chain["command"] == results["command"]
    assert chain["init_from"]["sha256"] == results["init_from"]["sha256"]
    # a network the file does not fit: the command fails and names the field
    capsys.readouterr()
    bad = [*args[:-2], "--init", "hand", "--out", str(tmp_path / "bad")]
    assert main(bad) == 2
    assert "posenet_width: 1024 (the run: 32)" in capsys.readouterr().err


def test_train_init_into_a_deeper_posenet(hand_run, tmp_path):
    threads = str(torch.get_num_threads())
    out = tmp_path / "deep"
    # a learning rate so small that the weights cannot move: the trained ones stay, and the
    # new block stays the identity (its last layer zero)
    args = ["train", "--kind", "hand", "--out", str(out), "--threads", threads, *TINY,
            "--posenet-epochs", "0", "--edge-loss-start", "0", "--lr", "1e-12",
            "--posenet-blocks", "3", "--clean-fraction", "0.5",
            "--init", str(hand_run / "model.pt")]  # fmt: skip
    assert main(args) == 0
    source, deep = Pose2Mesh.load(hand_run / "model.pt"), Pose2Mesh.load(out / "model.pt")
    assert source.config.posenet_blocks == 2 and deep.config.posenet_blocks == 3
    assert len(deep.posenet.blocks) == 3
    trained = dict(deep.named_parameters())
    for k, v in source.named_parameters():
        torch.testing.assert_close(trained[k], v, rtol=0, atol=1e-6, msg=k)
    assert deep.posenet.blocks[2].layers[7].weight.abs().max() < 1e-6
    results = json.loads((out / "results.json").read_text())
    assert results["init_from"]["deepened_from"] == 2
    assert results["run"]["model"]["posenet_blocks"] == 3
    assert results["run"]["clean_fraction"] == 0.5


def test_resuming_a_fine_tuning_keeps_its_record_without_the_source(hand_run, tmp_path, capsys):
    import hashlib

    threads = str(torch.get_num_threads())
    source = tmp_path / "source"
    shutil.copytree(hand_run, source)  # a copy that can vanish, with its results.json
    digest = hashlib.sha256((source / "model.pt").read_bytes()).hexdigest()
    out = tmp_path / "tuned"
    args = ["train", "--kind", "hand", "--out", str(out), "--threads", threads, *TINY,
            "--posenet-epochs", "0", "--edge-loss-start", "0",
            "--init", str(source / "model.pt")]  # fmt: skip
    assert main([*args, "--max-steps", "1"]) == 0  # stopped early: resumable
    assert json.loads((out / "init_from.json").read_text())["record"]["sha256"] == digest
    shutil.rmtree(source)  # the starting file is gone: a resume still works ...
    assert main([*args, "--resume"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["complete"] is True and results["steps"] == 2
    # ... and records the file the run began from, as a fresh start would have
    first = json.loads((hand_run / "results.json").read_text())
    assert results["init_from"]["sha256"] == digest
    assert results["init_from"]["commit"] == first["commit"]
    assert results["init_from"]["file"] == str(source / "model.pt")
    # resuming with another starting point is refused, naming both
    capsys.readouterr()
    other = [*args[:-1], str(hand_run / "model.pt"), "--resume"]
    assert main(other) == 2
    err = capsys.readouterr().err
    assert "started from" in err and str(source / "model.pt") in err and "--init" in err
    # a fresh run in the folder without --init drops the old record
    assert main([*args[:-2], "--max-steps", "1", "--overwrite"]) == 0
    assert not (out / "init_from.json").exists()
    assert "init_from" not in json.loads((out / "results.json").read_text())


def _evaluate_json(model: str, tmp_path, *flags: str) -> dict:
    """``meshgraph evaluate MODEL --samples 8 FLAGS``'s table, through its JSON file."""
    out = tmp_path / "m.json"
    assert main(["evaluate", model, "--samples", "8", "--json", str(out), *flags]) == 0
    return json.loads(out.read_text())


def _spy_held_out_options(monkeypatch) -> dict:
    """The keyword arguments ``meshgraph evaluate`` gives evaluate_held_out (filled per call)."""
    seen: dict = {}
    # (the package exports the function evaluate under the module's name)
    evaluate_module = importlib.import_module("meshgraph.training.evaluate")
    real = evaluate_module.evaluate_held_out

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "evaluate_held_out", spy)
    return seen


def test_evaluate_height_sd_shapes_the_held_out_bodies(
    small_body_run, tmp_path, capsys, monkeypatch
):
    """``meshgraph evaluate --height-sd``: the same samples with other statures."""
    from meshgraph.data.poses import ShapeSampler

    model = str(small_body_run / "model.pt")

    def metrics(*flags):
        return _evaluate_json(model, tmp_path, *flags)

    plain = metrics()
    narrow = metrics("--height-sd", "0.05")
    assert set(narrow) == set(plain)
    assert narrow["gt_2d"]["mpvpe"] != pytest.approx(plain["gt_2d"]["mpvpe"], rel=1e-4)
    seen = _spy_held_out_options(monkeypatch)
    metrics("--height-sd", "0.05")
    assert isinstance(seen["shape_sampler"], ShapeSampler)
    assert seen["shape_sampler"].height_sd == 0.05
    monkeypatch.undo()
    capsys.readouterr()
    assert main(["evaluate", model, "--samples", "4", "--height-sd", "-1"]) == 2
    assert "height_sd must be a positive finite number" in capsys.readouterr().err
    args = ["evaluate", model, "--dataset", "freihand", "--root", str(tmp_path)]
    assert main([*args, "--height-sd", "0.05"]) == 2
    assert "--height-sd shape the synthetic held-out sets" in capsys.readouterr().err


def test_evaluate_size_free_adds_the_scaled_errors(small_body_run, tmp_path, capsys):
    """``meshgraph evaluate --size-free``: the same table plus N-MPJPE and N-MPVPE, those of
    the Python API (itself checked against a float64 loop in test_evaluate.py)."""
    from meshgraph.cli import _body_for
    from meshgraph.models import Pose2Mesh
    from meshgraph.training.evaluate import evaluate_held_out

    model = str(small_body_run / "model.pt")
    plain = _evaluate_json(model, tmp_path)
    free = _evaluate_json(model, tmp_path, "--size-free")
    loaded = Pose2Mesh.load(model)
    api = evaluate_held_out(loaded, _body_for(loaded.config, None), 8, size_free=True)
    for key, row in free.items():
        assert set(row) == set(plain[key]) | {"n_mpjpe", "n_mpvpe"}
        assert {k: row[k] for k in plain[key]} == pytest.approx(plain[key], rel=1e-6)
        assert row == pytest.approx(api[key], rel=1e-6)
    capsys.readouterr()
    args = ["evaluate", model, "--dataset", "freihand", "--root", str(tmp_path)]
    assert main([*args, "--size-free"]) == 2
    assert "--size-free is for the synthetic held-out sets" in capsys.readouterr().err


def test_evaluate_drop_extra_hides_body29s_extra_joints(small_body_run, tmp_path, capsys):
    """``meshgraph evaluate --drop-extra 1``: the held-out samples with the ten joints beyond
    COCO-19 missing, as a wrapper that hides them by hand gives."""
    from meshgraph.cli import _body_for
    from meshgraph.geometry import normalize_keypoints
    from meshgraph.training.evaluate import evaluate, held_out_sets

    model = str(small_body_run / "model.pt")
    plain = _evaluate_json(model, tmp_path)
    hidden = _evaluate_json(model, tmp_path, "--drop-extra", "1")
    assert hidden["gt_2d"]["mpjpe"] != pytest.approx(plain["gt_2d"]["mpjpe"], rel=1e-4)
    loaded = Pose2Mesh.load(model)
    gt = held_out_sets(_body_for(loaded.config, None), 8, joint_set="body29",
                       isotropic_input=loaded.config.isotropic_input)["gt_2d"]  # fmt: skip

    class Hide:  # the same samples, joints 19-28 switched off and the input normalised again
        joint_set, isotropic_input = gt.joint_set, gt.isotropic_input

        def __len__(self):
            return len(gt)

        def generate(self, idx):
            return gt.generate(idx)

        def __getitems__(self, idx):
            b = gt.__getitems__(idx)
            visible = b["visible"].clone()
            visible[:, 19:] = False
            norm, _ = normalize_keypoints(b["keypoints_2d_pixels"].double(), visible,
                                          isotropic=gt.isotropic_input)  # fmt: skip
            return {**b, "visible": visible, "keypoints_2d": norm.float()}

    assert hidden["gt_2d"] == pytest.approx(evaluate(loaded, Hide()), rel=1e-5)
    capsys.readouterr()
    args = ["evaluate", model, "--dataset", "freihand", "--root", str(tmp_path)]
    assert main([*args, "--drop-extra", "1"]) == 2
    assert "--drop-extra is for the synthetic held-out sets" in capsys.readouterr().err


def test_train_drop_extra_reaches_the_training_set_only(small_body_run, tmp_path, monkeypatch):
    from meshgraph.training import pipeline

    seen = []

    class Spy(pipeline.SyntheticPoseMeshDataset):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.drop_extra)

    monkeypatch.setattr(pipeline, "SyntheticPoseMeshDataset", Spy)
    evaluate_module = importlib.import_module("meshgraph.training.evaluate")
    monkeypatch.setattr(evaluate_module, "SyntheticPoseMeshDataset", Spy)
    out = tmp_path / "tuned"
    args = ["train", "--kind", "body", "--joint-set", "body29", "--out", str(out),
            "--threads", str(torch.get_num_threads()), *TINY, "--drop-extra", "0.5",
            "--init", str(small_body_run / "model.pt"), "--max-steps", "1"]  # fmt: skip
    assert main(args) == 0
    assert seen[0] == 0.5 and set(seen[1:]) == {0.0}  # the training set, then held-out ones
    assert json.loads((out / "results.json").read_text())["run"]["drop_extra"] == 0.5


def test_evaluate_pose_options_shape_the_held_out_poses(
    small_body_run, hand_run, tmp_path, capsys, monkeypatch
):
    """``meshgraph evaluate --pose-*``: held-out poses from another mixture, same seed."""
    from meshgraph.data.poses import BodyPoseSampler

    model = str(small_body_run / "model.pt")

    def metrics(*flags):
        return _evaluate_json(model, tmp_path, *flags)

    plain = metrics()
    # mirror 0 draws every pose as before (the mirror coin is drawn last)
    assert metrics("--pose-mirror", "0") == plain
    mirrored = metrics("--pose-mirror", "1")
    assert set(mirrored) == set(plain)
    assert mirrored["gt_2d"]["mpvpe"] != pytest.approx(plain["gt_2d"]["mpvpe"], rel=1e-4)
    # the options reach the held-out sets' pose sampler
    seen = _spy_held_out_options(monkeypatch)
    metrics("--pose-mirror", "0.5", "--pose-blend", "0.25")
    sampler = seen["pose_sampler"]
    assert isinstance(sampler, BodyPoseSampler)
    assert (sampler.mirror, sampler.blend, sampler.uniform) == (0.5, 0.25, 0.0)
    monkeypatch.undo()
    capsys.readouterr()
    # errors: a hand has no mirrored poses; a bad fraction; a real benchmark has its own poses
    hand = str(hand_run / "model.pt")
    assert main(["evaluate", hand, "--samples", "4", "--pose-mirror", "0.5"]) == 2
    assert "HandPoseSampler has no option 'mirror'" in capsys.readouterr().err
    assert main(["evaluate", model, "--samples", "4", "--pose-uniform", "2"]) == 2
    assert "uniform must be a fraction in [0, 1], got 2" in capsys.readouterr().err
    args = ["evaluate", model, "--dataset", "freihand", "--root", str(tmp_path)]
    assert main([*args, "--pose-mirror", "1"]) == 2
    assert "shape the synthetic held-out sets, not --dataset" in capsys.readouterr().err


def test_a_fine_tuning_without_a_joint_set_keeps_its_starting_models(
    small_body_run, hand_run, tmp_path
):
    from meshgraph.bodies import AnnyModel
    from meshgraph.training.pipeline import _init_joint_set

    small = AnnyModel("body", topology="notoes_collapse10pc", regressor_cache_dir=False)
    assert _init_joint_set(small_body_run / "model.pt", small) == "body29"
    assert _init_joint_set("body", small) == PRETRAINED["body"]["joint_set"]
    assert _init_joint_set(hand_run / "model.pt", small) is None  # not a body's: left to warm_start
    assert _init_joint_set(tmp_path / "nothing.pt", small) is None
    assert _init_joint_set(None, small) is None
    out = tmp_path / "tuned"
    threads = str(torch.get_num_threads())
    args = ["train", "--kind", "body", "--topology", "notoes_collapse10pc", "--out", str(out),
            "--threads", threads, *TINY, "--posenet-epochs", "0",
            "--init", str(small_body_run / "model.pt")]  # fmt: skip
    assert main(args) == 0
    assert Pose2Mesh.load(out / "model.pt").joint_set.name == "body29"
