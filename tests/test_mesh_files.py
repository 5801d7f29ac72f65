"""Mesh files from elsewhere: textured .obj, triangle soups (.stl), welding."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from meshgraph import MeshTopology
from meshgraph.cli import main as cli_main
from meshgraph.generators import icosphere_vertices_faces
from meshgraph.io import load_mesh, weld_vertices


def _soup(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every face's corners stored apart, as an .stl file does."""
    return v[f].reshape(-1, 3), np.arange(3 * len(f)).reshape(-1, 3)


def _face_positions(v: np.ndarray, f: np.ndarray) -> set[tuple]:
    """Each face as the set of its corner positions (order- and numbering-free)."""
    return {frozenset(map(tuple, np.round(v[face], 12))) for face in f}


def _edge_positions(v: np.ndarray, f: np.ndarray) -> set[frozenset]:
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    return {frozenset((tuple(v[a]), tuple(v[b]))) for a, b in e}


def test_weld_hand_worked_square():
    # two triangles of the unit square stored apart: corners (1,0,0) and (0,1,0) repeat
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], float)
    vw, fw = weld_vertices(v, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(vw, [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]])
    np.testing.assert_array_equal(fw, [[0, 1, 2], [1, 3, 2]])
    assert vw.dtype == np.float64 and fw.dtype == np.int64


def test_weld_restores_a_soup_and_keeps_a_clean_mesh():
    v, f = icosphere_vertices_faces(2)
    vw, fw = weld_vertices(v, f)  # no repeated position: unchanged
    np.testing.assert_array_equal(vw, v)
    np.testing.assert_array_equal(fw, f)
    sv, sf = _soup(v, f)
    vw, fw = weld_vertices(torch.tensor(sv), torch.tensor(sf))
    assert vw.shape == v.shape and fw.shape == f.shape
    # the same triangles over the same points, and the same graph as the original mesh
    assert _face_positions(vw, fw) == _face_positions(v, f)
    assert _edge_positions(vw, fw) == _edge_positions(v, f)
    # first-appearance order: the soup's first corners come first
    np.testing.assert_array_equal(vw[:3], sv[:3])
    assert MeshTopology(fw).num_edges == MeshTopology(f).num_edges


def test_weld_drops_faces_that_collapse_and_checks_input():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0.0]])
    vw, fw = weld_vertices(v, [[0, 1, 2], [0, 1, 3]])  # corners 1 and 3 coincide
    assert len(vw) == 3 and fw.tolist() == [[0, 1, 2]]
    with pytest.raises(ValueError, match="out of range"):
        weld_vertices(v, [[0, 1, 4]])
    with pytest.raises(ValueError, match="NaN"):
        weld_vertices(np.full((3, 3), np.nan), [[0, 1, 2]])
    with pytest.raises(ValueError, match="integers"):
        weld_vertices(v, [[0.0, 1.0, 2.0]])
    with pytest.raises(ValueError, match=r"\(V, 3\)"):
        weld_vertices(v[:, :2], [[0, 1, 2]])


UV_QUAD = (
    "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"
    "vt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvt 0.5 0.5\nvt 0.2 0.2\nvn 0 0 1\n"
    "f 1/1/1 2/2/1 3/3/1\nf 1/5/1 3/6/1 4/4/1\n"
)


def test_textured_obj_keeps_the_files_vertices_in_order(tmp_path):
    # vertices 1 and 3 take two texture coordinates each (a UV seam); the mesh has 4 vertices
    path = tmp_path / "uv.obj"
    path.write_text(UV_QUAD)
    v, f = load_mesh(path)
    np.testing.assert_array_equal(v, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]])
    np.testing.assert_array_equal(f, [[0, 1, 2], [0, 2, 3]])
    trimesh = pytest.importorskip("trimesh")
    # the independent reader, told to keep the order, agrees
    tm = trimesh.load(path, process=False, maintain_order=True, force="mesh")
    np.testing.assert_array_equal(v, tm.vertices)
    np.testing.assert_array_equal(f, tm.faces)


def test_obj_comments_and_continued_lines(tmp_path):
    path = tmp_path / "quirks.obj"
    text = UV_QUAD.replace("v 0 1 0\n", "v 0 1 0 # corner\n# a comment line\n")
    path.write_text(text.replace("f 1/5/1 3/6/1 4/4/1", "f 1/5/1 3/6/1 \\\n  4/4/1"))
    (tmp_path / "plain.obj").write_text(UV_QUAD)
    for got, want in zip(load_mesh(path), load_mesh(tmp_path / "plain.obj"), strict=True):
        np.testing.assert_array_equal(got, want)


def test_obj_index_zero_is_refused(tmp_path):
    path = tmp_path / "zero.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n")
    with pytest.raises(ValueError, match=r"zero\.obj:4: .*start at 1"):
        load_mesh(path)


def test_stl_is_welded_like_trimesh(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    v, f = icosphere_vertices_faces(2)
    path = tmp_path / "ico.stl"
    trimesh.Trimesh(v, f, process=False).export(path)
    vw, fw = load_mesh(path)
    merged = trimesh.load(path)  # trimesh's own processing merges the corners
    assert len(vw) == len(merged.vertices) == len(v)
    assert _face_positions(vw, fw) == _face_positions(np.asarray(merged.vertices), merged.faces)
    vs, fs = load_mesh(path, merge_vertices=False)
    assert vs.shape == (3 * len(f), 3) and len(fs) == len(f)
    with pytest.raises(TypeError, match="merge_vertices"):
        load_mesh(path, merge_vertices="yes")


def test_cli_coarsen_notes_and_welds_a_soup(tmp_path, capsys):
    trimesh = pytest.importorskip("trimesh")
    v, f = icosphere_vertices_faces(2)
    sv, sf = _soup(v, f)
    path = tmp_path / "soup.ply"
    trimesh.Trimesh(sv, sf, process=False).export(path)
    args = ["coarsen", str(path), "--levels", "3", "--no-plot"]
    assert cli_main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    assert f"{len(sv) - len(v)} of the {len(sv)} vertices repeat" in err
    assert "--merge-vertices" in err
    assert json.loads((tmp_path / "a" / "hierarchy.json").read_text())["num_vertices"] == len(sv)
    assert cli_main([*args, "--merge-vertices", "--out", str(tmp_path / "b")]) == 0
    assert "repeat" not in capsys.readouterr().err
    summary = json.loads((tmp_path / "b" / "hierarchy.json").read_text())
    assert (summary["num_vertices"], summary["num_faces"]) == (len(v), len(f))
    assert summary["sizes"][0] == len(v) and summary["sizes"][-1] < len(v) // 2
