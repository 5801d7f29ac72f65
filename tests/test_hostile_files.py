"""Hostile files and a hostile command line: nothing runs code, every failure is one clear line.

Security probes plant a pickle payload that creates a marker file when it is unpickled, in
every kind of file meshgraph reads; each load must refuse it (or, for caches, rebuild), and
the marker must never appear. CLI probes check that every user-facing failure ends as one line
on stderr naming the file or the option, with exit status 2, and no traceback.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from meshgraph import MeshHierarchy
from meshgraph.cli import main
from meshgraph.generators import icosphere, icosphere_vertices_faces
from meshgraph.io import (
    UnsafeFileError,
    check_pickle,
    load_array,
    load_arrays,
    load_mesh,
    load_torch,
)
from meshgraph.models import Pose2Mesh, Pose2MeshConfig


class Payload:
    """Unpickling this creates ``marker`` (through ``builtins.open``): proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _object_array(marker: Path) -> np.ndarray:
    arr = np.empty(1, dtype=object)
    arr[0] = Payload(marker)
    return arr


def _tiny_model(dtype=torch.float32) -> Pose2Mesh:
    mesh = icosphere(2)
    torch.manual_seed(0)
    reg = torch.rand(21, mesh.num_vertices)
    cfg = Pose2MeshConfig(joint_set="hand", mesh_joint_set="hand", num_levels=3, posenet_width=16,
                          coarse_channels=8, decoder_channels=(8, 8, 8))  # fmt: skip
    return Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True)).to(dtype).eval()


@pytest.fixture
def model_file(tmp_path) -> Path:
    return _tiny_model().save(tmp_path / "model.pt")


def _hand_pixels(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 200 + 40 * rng.standard_normal((21, 2))


def _one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("meshgraph ") and ": error: " in lines[0], lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


# ------------------------------------------------------------------ security: payloads
def test_payload_in_a_model_file_is_refused(tmp_path, model_file):
    marker = tmp_path / "pwned"
    ckpt = torch.load(model_file, weights_only=True)
    ckpt["config"]["extra"] = {"x": Payload(marker)}
    torch.save(ckpt, tmp_path / "evil.pt")
    with pytest.raises(UnsafeFileError, match="refused"):
        Pose2Mesh.load(tmp_path / "evil.pt")
    assert not marker.exists()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_payload_in_a_model_file_via_the_cli(tmp_path, model_file, capsys, command):
    marker = tmp_path / "pwned"
    torch.save({"format": "meshgraph-pose2mesh", "x": Payload(marker)}, tmp_path / "evil.pt")
    np.save(tmp_path / "kp.npy", _hand_pixels())
    args = [command, str(tmp_path / "evil.pt")]
    args += [str(tmp_path / "kp.npy")] if command == "predict" else ["--samples", "4"]
    assert main(args) == 2
    _one_line_error(capsys, "evil.pt", "refused")
    assert not marker.exists()


def test_payload_in_any_torch_file_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"running": Payload(marker)}, tmp_path / "checkpoint.pt")
    with pytest.raises(UnsafeFileError, match=r"checkpoint\.pt.*refused"):
        load_torch(tmp_path / "checkpoint.pt", what="training checkpoint")
    assert not marker.exists()


