"""Hostile but fair use of the Python API: garbage in gives a clear error, never garbage out.

Each probe is the bad input and the exact error expected, or an invariance the result must
keep (NaN on ignored joints changes nothing, mixed dtypes agree with float64, and so on).
"""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch

from meshgraph import MeshHierarchy
from meshgraph.data.camera import normalize_keypoints
from meshgraph.devices import check_device
from meshgraph.generators import icosphere
from meshgraph.io import FolderInUseError, atomic_write, folder_lock
from meshgraph.losses import (
    edge_length_loss,
    normal_and_edge_losses,
    normal_vector_loss,
    vertex_loss,
)
from meshgraph.metrics import f_score, mpjpe, mpvpe, pa_mpjpe, pa_mpvpe, pck, pck_auc
from meshgraph.models import Pose2Mesh, Pose2MeshConfig, fit_weak_perspective
from meshgraph.nn import MeshUnpool


def _model(dtype=torch.float32) -> Pose2Mesh:
    mesh = icosphere(2)
    torch.manual_seed(0)
    reg = torch.rand(17, mesh.num_vertices)
    cfg = Pose2MeshConfig(joint_set="h36m", num_levels=3, posenet_width=16, coarse_channels=8,
                          decoder_channels=(8, 8, 8))  # fmt: skip
    return Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True)).to(dtype).eval()


