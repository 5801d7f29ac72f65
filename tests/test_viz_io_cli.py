from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from meshgraph import MeshHierarchy, MeshTopology
from meshgraph._optional import WITH_MATPLOTLIB, require
from meshgraph.cli import main as cli_main
from meshgraph.generators import icosphere_vertices_faces
from meshgraph.io import load_mesh
from meshgraph.viz import level_positions, plot_hierarchy, save_obj, save_ply

ROOT = Path(__file__).resolve().parent.parent
needs_mpl = pytest.mark.skipif(not WITH_MATPLOTLIB, reason="matplotlib not installed")


def test_obj_roundtrip_own_reader_and_trimesh(tmp_path):
    v, f = icosphere_vertices_faces(1)
    path = save_obj(tmp_path / "a.obj", torch.tensor(v), f)
    v2, f2 = load_mesh(path)
    np.testing.assert_allclose(v2, v, atol=1e-7)
    np.testing.assert_array_equal(f2, f)
    trimesh = pytest.importorskip("trimesh")
    tm = trimesh.load(path, process=False)
    np.testing.assert_allclose(tm.vertices, v, atol=1e-7)
    np.testing.assert_array_equal(tm.faces, f)


def test_own_obj_reader_handles_quads_and_negative_indices(tmp_path):
    from meshgraph.io import _read_obj

    path = tmp_path / "q.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1/1 2/2 3/3 4/4\nf -4 -3 -2\n")
    v, f = _read_obj(path)
    assert v.shape == (4, 3)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [0, 1, 2]]
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0\n")
    with pytest.raises(ValueError, match="3 coordinates"):
        _read_obj(bad)


