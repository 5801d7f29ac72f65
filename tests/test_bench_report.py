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
