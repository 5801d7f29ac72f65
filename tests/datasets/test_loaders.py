"""Real-dataset loaders on small files written in the published layouts.

References are worked out here in float64 NumPy (camera transforms, pinhole projection, the
14-joint protocol), never taken from the loaders.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from meshgraph.bodies import get_joint_set
from meshgraph.datasets import (
    BENCHMARKS,
    COCOKeypoints,
    DatasetFileError,
    FreiHAND,
    Human36M,
    load_dataset,
    read_detections,
)
from meshgraph.training.evaluate import evaluate_benchmark, format_benchmark
from tests.datasets import writers

RNG = np.random.default_rng(7)
# a standing person in H36M world coordinates (mm, z up), 17 joints
_BODY = np.array(
    [
        [0, 0, 900],
        [-130, 0, 900],
        [-130, 0, 480],
        [-130, 0, 60],
        [130, 0, 900],
        [130, 0, 480],
        [130, 0, 60],
        [0, 0, 1150],
        [0, 0, 1400],
        [0, -60, 1500],
        [0, 0, 1600],
        [180, 0, 1380],
        [420, 0, 1380],
        [650, 0, 1380],
        [-180, 0, 1380],
        [-420, 0, 1380],
        [-650, 0, 1380],
    ],
    dtype=np.float64,
)


def _camera(yaw: float) -> dict:
    # a camera 4.5 m away, looking at the person: camera z is its viewing direction
    look = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])  # world z-up -> camera y-down
    r = look @ writers.rotation(yaw, 0.0)
    t = np.array([0.0, -900.0 * 0, 4500.0]) - r @ np.array([0.0, 0.0, 900.0])
    return {"R": r, "t": t, "f": (1145.0, 1143.8), "c": (512.5, 515.4)}


@pytest.fixture
def h36m_root(tmp_path):
    cams = {1: _camera(0.0), 2: _camera(1.2)}
    for s in (9, 11, 1):
        frames = []
        for f in (0, 1, 63, 64, 128):
            for cam in (1, 2):
                j = _BODY + RNG.normal(0, 20, _BODY.shape) + [s * 10, 0, 0]
                frames.append({"action": 2, "subaction": 1, "cam": cam, "frame": f, "joints": j})
        writers.h36m_subject(tmp_path, s, frames, cams)
    return tmp_path


def _world_joints(root, subject, frame):
    data = json.loads(
        (root / "annotations" / f"Human36M_subject{subject}_joint_3d.json").read_text()
    )
    return np.array(data["2"]["1"][str(frame)])


def test_h36m_protocols_pick_subjects_and_every_64th_frame(h36m_root):
    p2 = Human36M(h36m_root, protocol=2)
    p1 = Human36M(h36m_root, protocol=1)
    # frames 0, 64, 128 of 2 cameras; P2: subjects 9 and 11, P1: subject 11
    assert len(p2) == 2 * 3 * 2 and len(p1) == 3 * 2
    assert all("s_11_" in i for i in p1.ids)
    assert {i[:4] for i in p2.ids} == {"s_09", "s_11"}
    assert p2.ids == sorted(p2.ids)
    assert len(Human36M(h36m_root, protocol=2, stride=1)) == 2 * 5 * 2
    assert len(Human36M(h36m_root, split="train", subjects=[1])) == 1 * 1 * 2  # stride 5: frame 0
    with pytest.raises(DatasetFileError, match=r"Human36M_subject5_data\.json"):
        Human36M(h36m_root, split="train")  # S1, 5, 6, 7, 8: S5 is missing


def test_h36m_camera_frame_and_pixels_match_numpy(h36m_root):
    data = Human36M(h36m_root, protocol=1)
    name = data.ids[3]  # "..._ca_02_000065.jpg": camera 2, frame 64
    cam = _camera(1.2) if "_ca_02_" in name else _camera(0.0)
    frame = int(name[-10:-4]) - 1
    world = _world_joints(h36m_root, 11, frame)
    expect = (cam["R"] @ world.T).T + cam["t"]  # mm
    sample = data[3]
    got = sample["mesh_joints_3d"].double().numpy()
    np.testing.assert_allclose(got, (expect - expect[0]) / 1000, atol=1e-6)
    np.testing.assert_allclose(sample["root"].double().numpy(), expect[0] / 1000, atol=1e-5)
    px = np.stack(
        [
            expect[:, 0] / expect[:, 2] * cam["f"][0] + cam["c"][0],
            expect[:, 1] / expect[:, 2] * cam["f"][1] + cam["c"][1],
        ],
        1,
    )
    np.testing.assert_allclose(sample["keypoints_2d_pixels"].double().numpy(), px, atol=1e-3)
    assert sample["visible"].all() and "vertices" not in sample
    # the normalised input is z-scored per axis
    kp = sample["keypoints_2d"].double()
    np.testing.assert_allclose(kp.mean(0).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(kp.std(0, unbiased=False).numpy(), 1, atol=1e-4)


def test_h36m_missing_and_malformed_files_are_named(h36m_root, tmp_path_factory):
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(DatasetFileError, match="annotations"):
        Human36M(empty)
    (h36m_root / "annotations" / "Human36M_subject9_camera.json").unlink()
    with pytest.raises(DatasetFileError, match=r"Human36M_subject9_camera\.json.*expected"):
        Human36M(h36m_root)
    path = h36m_root / "annotations" / "Human36M_subject11_joint_3d.json"
    path.write_text(json.dumps({"2": {"1": {"0": [[0, 0, 1]] * 16}}}))
    with pytest.raises(DatasetFileError, match=r"subject11_joint_3d\.json.*shape \(17, 3\)"):
        Human36M(h36m_root, protocol=1)
    path.write_text("{not json")
    with pytest.raises(DatasetFileError, match="not readable JSON"):
        Human36M(h36m_root, protocol=1)
    with pytest.raises(ValueError, match="smpl="):
        Human36M(h36m_root, joint_set="coco")


def test_h36m_detections_by_image_path(h36m_root):
    gt = Human36M(h36m_root, protocol=1)
    rows = {}
    for i, name in enumerate(gt.ids):
        kp = np.concatenate([gt.pixels[i].double().numpy() + 3.0, np.ones((17, 1))], 1)
        kp[5, 2] = 0.05  # below the threshold: not visible
        rows[f"/data/Human36M/images/{name}"] = kp  # the release keys by full path
    det = writers.detections_by_image(h36m_root / "absnet_output_on_testset.json", rows)
    data = Human36M(h36m_root, protocol=1, keypoints=det)
    assert torch.allclose(data.pixels[:, :5], gt.pixels[:, :5] + 3.0)
    assert not data.visible[:, 5].any() and data.visible[:, 6:].all()
    del rows[next(iter(rows))]
    writers.detections_by_image(det, rows)
    with pytest.raises(DatasetFileError, match=r"absnet_output_on_testset\.json has no detection"):
        Human36M(h36m_root, protocol=1, keypoints=det)


class Oracle(torch.nn.Module):
    """A 'model' that answers with the dataset's ground truth, found by its input, moved.

    ``joint_offset``: metres added to the predicted mesh joints; ``vertex_offset``: to the
    vertices (both after the ground truth is put back at the root).
    """

    def __init__(self, dataset, joint_offset=None, vertex_offset=None, scale=1.0):
        super().__init__()
        self.data = dataset
        self.joint_set, self.mesh_joint_set = dataset.joint_set, dataset.mesh_joint_set
        self.num_vertices = dataset.num_vertices or 10
        self.part = "hand" if dataset.is_hand else "body"
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.joint_offset, self.vertex_offset, self.scale = joint_offset, vertex_offset, scale

    def forward(self, keypoints_2d, visible=None, exact=None):
        flat = self.data.keypoints_2d.flatten(1)
        idx = torch.cdist(keypoints_2d.flatten(1), flat).argmin(1).tolist()
        b = self.data.__getitems__(idx)
        j = b["mesh_joints_3d"].double() * self.scale
        if self.joint_offset is not None:
            j = j + torch.as_tensor(self.joint_offset)
        v = b["vertices"].double() if "vertices" in b else torch.zeros(len(idx), 10, 3)
        if self.vertex_offset is not None:
            v = v + torch.as_tensor(self.vertex_offset)
        return {"joints_3d": b.get("joints_3d", j), "vertices": v, "mesh_joints_3d": j}


def test_h36m_row_scores_14_joints_after_the_pelvis(h36m_root):
    data = Human36M(h36m_root, protocol=2)
    exact = evaluate_benchmark(Oracle(data), data)
    assert exact["mpjpe"] < 1e-3 and exact["pa_mpjpe"] < 1e-3 and exact["samples"] == len(data)
    assert "mpvpe" not in exact  # no meshes without SMPL
    off = np.zeros((17, 3))
    off[3] = (0.014, 0, 0)  # the right ankle 14 mm off: 1 mm over the 14 scored joints
    assert evaluate_benchmark(Oracle(data, off), data)["mpjpe"] == pytest.approx(1.0, abs=1e-3)
    off = np.zeros((17, 3))
    off[7] = (0.05, 0.05, 0)  # the torso is not scored
    assert evaluate_benchmark(Oracle(data, off), data)["mpjpe"] < 1e-3
    off = np.zeros((17, 3))
    off[0] = (0, 0.02, 0)  # a pelvis 20 mm off moves all 14 after alignment
    res = evaluate_benchmark(Oracle(data, off), data)
    assert res["mpjpe"] == pytest.approx(20.0, abs=1e-3) and res["pa_mpjpe"] < 1e-3
    # a scaled skeleton: MPJPE grows, PA-MPJPE (similarity Procrustes) does not
    res = evaluate_benchmark(Oracle(data, scale=1.1), data)
    assert res["mpjpe"] > 10 and res["pa_mpjpe"] < 1e-3
    row = format_benchmark(res, data, "oracle")
    assert row.splitlines()[0] == "| model | dataset | samples | MPJPE | PA-MPJPE | PoseNet MPJPE |"
    assert row.splitlines()[2].startswith(f"| oracle | Human3.6M P2 | {len(data)} |")


def test_benchmark_refuses_another_joint_set(h36m_root):
    data = Human36M(h36m_root, protocol=1)
    oracle = Oracle(data)
    oracle.joint_set = get_joint_set("coco")
    with pytest.raises(ValueError, match=r"takes coco keypoints but Human3\.6M P1 test gives h36m"):
        evaluate_benchmark(oracle, data)


def _hands(n):
    """Hands in front of a camera: joints and a 778-vertex cloud around them (metres)."""
    xyz = np.zeros((n, 21, 3))
    verts = np.zeros((n, 778, 3))
    for i in range(n):
        base = np.array([RNG.uniform(-0.05, 0.05), RNG.uniform(-0.05, 0.05), RNG.uniform(0.4, 0.7)])
        fingers = np.stack([np.array([np.cos(a), np.sin(a), 0.2]) for a in np.linspace(0, 1.6, 5)])
        xyz[i, 0] = base
        for f in range(5):
            for k in range(4):
                xyz[i, 1 + 4 * f + k] = base + fingers[f] * 0.02 * (k + 1) + RNG.normal(0, 0.002, 3)
        verts[i] = xyz[i, RNG.integers(0, 21, 778)] + RNG.normal(0, 0.004, (778, 3))
    k = np.tile(np.array([[480.0, 0, 112.0], [0, 481.0, 110.0], [0, 0, 1]]), (n, 1, 1))
    k[:, 0, 0] += RNG.uniform(-50, 50, n)
    return k, xyz, verts


def test_freihand_projects_with_k_and_scores_the_published_row(tmp_path):
    k, xyz, verts = _hands(6)
    writers.freihand(tmp_path, k, xyz, verts)
    data = FreiHAND(tmp_path)
    assert len(data) == 6 and data.is_hand and data.num_vertices == 778
    uv = np.einsum("nij,nkj->nki", k, xyz)
    np.testing.assert_allclose(data.pixels.double().numpy(), uv[..., :2] / uv[..., 2:], atol=1e-3)
    s = data[2]
    np.testing.assert_allclose(s["mesh_joints_3d"].double().numpy(), xyz[2] - xyz[2, 0], atol=1e-6)
    np.testing.assert_allclose(s["vertices"].double().numpy(), verts[2] - xyz[2, 0], atol=1e-6)
    exact = evaluate_benchmark(Oracle(data), data)
    assert exact["pa_mpvpe"] < 1e-3 and exact["f5"] == 1.0 and exact["f15"] == 1.0
    # a shift of every vertex is removed by Procrustes: the row stays exact
    shifted = evaluate_benchmark(Oracle(data, vertex_offset=np.array([0.01, 0, 0])), data)
    assert shifted["pa_mpvpe"] < 1e-3 and shifted["f5"] == 1.0 and shifted["mpvpe"] > 9.99
    # an 8 mm jitter per coordinate is not
    jitter = RNG.normal(0, 0.008, (778, 3))
    res = evaluate_benchmark(Oracle(data, vertex_offset=jitter), data)
    assert 3.0 < res["pa_mpvpe"] < 15.0 and res["f5"] < 0.9 and res["f15"] > res["f5"]
    row = format_benchmark(res, data).splitlines()
    assert row[0].startswith("| model | dataset | samples | PA-MPVPE | PA-MPJPE | F@5 mm | F@15 mm")


def test_freihand_without_vertices_and_with_detections(tmp_path):
    k, xyz, _ = _hands(4)
    writers.freihand(tmp_path, k, xyz)
    data = FreiHAND(tmp_path)
    assert not data.has_vertices and data.protocol.metrics == ("pa_mpjpe",)
    det = np.concatenate([data.pixels.double().numpy() + 1.5, np.full((4, 21, 1), 0.9)], 2)
    path = writers.detections_by_id(
        tmp_path / "hrnet_output_on_testset.json", {i: det[i] for i in (3, 1, 0, 2)}, "image_id"
    )
    got = FreiHAND(tmp_path, keypoints=path)
    assert torch.allclose(got.pixels, data.pixels + 1.5, atol=1e-4)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps(det[:3].tolist()))
    with pytest.raises(DatasetFileError, match="3 detections for 4 samples"):
        FreiHAND(tmp_path, keypoints=plain)
    (tmp_path / "evaluation_xyz.json").write_text(json.dumps(xyz[:3].tolist()))
    with pytest.raises(DatasetFileError, match="different lengths"):
        FreiHAND(tmp_path)
    (tmp_path / "evaluation_K.json").unlink()
    with pytest.raises(DatasetFileError, match=r"evaluation_K\.json \(expected a JSON list"):
        FreiHAND(tmp_path)


def test_coco_people_to_coco19(tmp_path):
    def person(image, visible, **kw):
        kp = np.zeros((17, 3))
        kp[:, :2] = RNG.uniform(50, 400, (17, 2))
        kp[visible, 2] = 2
        return {"image": image, "keypoints": kp, **kw}

    people = [
        person(1, list(range(17)), id=5),
        person(1, [0, 1, 2], id=2),  # too few
        person(2, list(range(17)), id=3, iscrowd=1),  # a crowd
        person(2, [5, 6, 7, 8, 11, 13, 15], id=4),
    ]  # one hip only
    writers.coco(tmp_path, people)
    data = COCOKeypoints(tmp_path)
    assert data.ids == ["4", "5"] and data.image_files == ["000000000002.jpg", "000000000001.jpg"]
    full = people[0]["keypoints"]
    np.testing.assert_allclose(
        data.pixels[1, 17].double().numpy(), (full[11, :2] + full[12, :2]) / 2, atol=1e-4
    )
    assert data.visible[1].all()
    assert not data.visible[0, 17] and data.visible[0, 18]  # no pelvis with one hip; a neck
    assert data.pixels[0, 12].abs().sum() == 0  # unlabelled joints carry no coordinates
    s = data[0]
    assert set(s) == {"keypoints_2d", "visible", "keypoints_2d_pixels", "box", "exact"}
    assert not bool(s["exact"])  # annotations are not the exact joints
    assert s["keypoints_2d"][~s["visible"]].abs().sum() == 0
    with pytest.raises(ValueError, match="no 3D ground truth"):
        evaluate_benchmark(Oracle.__new__(Oracle), data)  # refused before the model runs
    people[0]["keypoints"] = people[0]["keypoints"][:16]
    writers.coco(tmp_path, people)
    with pytest.raises(DatasetFileError, match="48 keypoint numbers, expected 51"):
        COCOKeypoints(tmp_path)


def test_read_detections_layouts_and_errors(tmp_path):
    kp = RNG.uniform(0, 100, (2, 17, 3))
    kp[..., 2] = 0.8
    by_id = writers.detections_by_id(tmp_path / "d.json", {10: kp[0], 11: kp[1]}, "annotation_id")
    px, vis = read_detections(by_id, ["11", "10"], "coco", id_key="annotation_id")
    assert px.shape == (2, 19, 2) and vis.all()
    np.testing.assert_allclose(px[0, :17], kp[1, :, :2])
    np.testing.assert_allclose(px[1, 18], (kp[0, 5, :2] + kp[0, 6, :2]) / 2)  # neck
    with pytest.raises(DatasetFileError, match="annotation_id = 12"):
        read_detections(by_id, ["12"], "coco", id_key="annotation_id")
    px, _ = read_detections(by_id, ["10"], "h36m", id_key="annotation_id")  # taken as is
    np.testing.assert_allclose(px[0], kp[0, :, :2])
    with pytest.raises(DatasetFileError, match="has 17 joints; the hand input needs 21"):
        read_detections(by_id, ["10"], "hand", id_key="annotation_id")
    with pytest.raises(DatasetFileError, match="not found"):
        read_detections(tmp_path / "missing.json", ["1"], "coco")


def test_load_dataset_names_and_3dpw_needs_smpl(h36m_root, tmp_path):
    assert set(BENCHMARKS) == {"h36m-p1", "h36m-p2", "3dpw", "freihand", "coco"}
    assert load_dataset("h36m-p1", h36m_root, limit=2).name == "Human3.6M P1 test"
    with pytest.raises(ValueError, match="licensed SMPL files"):
        load_dataset("3dpw", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset 'mpii'"):
        load_dataset("mpii", tmp_path)


def test_with_missing_joints_gives_a_body29_model_coco_keypoints():
    from meshgraph.bodies import BODY29
    from meshgraph.datasets import KeypointDataset, with_missing_joints

    rng = np.random.default_rng(0)
    pixels = rng.uniform(50, 400, (3, 19, 2))
    visible = np.ones((3, 19), dtype=bool)
    visible[1, 4] = False
    mesh = rng.normal(size=(3, 17, 3)) + np.array([0, 0, 4.0])
    ds = KeypointDataset(name="toy", joint_set="coco", pixels=pixels, visible=visible,
                         joints_3d=rng.normal(size=(3, 19, 3)), mesh_joint_set="h36m",
                         mesh_joints_3d=mesh)  # fmt: skip
    wide = with_missing_joints(ds, "body29")
    assert wide.joint_set is BODY29 and len(wide) == 3 and ds.joint_set.name == "coco"
    a, b = ds.__getitems__([0, 1, 2]), wide.__getitems__([0, 1, 2])
    for key in ("keypoints_2d", "visible", "keypoints_2d_pixels"):
        torch.testing.assert_close(b[key][:, :19], a[key])
    torch.testing.assert_close(b["box"], a["box"])
    torch.testing.assert_close(b["mesh_joints_3d"], a["mesh_joints_3d"])
    assert not b["visible"][:, 19:].any() and not b["keypoints_2d"][:, 19:].any()
    # by hand: heels and toes at the ankles (15, 16), hand points at the wrists (9, 10)
    parents = [15, 16, 15, 16, 9, 10, 9, 10, 9, 10]
    torch.testing.assert_close(
        b["keypoints_2d_pixels"][:, 19:], a["keypoints_2d_pixels"][:, parents]
    )
    assert "joints_3d" not in b  # no 3D for the missing joints: no PoseNet MPJPE
    with pytest.raises(ValueError, match="does not extend"):
        with_missing_joints(ds, "h36m")