def test_load_torch_mmap_same_values_and_same_refusals(tmp_path):
    obj = {"config": {"width": 8, "name": "x"}, "w": torch.arange(12.0).view(3, 4)}
    torch.save(obj, tmp_path / "zip.pt")
    torch.save(obj, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    for name in ("zip.pt", "legacy.pt"):  # legacy files cannot be mapped: read whole
        got = load_torch(tmp_path / name, mmap=True)
        assert got["config"] == obj["config"] and torch.equal(got["w"], obj["w"])
    marker = tmp_path / "pwned"
    torch.save({"running": Payload(marker)}, tmp_path / "evil.pt")
    with pytest.raises(UnsafeFileError, match=r"evil\.pt.*refused"):
        load_torch(tmp_path / "evil.pt", mmap=True)
    assert not marker.exists()
    data = (tmp_path / "zip.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.pt.*truncated or corrupt"):
        load_torch(tmp_path / "cut.pt", what="model", mmap=True)
    with pytest.raises(FileNotFoundError, match=r"gone\.pt"):
        load_torch(tmp_path / "gone.pt", mmap=True)


def test_payload_in_a_keypoint_file(tmp_path, model_file, capsys):
    marker = tmp_path / "pwned"
    np.save(tmp_path / "kp.npy", _object_array(marker), allow_pickle=True)
    assert main(["predict", str(model_file), str(tmp_path / "kp.npy")]) == 2
    _one_line_error(capsys, "kp.npy", "pickled")
    assert not marker.exists()


def test_payload_in_a_hierarchy_file_and_cache(tmp_path):
    marker = tmp_path / "pwned"
    mesh = icosphere(2)
    h = MeshHierarchy.build(mesh, 3)
    arrays = h.to_arrays()
    arrays["c0"] = _object_array(marker)
    np.savez(tmp_path / "h.npz", **arrays)
    with pytest.raises(UnsafeFileError, match=r"h\.npz"):
        MeshHierarchy.load(tmp_path / "h.npz")
    # the same payload planted as a cache entry: a warning, then the hierarchy is rebuilt
    cache = tmp_path / "cache"
    MeshHierarchy.build(mesh, 3, cache_dir=cache)
    (entry,) = cache.glob("hierarchy-*.npz")
    np.savez(entry.with_suffix(""), **arrays)  # np.savez adds .npz back
    with pytest.warns(RuntimeWarning, match="unusable"):
        again = MeshHierarchy.build(mesh, 3, cache_dir=cache)
    assert again.sizes == h.sizes
    assert not marker.exists()


def test_payload_in_arrays_and_meshes(tmp_path):
    marker = tmp_path / "pwned"
    np.save(tmp_path / "a.npy", _object_array(marker), allow_pickle=True)
    np.savez(tmp_path / "m.npz", vertices=np.zeros((3, 3)), faces=_object_array(marker))
    with pytest.raises(UnsafeFileError, match=r"a\.npy"):
        load_array(tmp_path / "a.npy")
    with pytest.raises(UnsafeFileError, match=r"m\.npz"):
        load_arrays(tmp_path / "m.npz")
    with pytest.raises(UnsafeFileError, match=r"m\.npz"):
        load_mesh(tmp_path / "m.npz")
    assert not marker.exists()


def test_check_pickle_allows_arrays_and_refuses_code(tmp_path):
    sp = pytest.importorskip("scipy.sparse")
    marker = tmp_path / "pwned"
    good = {"v_template": np.zeros((4, 3)), "J_regressor": sp.csc_matrix(np.eye(4)),
            "kintree_table": np.zeros((2, 4), dtype=np.int64), "names": ["a", "b"]}  # fmt: skip
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        (tmp_path / "ok.pkl").write_bytes(pickle.dumps(good, protocol=protocol))
        assert check_pickle(tmp_path / "ok.pkl") == tmp_path / "ok.pkl"
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(good | {"x": Payload(marker)}))
    with pytest.raises(UnsafeFileError, match=r"evil\.pkl.*(io|builtins)\.open"):
        check_pickle(tmp_path / "evil.pkl")
    (tmp_path / "half.pkl").write_bytes(pickle.dumps(good)[:50])
    with pytest.raises(ValueError, match=r"half\.pkl is not a readable"):
        check_pickle(tmp_path / "half.pkl")
    assert not marker.exists()


