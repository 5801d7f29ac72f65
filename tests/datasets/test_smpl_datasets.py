"""3DPW and Human3.6M's SMPL ground truth, on stand-in SMPL files (``tests/humanoid.py``).

The reference meshes come from smplx itself (not through meshgraph), the regressors are the
test's own random ones, and projections are worked out in NumPy.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from meshgraph.datasets import PW3D, Human36M
from meshgraph.training.evaluate import evaluate_benchmark
from tests import humanoid
from tests.datasets import writers
from tests.datasets.test_loaders import Oracle

smplx = pytest.importorskip("smplx")
RNG = np.random.default_rng(3)


@pytest.fixture(scope="module")
def smpl_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("smpl")
    path = humanoid.write(folder, "smpl")
    for g in ("MALE", "FEMALE"):
        shutil.copy(path, folder / f"SMPL_{g}.pkl")
    regs = {}
    for name, j in (("h36m", 17), ("coco", 19)):
        r = RNG.uniform(0, 1, (j, 6890)) * (RNG.uniform(0, 1, (j, 6890)) < 0.002)
        r[:, 0] += 1e-3
        regs[name] = folder / f"J_regressor_{name}.npy"
        np.save(regs[name], r / r.sum(1, keepdims=True))
    return folder, regs


def _smplx_mesh(folder, pose, shape, trans):
    model = smplx.SMPL(
        str(folder / "SMPL_NEUTRAL.pkl"),
        vertex_ids=dict(humanoid._FACE),
        use_feet_keypoints=False,
        use_hands=False,
        batch_size=1,
    )
    out = model(
        betas=torch.tensor(shape, dtype=torch.float32)[None],
        global_orient=torch.tensor(pose[:3], dtype=torch.float32)[None],
        body_pose=torch.tensor(pose[3:], dtype=torch.float32)[None],
        transl=torch.tensor(trans, dtype=torch.float32)[None],
    )
    return out.vertices[0].double().numpy()


def test_3dpw_meshes_joints_and_pixels(smpl_folder, tmp_path):
    folder, regs = smpl_folder
    people = []
    for n in range(5):
        pose = RNG.normal(0, 0.2, 72)
        pose[:3] = (np.pi, 0, 0)  # SMPL's y up turned to the camera's y down
        people.append(
            {
                "pose": pose,
                "shape": RNG.normal(0, 1, 10),
                "gender": ("male", "female")[n % 2],
                "trans": (RNG.uniform(-0.3, 0.3), 0.2, RNG.uniform(3, 5)),
                "focal": (1960.0, 1962.0),
                "princpt": (540.0, 960.0),
                "sequence": "downtown_walking_00",
                "frame": 10 - n,
                "person": n // 3,
            }
        )
    writers.pw3d(tmp_path, people)
    data = PW3D(tmp_path, folder, regressors={k: str(v) for k, v in regs.items()})
    # sorted by (person, image): person 0 frames 8, 9, 10, then person 1 frames 6, 7
    order = [2, 1, 0, 4, 3]
    assert data.ids == [str(1000 + i) for i in order]
    h36m, coco = np.load(regs["h36m"]), np.load(regs["coco"])
    for row, i in enumerate(order):
        p = people[i]
        verts = _smplx_mesh(folder, p["pose"], p["shape"], p["trans"])
        joints = h36m @ verts
        s = data[row]
        np.testing.assert_allclose(
            s["mesh_joints_3d"].double().numpy(), joints - joints[0], atol=2e-5
        )
        np.testing.assert_allclose(s["vertices"].double().numpy(), verts - joints[0], atol=2e-5)
        c = coco @ verts
        px = c[:, :2] / c[:, 2:] * np.array(p["focal"]) + np.array(p["princpt"])
        np.testing.assert_allclose(s["keypoints_2d_pixels"].double().numpy(), px, atol=0.05)
    res = evaluate_benchmark(Oracle(data), data)
    assert res["mpvpe"] < 1e-3 and res["mpjpe"] < 1e-3 and res["pa_mpjpe"] < 1e-3
    # detections: the release's darkpose file, COCO-17 by annotation id
    det = {
        1000 + i: np.concatenate([RNG.uniform(100, 900, (17, 2)), np.ones((17, 1))], 1)
        for i in range(5)
    }
    writers.detections_by_id(
        tmp_path / "data" / "darkpose_3dpw_testset_output.json", det, "annotation_id"
    )
    got = PW3D(tmp_path, folder, keypoints="detected", limit=2)
    np.testing.assert_allclose(got.pixels[0, :17].double().numpy(), det[1002][:, :2], atol=1e-4)
    # a missing gendered file is named
    (folder / "SMPL_FEMALE.pkl").rename(folder / "away.pkl")
    try:
        with pytest.raises(FileNotFoundError, match=r"SMPL_FEMALE\.pkl"):
            PW3D(tmp_path, folder)
        assert len(PW3D(tmp_path, folder, gender="neutral")) == 5
    finally:
        (folder / "away.pkl").rename(folder / "SMPL_FEMALE.pkl")


def test_h36m_smpl_mesh_lies_on_the_camera_frame_joints(smpl_folder, tmp_path):
    """The fitted mesh in world coordinates, moved by R, t, lands where the release puts it:
    the world-frame mesh (smplx with the world root orientation and translation) seen by the
    camera, R @ X + t."""
    from meshgraph.bodies import SMPLModel

    folder, regs = smpl_folder
    pose = RNG.normal(0, 0.2, 72)
    pose[:3] = (0.3, -0.2, 0.5)
    shape, trans = RNG.normal(0, 1, 10), np.array([0.2, -0.1, 0.9])
    world = _smplx_mesh(folder, pose, shape, trans)
    joints = np.load(regs["h36m"]) @ world * 1000  # the dataset's joints: the fit's, in mm
    cam = {
        "R": writers.rotation(0.7, -1.2),
        "t": np.array([50.0, 300.0, 5000.0]),
        "f": (1145.0, 1143.8),
        "c": (512.5, 515.4),
    }
    writers.h36m_subject(
        tmp_path,
        11,
        [{"action": 2, "subaction": 1, "cam": 1, "frame": 0, "joints": joints}],
        {1: cam},
        smpl={
            "2": {
                "1": {
                    "0": {"pose": pose.tolist(), "shape": shape.tolist(), "trans": trans.tolist()}
                }
            }
        },
    )
    smpl = SMPLModel("smpl", folder, regressors={k: str(v) for k, v in regs.items()})
    data = Human36M(tmp_path, protocol=1, smpl=smpl)
    expect = world @ cam["R"].T + cam["t"] / 1000
    root = (cam["R"] @ joints[0] + cam["t"]) / 1000
    np.testing.assert_allclose(data[0]["vertices"].double().numpy(), expect - root, atol=2e-5)
    coco = Human36M(tmp_path, protocol=1, smpl=smpl, joint_set="coco")
    c = np.load(regs["coco"]) @ expect
    px = c[:, :2] / c[:, 2:] * np.array(cam["f"]) + np.array(cam["c"])
    np.testing.assert_allclose(coco.pixels[0].double().numpy(), px, atol=0.05)