def test_ply_with_colors_read_by_trimesh(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    v, f = icosphere_vertices_faces(1)
    colors = np.linspace(0, 1, len(v) * 3).reshape(-1, 3)
    path = save_ply(tmp_path / "a.ply", v, f, colors=colors)
    tm = trimesh.load(path, process=False)
    np.testing.assert_allclose(tm.vertices, v, atol=1e-6)
    np.testing.assert_array_equal(tm.faces, f)
    np.testing.assert_array_equal(tm.visual.vertex_colors[:, :3], np.round(colors * 255))
    _v2, f2 = load_mesh(path)
    np.testing.assert_array_equal(f2, f)


def test_writers_reject_bad_meshes(tmp_path):
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        save_obj(tmp_path / "x.obj", np.zeros((3, 2)), [[0, 1, 2]])
    with pytest.raises(ValueError, match="out of range"):
        save_obj(tmp_path / "x.obj", np.zeros((3, 3)), [[0, 1, 3]])
    with pytest.raises(ValueError, match="NaN"):
        save_ply(tmp_path / "x.ply", np.full((3, 3), np.nan), [[0, 1, 2]])
    with pytest.raises(ValueError, match="colors"):
        save_ply(tmp_path / "x.ply", np.zeros((3, 3)), [[0, 1, 2]], colors=np.zeros((2, 3)))


def test_load_mesh_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no mesh file"):
        load_mesh(tmp_path / "nope.obj")
    np.savez(tmp_path / "m.npz", vertices=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="'faces'"):
        load_mesh(tmp_path / "m.npz")


def test_level_positions_are_cluster_means():
    v, f = icosphere_vertices_faces(2)
    h = MeshHierarchy.build(MeshTopology(f), 3, layout="binary_tree")
    pos = level_positions(h, v)
    assert [p.shape[0] for p in pos] == h.real_sizes
    c = h.real_clusters[0].numpy()
    np.testing.assert_allclose(pos[1][c[0]], v[c == c[0]].mean(0), atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        level_positions(h, v[:-1])


@needs_mpl
def test_plot_hierarchy_writes_png(tmp_path):
    v, f = icosphere_vertices_faces(2)
    h = MeshHierarchy.build(MeshTopology(f), 4, layout="binary_tree")
    path = plot_hierarchy(h, v, tmp_path / "levels.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_require_names_the_pip_command(monkeypatch):
    with pytest.raises(ImportError, match="pip install no_such_package_xyz"):
        require("no_such_package_xyz")
    import importlib

    real = importlib.import_module

    def fake(name, *args):
        if name == "torch_sparse":
            raise ImportError("simulated: not installed")
        return real(name, *args)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(ImportError, match=r"pip install --no-build-isolation torch-sparse"):
        require("torch_sparse")


def test_stderr_filter_drops_only_the_named_lines_also_from_native_writes(capfd):
    import os
    import sys

    from meshgraph._optional import _stderr_without

    with _stderr_without("CUDA driver"):
        print("python line", file=sys.stderr)
        # what native code does: a write on descriptor 2, bypassing sys.stderr
        os.write(2, b"native kept\nWarp: no CUDA driver here\nlast, no newline")
    assert capfd.readouterr().err == "python line\nnative kept\nlast, no newline"
    # what is caught is written back also when the block raises, and nothing is dropped
    with pytest.raises(RuntimeError, match="boom"), _stderr_without("absent"):
        os.write(2, b"before the error\n")
        raise RuntimeError("boom")
    assert capfd.readouterr().err == "before the error\n"
    os.write(2, b"after\n")  # descriptor 2 is the real stderr again
    assert capfd.readouterr().err == "after\n"
    # no sys.stderr at all (pythonw): native writes are still filtered
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "stderr", None)
        with _stderr_without("CUDA driver"):
            os.write(2, b"no CUDA driver\nshown\n")
    assert capfd.readouterr().err == "shown\n"


@needs_mpl
def test_cli_coarsen(tmp_path, capsys):
    v, f = icosphere_vertices_faces(2)
    mesh_path = save_obj(tmp_path / "ico.obj", v, f)
    out = tmp_path / "out"
    assert cli_main(["coarsen", str(mesh_path), "--levels", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "level 3:" in printed
    summary = json.loads((out / "hierarchy.json").read_text())
    assert summary["sizes"] == MeshHierarchy.build(MeshTopology(f), 4).sizes
    assert MeshHierarchy.load(out / "hierarchy.npz").sizes == summary["sizes"]
    assert (out / "levels.png").exists()
    code = cli_main(["coarsen", str(mesh_path), "--layout", "binary_tree", "--no-plot",
                     "--out", str(out / "bt")])  # fmt: skip
    assert code == 0 and "fake" in capsys.readouterr().out


def test_cli_errors(tmp_path, capsys):
    assert cli_main(["coarsen", str(tmp_path / "missing.obj")]) == 2
    assert "no mesh file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli_main(["coarsen", "x.obj", "--layout", "padded"])


@needs_mpl
def test_main_example_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["coarsen_and_convolve.py", "--steps", "3", "--levels",
                                      "3", "--out", str(tmp_path)])  # fmt: skip
    runpy.run_path(str(ROOT / "examples" / "coarsen_and_convolve.py"), run_name="__main__")
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["num_vertices"] == 2562
    assert len(metrics["level_sizes_compact"]) == 4
    for name in ("levels.png", "reconstruction.obj", "reconstruction_error.ply"):
        assert (tmp_path / name).stat().st_size > 0


@needs_mpl
def test_plot_samples_writes_png(tmp_path):
    from meshgraph.viz import plot_samples

    v, _ = icosphere_vertices_faces(2)
    verts = np.stack([v, v * [1.0, 1.0, 2.0]])
    kp = np.random.default_rng(0).random((2, 5, 2)) * 100
    path = plot_samples(verts, tmp_path / "s.png", titles=["a", "b"], keypoints_2d=kp,
                        bones=[(0, 1), (1, 2)])  # fmt: skip
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"\(N, V, 3\)"):
        plot_samples(v, tmp_path / "x.png")


@needs_mpl
def test_draw_mesh_paints_every_face(tmp_path):
    from meshgraph.viz import draw_mesh, pyplot, save_figure

    v, f = icosphere_vertices_faces(1)
    plt = pyplot()
    fig, axes = plt.subplots(1, 2)
    shifted = v + np.array([0.0, 0.0, 3.0])  # in front of the camera
    plain = draw_mesh(axes[0], shifted, f)
    coloured = draw_mesh(axes[1], shifted, f, values=np.arange(len(v), dtype=float))
    assert len(plain.get_paths()) == len(f) == len(coloured.get_array())
    assert coloured.get_clim() == (coloured.get_array().min(), coloured.get_array().max())
    assert save_figure(fig, tmp_path / "m.png", dpi=50).stat().st_size > 0


def test_draw_keypoints_leaves_out_unconfident_joints_and_their_bones():
    pytest.importorskip("matplotlib")
    from meshgraph.viz import draw_keypoints, pyplot

    plt = pyplot()
    fig, ax = plt.subplots()
    kp = np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.05], [2.0, 0.0, 0.9], [3.0, 1.0, 0.9]])
    draw_keypoints(ax, kp, [(0, 1), (1, 2), (2, 3)])
    bones, points = ax.lines[:-1], ax.lines[-1]
    assert len(bones) == 1  # only 2-3: joint 1 is below the threshold
    np.testing.assert_array_equal(bones[0].get_xdata(), [2.0, 3.0])
    np.testing.assert_array_equal(points.get_xdata(), [0.0, 2.0, 3.0])
    ax.clear()
    draw_keypoints(ax, kp[:, :2], [(0, 1)])  # no confidences: every joint
    assert len(ax.lines) == 2 and len(ax.lines[-1].get_xdata()) == 4
    with pytest.raises(ValueError, match=r"\(J, 2\) or \(J, 3\)"):
        draw_keypoints(ax, np.zeros((4, 4)))
    plt.close(fig)