# ------------------------------------------------------------------ damaged files
@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "json"])
def test_damaged_model_files(tmp_path, model_file, capsys, damage):
    data = model_file.read_bytes()
    bad = tmp_path / "bad.pt"
    bad.write_bytes({"empty": b"", "truncated": data[: len(data) // 2],
                     "garbage": bytes(range(256)) * 8, "json": b'{"a": 1}'}[damage])  # fmt: skip
    with pytest.raises(ValueError, match=r"bad\.pt"):
        Pose2Mesh.load(bad)
    np.save(tmp_path / "kp.npy", _hand_pixels())
    assert main(["predict", str(bad), str(tmp_path / "kp.npy")]) == 2
    _one_line_error(capsys, "bad.pt")
    assert main(["evaluate", str(bad)]) == 2
    _one_line_error(capsys, "bad.pt")


def test_a_torch_file_that_is_not_a_model(tmp_path, capsys):
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt.*not a meshgraph Pose2Mesh"):
        Pose2Mesh.load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="no Pose2Mesh model file at"):
        Pose2Mesh.load(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="is not a file"):
        Pose2Mesh.load(tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("mesh.abc", b"1 2 3\n", "unknown mesh format"),
        ("mesh.ply", b"ply\nformat ascii 1.0\nelement vertex 3\nend_header\n1 2\n", "mesh.ply"),
        ("mesh.ply", b"not a ply at all", "mesh.ply"),
        ("mesh.obj", b"v 0 0 0\nv 1 0 zero\n", "mesh.obj"),
        ("mesh.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 9\n", "mesh.obj"),
        ("mesh.obj", b"", "is empty"),
        ("mesh.obj", b"\xff\xfe\x00binary", "mesh.obj"),
        ("mesh.npz", b"PK\x03\x04broken", "mesh.npz"),
    ],
)
def test_coarsen_bad_mesh_files(tmp_path, capsys, name, content, needle):
    if name.endswith((".ply", ".abc")):
        pytest.importorskip("trimesh")
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["coarsen", str(path), "--no-plot", "--levels", "2"]) == 2
    _one_line_error(capsys, name, needle)


def test_unwritable_output_folders(tmp_path, model_file, capsys):
    v, f = icosphere_vertices_faces(1)
    from meshgraph.viz import save_obj

    mesh = save_obj(tmp_path / "ico.obj", torch.tensor(v), f)
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    assert main(["coarsen", str(mesh), "--no-plot", "--levels", "2",
                 "--out", str(blocker / "out")]) == 2  # fmt: skip
    _one_line_error(capsys, "a_file")
    np.save(tmp_path / "kp.npy", _hand_pixels())
    assert main(["predict", str(model_file), str(tmp_path / "kp.npy"),
                 "--out", str(blocker / "pred")]) == 2  # fmt: skip
    _one_line_error(capsys, "a_file")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("kp.json", "{not json", "not a JSON keypoint file"),
        ("kp.json", '{"people": []}', "holds no person"),
        ("kp.json", '[[1, 2], [3, "x"]]', "numbers"),
        ("kp.json", "[[1, 2], [3]]", "numbers"),
        ("kp.txt", "1 2", ".json or .npy"),
        ("kp.json", "[" * 100_000 + "]" * 100_000, "kp.json"),
    ],
)
def test_bad_keypoint_files(tmp_path, model_file, capsys, name, content, needle):
    (tmp_path / name).write_text(content)
    assert main(["predict", str(model_file), str(tmp_path / name)]) == 2
    _one_line_error(capsys, name, needle)