def _pixels(n: int = 2, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 300 + 100 * torch.randn(n, 17, 2, generator=g, dtype=torch.float64)


# ------------------------------------------------------------------ predict: silent garbage
def test_nan_on_ignored_joints_changes_nothing():
    model = _model()
    kp = torch.cat([_pixels(), torch.ones(2, 17, 1, dtype=torch.float64)], -1)
    kp[:, [3, 9], 2] = 0.0  # below the threshold
    ref = model.predict(kp)
    for filler in (float("nan"), float("inf"), -1e30):
        bad = kp.clone()
        bad[:, [3, 9], :2] = filler
        out = model.predict(bad)
        for name in ("vertices", "joints_3d", "camera"):
            got = getattr(out, name)
            assert torch.isfinite(got).all(), (filler, name)
            torch.testing.assert_close(got, getattr(ref, name), msg=f"{filler} {name}")
    # a NaN confidence means "not visible"
    nan_conf = kp.clone()
    nan_conf[:, [3, 9], 2] = float("nan")
    nan_conf[:, [3, 9], :2] = float("nan")
    torch.testing.assert_close(model.predict(nan_conf).vertices, ref.vertices)


def test_nan_on_invisible_joints_in_the_building_blocks():
    kp = _pixels()
    vis = torch.ones(2, 17, dtype=torch.bool)
    vis[:, 5] = False
    ref, box = normalize_keypoints(kp, vis)
    kp_nan = kp.clone()
    kp_nan[:, 5] = float("nan")
    out, box2 = normalize_keypoints(kp_nan, vis)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(box2, box)
    x = torch.randn(2, 17, 3, dtype=torch.float64)
    torch.testing.assert_close(
        fit_weak_perspective(x, kp_nan, vis), fit_weak_perspective(x, kp, vis)
    )


@pytest.mark.parametrize("direction", [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (3.0, -7.0)])
def test_keypoints_on_one_line_in_any_direction_are_refused(direction):
    t = torch.linspace(-1, 1, 17, dtype=torch.float64)[:, None]
    kp = 320 + 150 * t * torch.tensor(direction, dtype=torch.float64)
    with pytest.raises(ValueError, match="one line"):
        _model().predict(kp)
    # a line with the hidden joints off it is still a line
    conf = torch.ones(17, 1, dtype=torch.float64)
    conf[:4] = 0.0
    off = kp.clone()
    off[:4] += torch.tensor([50.0, -80.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="one line"):
        _model().predict(torch.cat([off, conf], -1))


def test_nearly_collinear_but_real_keypoints_pass():
    t = torch.linspace(-1, 1, 17, dtype=torch.float64)[:, None]
    kp = 320 + 150 * t * torch.tensor([1.0, 1.0], dtype=torch.float64)
    kp[::2, 0] += 3.0  # 3 px off the line: a thin but real spread
    assert torch.isfinite(_model().predict(kp).vertices).all()


def test_one_point_is_refused():
    with pytest.raises(ValueError, match="one point"):
        _model().predict(torch.full((17, 2), 5.0))


@pytest.mark.parametrize(
    ("keypoints", "error", "needle"),
    [
        (_pixels()[0].numpy().astype(np.complex128), TypeError, "real numbers"),
        (_pixels()[0].to(torch.complex64), TypeError, "real numbers"),
        (_pixels()[0] > 300, TypeError, "real numbers"),
        (np.array([["a", "b"]] * 17), TypeError, "real numbers"),
        ([[1.0, 2.0]] * 16 + [[1.0]], ValueError, "rectangular"),
        (torch.zeros(0, 17, 2), ValueError, "no sample"),
        (torch.zeros(2, 17, 4), ValueError, r"\(17, 2\|3\)"),
    ],
)
def test_keypoints_of_the_wrong_kind(keypoints, error, needle):
    with pytest.raises(error, match=needle):
        _model().predict(keypoints)


def test_nan_threshold_is_refused():
    with pytest.raises(ValueError, match="confidence_threshold"):
        _model().predict(_pixels()[0], confidence_threshold=float("nan"))


def test_normalize_keypoints_checks_its_inputs():
    with pytest.raises(TypeError, match="floating-point"):
        normalize_keypoints(torch.zeros(1, 5, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"visible must have shape \(1, 5\)"):
        normalize_keypoints(torch.rand(1, 5, 2), torch.ones(1, 4, dtype=torch.bool))


# ------------------------------------------------------------------ losses against the topology
def test_face_losses_refuse_vertices_that_do_not_fit_the_topology():
    mesh = icosphere(1)
    v = mesh.num_vertices
    pred, target = torch.rand(2, v + 5, 3), torch.rand(2, v + 5, 3)
    for loss in (normal_vector_loss, edge_length_loss, normal_and_edge_losses):
        with pytest.raises(ValueError, match=rf"{v + 5} vertices but the topology has {v}"):
            loss(pred, target, mesh)
        with pytest.raises(ValueError, match=rf"face indices must lie in \[0, {v - 6}\]"):
            loss(pred[:, : v - 5], target[:, : v - 5], mesh.faces)
        with pytest.raises(TypeError, match="integer tensor"):
            loss(pred, target, mesh.faces.float())
        with pytest.raises(ValueError, match=r"face indices"):
            loss(pred, target, mesh.faces - 1)  # a -1 index


def test_face_losses_still_take_raw_faces():
    mesh = icosphere(1)
    p, t = torch.rand(2, mesh.num_vertices, 3), torch.rand(2, mesh.num_vertices, 3)
    for loss in (normal_vector_loss, edge_length_loss, normal_and_edge_losses):
        torch.testing.assert_close(loss(p, t, mesh.faces), loss(p, t, mesh))


# ------------------------------------------------------------------ metrics: small API edges
def _pair(seed=0, n=17):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(3, n, 3, generator=g, dtype=torch.float64), torch.randn(
        3, n, 3, generator=g, dtype=torch.float64
    )


@pytest.mark.parametrize(
    "metric",
    [
        mpjpe,
        pa_mpjpe,
        mpvpe,
        pa_mpvpe,
        lambda p, t: pck(p, t, 1.0),
        lambda p, t: pck_auc(p, t, [0.0, 0.5, 1.0]),
        lambda p, t: f_score(p, t, 1.0),
    ],
)
def test_every_metric_takes_mixed_dtypes_alike(metric):
    p, t = _pair()
    p32 = p.float()
    ref = metric(p32.double(), t)  # the float32 values, compared in float64
    for a, b in ((p32, t), (t, p32)[::-1]):
        out = metric(a, b)
        assert out.dtype == torch.float64
        torch.testing.assert_close(out, ref, rtol=0, atol=1e-12)


def test_negative_root_index_counts_from_the_end():
    p, t = _pair()
    torch.testing.assert_close(mpjpe(p, t, root=-1), mpjpe(p, t, root=16))
    torch.testing.assert_close(pck(p, t, 0.5, root=-2), pck(p, t, 0.5, root=15))
    with pytest.raises(ValueError, match="out of range"):
        mpjpe(p, t, root=-18)


@pytest.mark.parametrize("threshold", [-0.1, float("nan")])
def test_pck_and_f_score_refuse_bad_thresholds(threshold):
    p, t = _pair()
    with pytest.raises(ValueError, match="threshold"):
        pck(p, t, threshold)
    with pytest.raises(ValueError, match="threshold"):
        f_score(p, t, threshold)


def test_metric_roots_are_checked():
    p, t = _pair()
    with pytest.raises(ValueError, match="NaN"):
        mpvpe(p, t, torch.full((3, 3), float("nan")), torch.zeros(3, 3))
    with pytest.raises(TypeError, match="floating-point"):
        mpvpe(p, t, torch.zeros(3, 3, dtype=torch.int64), torch.zeros(3, 3))


def test_losses_and_metrics_refuse_complex_input():
    p = torch.zeros(1, 3, 3, dtype=torch.complex64)
    with pytest.raises(TypeError, match="floating-point"):
        mpjpe(p, p)
    with pytest.raises(TypeError, match="floating-point"):
        vertex_loss(p, p)


# ------------------------------------------------------------------ hierarchy files
def _mutations():
    def drop(key):
        return lambda z: z.pop(key)

    def put(key, value):
        return lambda z: z.__setitem__(key, value(z) if callable(value) else value)

    return {
        "cluster map too short": (put("c0", lambda z: z["c0"][:-3]), "cluster map must hold"),
        "cluster id out of range": (put("c0", lambda z: z["c0"] + 1000), "out of range"),
        "cluster map as floats": (put("c0", lambda z: z["c0"].astype(float)), "integers"),
        "orphan coarse vertex": (put("c0", lambda z: np.minimum(z["c0"], 5)), "no children"),
        "graph index out of range": (
            put("g1_indices", lambda z: z["g1_indices"] + 10_000),
            "out of range",
        ),
        "graph arrays mismatch": (put("g0_data", lambda z: z["g0_data"][:-1]), "fit together"),
        "asymmetric graph": (
            put("g0_data", lambda z: np.arange(len(z["g0_data"])) + 1.0),
            "symmetric",
        ),
        "negative weights": (put("g0_data", lambda z: -z["g0_data"]), "non-negative"),
        "lambda count": (put("lambdas", lambda z: z["lambdas"][:-1]), "lambda_max"),
        "NaN lambda": (put("lambdas", lambda z: z["lambdas"] * np.nan), "lambda_max"),
        "faces out of range": (put("faces", lambda z: z["faces"] + 5), "face indices"),
        "missing level": (drop("g2_indptr"), "g2_indptr"),
        "more levels than stored": (put("num_levels", np.array(9)), "9 levels"),
        "unknown layout": (put("layout", np.array("spiral")), "layout"),
        "unknown compat": (put("compat", np.array("smplx")), "compat"),
    }


@pytest.mark.parametrize("layout", ["compact", "binary_tree"])
@pytest.mark.parametrize("mutation", list(_mutations()))
def test_inconsistent_hierarchy_files_are_refused(tmp_path, layout, mutation):
    change, needle = _mutations()[mutation]
    arrays = dict(MeshHierarchy.build(icosphere(2), 3, layout=layout).to_arrays())
    if mutation == "faces out of range" and "faces" not in arrays:
        pytest.skip("this layout stores no faces")
    change(arrays)
    np.savez(tmp_path / "h.npz", **arrays)
    with pytest.raises(ValueError, match=needle) as info:
        MeshHierarchy.load(tmp_path / "h.npz")
    assert "h.npz" in str(info.value)


def test_a_saved_hierarchy_still_round_trips(tmp_path):
    for layout in ("compact", "binary_tree"):
        h = MeshHierarchy.build(icosphere(2), 4, layout=layout)
        h.save(tmp_path / f"{layout}.npz")
        back = MeshHierarchy.load(tmp_path / f"{layout}.npz")
        assert back.sizes == h.sizes
        x = torch.randn(2, h.sizes[1], 3)
        torch.testing.assert_close(MeshUnpool(back, 1)(x), MeshUnpool(h, 1)(x))


# ------------------------------------------------------------------ faults degrade
def test_binary_tree_with_more_levels_than_the_mesh_supports_is_refused():
    with pytest.raises(ValueError, match=r"pad the 162-vertex graph to 33554432 .*stops shrinking"):
        MeshHierarchy.build(icosphere(2), 26, layout="binary_tree")
    MeshHierarchy.build(icosphere(2), 26)  # the compact layout has no padding: fine


def test_unwritable_hierarchy_cache_warns_and_computes(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    ref = MeshHierarchy.build(icosphere(2), 3)
    with pytest.warns(RuntimeWarning, match="could not write the hierarchy cache"):
        h = MeshHierarchy.build(icosphere(2), 3, cache_dir=blocker / "cache")
    assert h.sizes == ref.sizes
    for a, b in zip(h.real_clusters, ref.real_clusters, strict=True):
        assert torch.equal(a, b)


# ------------------------------------------------------------------ models: dtype and devices
def test_float64_model_reloads_as_float64(tmp_path):
    model = _model(torch.float64)
    model.save(tmp_path / "m.pt")
    back = Pose2Mesh.load(tmp_path / "m.pt")
    assert {p.dtype for p in back.parameters()} == {torch.float64}
    assert back.mesh_regressor.dtype == torch.float64
    kp = _pixels()
    torch.testing.assert_close(
        back.predict(kp).vertices, model.predict(kp).vertices, rtol=0, atol=0
    )


@pytest.mark.parametrize(
    "map_location",
    ["cpu", torch.device("cpu"), {"cpu": "cpu"}, lambda storage, loc: storage],
    ids=["str", "device", "dict", "callable"],
)
def test_map_location_forms(tmp_path, map_location):
    model = _model()
    model.save(tmp_path / "m.pt")
    back = Pose2Mesh.load(tmp_path / "m.pt", map_location=map_location)
    kp = _pixels()
    torch.testing.assert_close(
        back.predict(kp).vertices, model.predict(kp).vertices, rtol=0, atol=0
    )


def test_check_device():
    assert check_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a torch device name"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            check_device("cuda")


# ------------------------------------------------------------------ output folders
def test_folder_lock_refuses_a_live_holder_and_frees_on_death(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from meshgraph.io import folder_lock\n"
        f"with folder_lock({str(tmp_path)!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(
            FolderInUseError, match=rf"in use by another meshgraph run \(pid {proc.pid}"
        ):
            with folder_lock(tmp_path):
                pass
    finally:
        proc.kill()  # like kill -9: the holder never cleans up
        proc.wait()
        proc.stdout.close()
    with folder_lock(tmp_path):  # the dead holder does not keep the folder
        with folder_lock(tmp_path):  # the same process may nest
            pass


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = atomic_write(tmp_path / "f.bin", lambda fh: fh.write(b"old"))

    def fail(fh):
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_atomic_write_gives_the_permissions_of_a_plain_open(tmp_path):
    old = os.umask(0o027)
    try:
        fresh = atomic_write(tmp_path / "new.bin", lambda fh: fh.write(b"x"))
        with open(tmp_path / "plain.bin", "wb") as fh:  # the reference: a plain open
            fh.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o640
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(
        (tmp_path / "plain.bin").stat().st_mode
    )
    kept = tmp_path / "kept.bin"
    kept.write_bytes(b"old")
    kept.chmod(0o604)
    atomic_write(kept, lambda fh: fh.write(b"new"))
    assert kept.read_bytes() == b"new"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o604


def test_graph_matrices_refuse_integer_dtypes():
    mesh = icosphere(1)
    for method in (mesh.laplacian, mesh.weighted_adjacency, mesh.scaled_laplacian):
        kwargs = {"dtype": torch.int64}
        with pytest.raises(TypeError, match="floating-point torch dtype"):
            method(**kwargs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("batch_size", 0),
        ("samples_per_epoch", -1),
        ("epochs", -1),
        ("lr", float("nan")),
        ("lr", 0.0),
        ("max_steps", 0),
        ("w_edge", -1.0),
        ("checkpoint_every", 0),
        ("lr_decay_epochs", (-1,)),
    ],
)
def test_train_config_refuses_impossible_schedules(field, value):
    from meshgraph.training import TrainConfig

    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_train_config_needs_one_epoch():
    from meshgraph.training import TrainConfig

    with pytest.raises(ValueError, match="at least 1"):
        TrainConfig(posenet_epochs=0, epochs=0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("posenet_width", 0),
        ("posenet_blocks", 0),
        ("num_levels", 0),
        ("K", 0),
        ("joint_channels", (32, 0)),
        ("posenet_dropout", 1.0),
        ("aspect", float("inf")),
    ],
)
def test_pose2mesh_config_refuses_impossible_networks(field, value):
    with pytest.raises(ValueError, match=field):
        Pose2MeshConfig(**{field: value})


def test_refuse_existing_run(tmp_path):
    from meshgraph.training.trainer import refuse_existing_run

    refuse_existing_run(tmp_path)  # an empty folder: fine
    refuse_existing_run(tmp_path / "not yet made")
    (tmp_path / "checkpoint.pt").write_bytes(b"x")
    with pytest.raises(
        FileExistsError, match=r"already holds a training run.*--resume.*--overwrite"
    ):
        refuse_existing_run(tmp_path)
