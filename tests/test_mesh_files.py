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


def _random_obj(rng: np.random.Generator) -> str:
    """An .obj text with the features exporters write: comments, tabs, texture and normal
    indices, extra vertex fields, other statements and a mix of triangles and polygons."""
    n = int(rng.integers(3, 30))
    lines = ["# exported", "o thing", "mtllib a.mtl"]
    for _ in range(n):
        x, y, z = (float(c) for c in rng.normal(size=3))
        extra = " 1.0" if rng.random() < 0.2 else ""  # a w coordinate or a colour
        sep = "\t" if rng.random() < 0.2 else " "
        lines.append(f"v{sep}{x!r} {y:.5e}  {z:.3f}{extra}")
        if rng.random() < 0.3:
            lines.append(f"vt {rng.random():.3f} {rng.random():.3f}")
        if rng.random() < 0.1:
            lines.append("   # indented comment")
    lines.append("vn 0 0 1\ns off\nusemtl skin")
    for _ in range(int(rng.integers(1, 30))):
        k = int(rng.choice([3, 3, 3, 4, 5]))
        idx = rng.integers(1, n + 1, size=k)
        style = rng.integers(0, 4)
        corner = ["{}", "{}/{}", "{}//1", "{}/{}/1"][style]
        fields = [corner.format(i, i) for i in idx]
        tail = "  # note" if rng.random() < 0.1 else ""
        lines.append("f " + " ".join(fields) + tail)
    return "\n".join(lines) + ("\n" if rng.random() < 0.5 else "")


def test_obj_fast_reader_equals_the_line_reader(tmp_path):
    from meshgraph.io import _read_obj_fast, _read_obj_lines

    rng = np.random.default_rng(7)
    for i in range(200):
        text = _random_obj(rng)
        path = tmp_path / f"r{i}.obj"
        path.write_text(text)
        fast = _read_obj_fast(path.read_text())
        assert fast is not None, text  # every feature above is one it reads itself
        for got, want in zip(fast, _read_obj_lines(path), strict=True):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_obj_fast_reader_matches_trimesh_on_polygons(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    # a hand-worked mesh: a convex pentagon (area 2.5) and a unit square above it, corners
    # with texture and normal indices
    text = (
        "v 0 0 0\nv 1 0 0\nv 2 1 0\nv 1 2 0\nv 0 1 0\n"
        "v 0 0 1\nv 1 0 1\nv 1 1 1\nv 0 1 1\nvt 0 0\nvn 0 0 1\n"
        "f 1/1/1 2/1/1 3/1/1 4/1/1 5/1/1\nf 6//1 7//1 8//1 9//1\n"
    )
    path = tmp_path / "poly.obj"
    path.write_text(text)
    v, f = load_mesh(path)
    assert f.tolist() == [[0, 1, 2], [0, 2, 3], [0, 3, 4], [5, 6, 7], [5, 7, 8]]
    tm = trimesh.load(path, process=False, maintain_order=True, force="mesh")
    np.testing.assert_array_equal(v, tm.vertices)
    # trimesh triangulates polygons its own way; any triangulation keeps the area
    assert trimesh.Trimesh(v, f, process=False).area == pytest.approx(3.5)
    assert tm.area == pytest.approx(3.5)


@pytest.mark.parametrize(
    "text",
    [
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nf -3 -2 -1\n",  # relative indices
        "v 0 0 0\nv 1 0 0\nv 0 1 \\\n 0\nf 1 2 3\n",  # a continued line
    ],
)
def test_obj_cases_left_to_the_line_reader(tmp_path, text):
    from meshgraph.io import _read_obj, _read_obj_fast

    path = tmp_path / "m.obj"
    path.write_text(text)
    assert _read_obj_fast(text) is None
    v, f = _read_obj(path)
    np.testing.assert_array_equal(v, [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    assert f.tolist() == [[0, 1, 2]]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("v 0 0 0\nv 1 0\nf 1 2 1\n", r"m\.obj:2: .*3 coordinates"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2\n", r"m\.obj:4: .*at least 3"),
        ("v 0 0 0\nv 1 0 x\nv 0 1 0\nf 1 2 3\n", r"m\.obj:2: malformed"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3/\nf 1 2 /3\n", r"m\.obj:5: malformed"),
        ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 0\n", r"m\.obj:4: .*start at 1"),
    ],
)
def test_obj_errors_name_the_line(tmp_path, text, match):
    path = tmp_path / "m.obj"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        load_mesh(path)