@pytest.mark.parametrize(
    ("keypoints", "needle"),
    [
        (np.zeros((5, 2)), "21 joints, got 5"),
        (np.full((21, 2), np.nan), "NaN"),
        (np.stack([np.arange(21.0), 2 * np.arange(21.0)], 1), "one line"),
        (_hand_pixels().astype(np.complex128), "real numbers"),
    ],
)
def test_bad_keypoints_through_the_cli(tmp_path, model_file, capsys, keypoints, needle):
    np.save(tmp_path / "kp.npy", keypoints)
    assert main(["predict", str(model_file), str(tmp_path / "kp.npy")]) == 2
    _one_line_error(capsys, "kp.npy", needle)


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "banana", "mps"])
def test_unavailable_devices_are_refused_up_front(tmp_path, model_file, capsys, device):
    from meshgraph.devices import check_device

    try:
        check_device(device)
    except ValueError:
        pass
    else:
        pytest.skip(f"this machine has {device}")
    assert main(["train", "--device", device, "--out", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, f"--device {device}")
    assert not (tmp_path / "run").exists()  # refused before anything was written
    assert main(["evaluate", str(model_file), "--device", device]) == 2
    _one_line_error(capsys, f"--device {device}")


def test_unexpected_errors_are_one_line_too(tmp_path, capsys, monkeypatch):
    import meshgraph.cli as cli

    def boom(args):
        raise ZeroDivisionError("an internal bug")

    parser = cli.build_parser
    monkeypatch.setattr(
        cli, "build_parser", lambda: _with_func(parser(), "coarsen", boom), raising=True
    )
    assert main(["coarsen", "x.obj"]) == 2
    _one_line_error(capsys, "ZeroDivisionError", "an internal bug")
    monkeypatch.setenv("MESHGRAPH_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(["coarsen", "x.obj"])


def _with_func(parser, command, func):
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices[command].set_defaults(func=func)
    return parser


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--batch-size", "0"],
        ["train", "--batch-size", "-4"],
        ["train", "--epochs", "-1"],
        ["train", "--samples-per-epoch", "0"],
        ["train", "--lr", "nan"],
        ["train", "--lr", "-1"],
        ["train", "--max-steps", "0"],
        ["train", "--threads", "0"],
        ["train", "--test-samples", "0"],
        ["train", "--posenet-width", "0"],
        ["train", "--posenet-blocks", "0"],
        ["train", "--clean-fraction", "1.5"],
        ["train", "--clean-fraction", "nan"],
        ["train", "--seed", "-1"],
        ["evaluate", "m.pt", "--samples", "0"],
        ["predict", "m.pt", "kp.json", "--threshold", "nan"],
        ["coarsen", "m.obj", "--levels", "0"],
        ["coarsen", "m.obj", "--levels", "two"],
    ],
)
def test_impossible_numbers_are_refused_by_the_parser(capsys, args):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {args[-2]}:" in err and "Traceback" not in err


def test_unwritable_cache_warns_in_one_line(tmp_path, capsys):
    v, f = icosphere_vertices_faces(1)
    from meshgraph.viz import save_obj

    mesh = save_obj(tmp_path / "ico.obj", torch.tensor(v), f)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    assert main(["coarsen", str(mesh), "--no-plot", "--levels", "2", "--out",
                 str(tmp_path / "out"), "--cache-dir", str(blocker / "cache")]) == 0  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("meshgraph coarsen: warning: ")
    assert "could not write the hierarchy cache" in err[0]
    assert (tmp_path / "out" / "hierarchy.npz").exists()


@pytest.mark.parametrize("protocol", [0, 1, 2, pickle.HIGHEST_PROTOCOL])
def test_check_pickle_accepts_chumpy_objects_in_every_protocol(tmp_path, monkeypatch, protocol):
    """The released SMPL files hold chumpy arrays (Python 2 pickles); a stand-in class under
    a module named ``chumpy.ch`` is pickled the same way and must pass the check."""
    import sys
    import types

    sp = pytest.importorskip("scipy.sparse")
    module = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    module.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    monkeypatch.setitem(sys.modules, "chumpy.ch", module)
    data = {"shapedirs": Ch(np.zeros((3, 3, 2))), "J_regressor": sp.csc_matrix(np.eye(3)),
            "f": np.zeros((1, 3), np.uint32)}  # fmt: skip
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(data, protocol=protocol))
    monkeypatch.delitem(sys.modules, "chumpy.ch")  # the check must not need chumpy installed
    monkeypatch.delitem(sys.modules, "chumpy")
    assert check_pickle(tmp_path / "m.pkl") == tmp_path / "m.pkl"
