"""SMPL, SMPL-H and MANO through smplx, on tiny synthetic model files in smplx's formats."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

pytest.importorskip("smplx")

from meshgraph.bodies.smpl import SMPLModel
from tests.helpers import assert_matmul_close

V = 60


def _common(rng, n_joints: int, n_pose: int, n_betas: int = 10, v: int = V) -> dict:
    parents = np.concatenate([[-1], rng.integers(0, np.arange(1, n_joints))])
    kintree = np.stack([parents, np.arange(n_joints)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # as in the released files (uint32 -1)
    weights = rng.random((v, n_joints))
    jreg = rng.random((n_joints, v))
    faces = np.stack([np.arange(v - 2), np.arange(1, v - 1), np.arange(2, v)], axis=1)
    return {
        "v_template": rng.standard_normal((v, 3)),
        "shapedirs": 0.01 * rng.standard_normal((v, 3, n_betas)),
        "posedirs": 0.001 * rng.standard_normal((v, 3, n_pose)),
        "J_regressor": jreg / jreg.sum(1, keepdims=True),
        "weights": weights / weights.sum(1, keepdims=True),
        "kintree_table": kintree,
        "f": faces.astype(np.int64),
    }


@pytest.fixture
def smpl_file(tmp_path):
    data = _common(np.random.default_rng(0), 24, 207)
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh)
    return path, data


@pytest.fixture
def mano_file(tmp_path):
    rng = np.random.default_rng(1)
    data = _common(rng, 16, 135, v=778)
    data["hands_components"] = np.linalg.qr(rng.standard_normal((45, 45)))[0]
    data["hands_mean"] = 0.1 * rng.standard_normal(45)
    path = tmp_path / "MANO_RIGHT.npz"
    np.savez(path, **data)
    return path, data


def test_smpl_loads_and_matches_numpy_blendshapes(smpl_file):
    path, data = smpl_file
    model = SMPLModel("smpl", path.parent)  # the folder, with smplx's file name
    assert model.num_vertices == V and model.topology.num_faces == V - 2
    betas = torch.randn(2, 10)
    verts = model(torch.zeros(2, 24, 3), betas)
    ref = data["v_template"][None] + np.einsum(
        "vcb,nb->nvc", data["shapedirs"], betas.double().numpy()
    )
    np.testing.assert_allclose(verts.numpy(), ref, atol=1e-5)


def test_smpl_global_orientation_rotates_about_the_root(smpl_file):
    path, data = smpl_file
    model = SMPLModel("smpl", path, dtype=torch.float64)
    rotvec = np.array([0.3, -0.5, 0.8])
    pose = torch.zeros(1, 24, 3, dtype=torch.float64)
    pose[0, 0] = torch.from_numpy(rotvec)
    verts = model(pose)[0].numpy()
    root = data["J_regressor"][0] @ data["v_template"]
    r = Rotation.from_rotvec(rotvec).as_matrix()
    ref = (data["v_template"] - root) @ r.T + root
    # smplx's Rodrigues adds 1e-8 to the rotation vector: agreement to about 1e-7
    np.testing.assert_allclose(verts, ref, atol=1e-6)
    shifted = model(pose, translation=torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64))
    np.testing.assert_allclose(shifted[0].numpy(), ref + np.array([1.0, 2.0, 3.0]), atol=1e-6)


@pytest.fixture
def smplh_file(tmp_path):
    rng = np.random.default_rng(3)
    data = _common(rng, 52, 459, n_betas=16)
    for side in ("l", "r"):
        data[f"hands_components{side}"] = np.linalg.qr(rng.standard_normal((45, 45)))[0]
        data[f"hands_mean{side}"] = 0.1 * rng.standard_normal(45)
    path = tmp_path / "SMPLH_FEMALE.npz"
    np.savez(path, **data)
    return path, data


def test_smplh_npz_loads_and_poses_hands(smplh_file):
    path, data = smplh_file
    model = SMPLModel("smplh", path.parent, gender="female", dtype=torch.float64)
    assert model.num_pose_joints == 52 and model.num_vertices == V
    flat = model(torch.zeros(1, 52, 3, dtype=torch.float64))
    np.testing.assert_allclose(flat[0].numpy(), data["v_template"], atol=1e-10)
    for hand in (slice(22, 37), slice(37, 52)):  # left, then right hand joints
        pose = torch.zeros(1, 52, 3, dtype=torch.float64)
        pose[0, hand, 0] = 0.4
        assert not torch.allclose(model(pose), flat)


def test_mano_npz_hand_joints(mano_file):
    path, data = mano_file
    model = SMPLModel("mano", path, dtype=torch.float64)
    assert model.joint_set_names == ("hand",)
    flat = model(torch.zeros(1, 16, 3, dtype=torch.float64))  # zero pose = flat hand
    np.testing.assert_allclose(flat[0].numpy(), data["v_template"], atol=1e-10)
    reg = model.joint_regressor("hand").numpy()
    assert reg.shape == (21, 778)
    np.testing.assert_allclose(reg[0], data["J_regressor"][0])
    np.testing.assert_allclose(reg[1], data["J_regressor"][13])  # thumb base
    np.testing.assert_allclose(reg[5], data["J_regressor"][1])  # index base
    assert reg[4, 744] == 1.0 and reg[8, 320] == 1.0  # thumb and index tips
    np.testing.assert_allclose(reg.sum(1), 1.0)
    curled = torch.zeros(1, 16, 3, dtype=torch.float64)
    curled[0, 1:, 2] = 0.5
    assert not torch.allclose(model(curled), flat)


def test_regressors_for_smpl(smpl_file, tmp_path):
    path, _ = smpl_file
    reg = np.random.default_rng(2).random((17, V))
    np.save(tmp_path / "h36m.npy", reg)
    model = SMPLModel("smpl", path, regressors={"h36m": tmp_path / "h36m.npy"})
    assert model.joint_set_names == ("h36m",)
    verts = model(torch.zeros(1, 24, 3))
    joints = model.regress_joints(verts, "h36m")
    # float32 product against float64: the tolerance follows the summed terms (|reg| @ |v|)
    assert_matmul_close(joints[0].numpy(), reg, verts[0].double().numpy(), eps=2.0**-24)
    with pytest.raises(ValueError, match="no regressor for joint set 'coco'"):
        model.joint_regressor("coco")
    with pytest.raises(ValueError, match=r"\(17, 60\)"):
        SMPLModel("smpl", path, regressors={"h36m": reg[:, :10]})


def test_missing_file_says_what_and_where(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"SMPL_MALE\.pkl.*smpl\.is\.tue\.mpg\.de"):
        SMPLModel("smpl", tmp_path, gender="male")
    with pytest.raises(FileNotFoundError, match=r"MANO_LEFT\.pkl.*mano\.is\.tue\.mpg\.de"):
        SMPLModel("mano", tmp_path, is_rhand=False)
    with pytest.raises(ValueError, match="kind"):
        SMPLModel("smplx", tmp_path)


def test_bad_parameters(smpl_file):
    path, _ = smpl_file
    model = SMPLModel("smpl", path)
    with pytest.raises(ValueError, match=r"pose must have shape \(B, 24, 3\)"):
        model(torch.zeros(1, 23, 3))
    with pytest.raises(ValueError, match="NaN"):
        model(torch.zeros(1, 24, 3), torch.full((1, 10), float("nan")))


def test_rig_of_smpl_files(smpl_file, mano_file):
    path, data = smpl_file
    model = SMPLModel("smpl", path, dtype=torch.float64)
    assert model.num_bones == len(model.bone_labels) == 24
    assert model.bone_labels[0] == "pelvis" and model.bone_labels[23] == "right_hand"
    parents = data["kintree_table"][0].astype(np.int64)
    assert model.bone_parents == [-1, *parents[1:].tolist()]
    ref = data["J_regressor"] @ data["v_template"]
    np.testing.assert_allclose(model.rest_joints().numpy(), ref, atol=1e-6)
    assert not model.is_hand and model.side is None
    # SMPL is y-up: its up axis becomes meshgraph's z, its forward axis (+z) becomes -y
    w = model.world_rotation.numpy()
    np.testing.assert_allclose(w @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(w @ [0.0, 0.0, 1.0], [0.0, -1.0, 0.0])
    assert model.joint_set_names == ()  # not SMPL's 6,890 vertices: no built-in body sets
    mano = SMPLModel("mano", mano_file[0], is_rhand=True)
    assert mano.is_hand and mano.side == "R" and mano.bone_labels[0] == "right_wrist"
    np.testing.assert_array_equal(mano.world_rotation.numpy(), np.eye(3))


def test_posed_vertices_default_is_the_whole_mesh_indexed(smpl_file):
    """The base class's posed_vertices (SMPL poses the whole mesh, then indexes)."""
    path, _ = smpl_file
    model = SMPLModel("smpl", path.parent)
    pose = 0.3 * torch.randn(2, 24, 3)
    betas = torch.randn(2, 10)
    ids = torch.tensor([5, 0, V - 1, 5])
    out = model.posed_vertices(ids, pose, betas)
    np.testing.assert_array_equal(out.numpy(), model(pose, betas)[:, ids].numpy())
    with pytest.raises(ValueError, match=rf"\[0, {V}\)"):
        model.posed_vertices(torch.tensor([V]), pose)
