"""The synthetic dataset on the real Anny models (skipped without anny)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("anny")

from meshgraph.bodies import COCO
from meshgraph.data.synthetic import SyntheticPoseMeshDataset, collate


def test_sample_contents_and_geometry(body):
    ds = SyntheticPoseMeshDataset(body, 50, joint_set="coco", seed=1)
    b = ds.__getitems__([0, 7, 13])
    assert b["keypoints_2d"].shape == (3, 19, 2)
    assert b["vertices"].shape == (3, 13718, 3)
    assert b["mesh_joints_3d"].shape == (3, 17, 3)
    # root-relative: the root joint is at the origin
    assert b["joints_3d"][:, COCO.root].abs().max() < 1e-6
    # the 2D ground truth is the pinhole projection of the 3D joints (camera frame)
    cam = b["joints_3d"].double() + b["root"].double()[:, None]
    uv = (
        cam[..., :2] / cam[..., 2:3] * b["focal"].double()[:, None]
        + b["principal"].double()[:, None]
    )
    torch.testing.assert_close(uv.float(), b["keypoints_2d_gt"], atol=1e-2, rtol=0)
    assert torch.all(cam[..., 2] > 0.5)  # in front of the camera
    # the joints are the regressor applied to the (root-relative, rotated) vertices
    reg = body.joint_regressor("coco")
    torch.testing.assert_close(torch.einsum("jv,bvc->bjc", reg, b["vertices"]), b["joints_3d"],
                               atol=1e-4, rtol=0)  # fmt: skip
    # the normalised input is z-scored per sample and axis
    kp = b["keypoints_2d"]
    torch.testing.assert_close(kp.mean(1), torch.zeros(3, 2), atol=1e-5, rtol=0)
    torch.testing.assert_close(kp.std(1, unbiased=False), torch.ones(3, 2), atol=1e-4, rtol=0)
    # detector noise moved the 2D joints, a few pixels typically
    shift = (b["keypoints_2d_pixels"] - b["keypoints_2d_gt"]).norm(dim=-1)
    assert shift.median() > 0 and shift.median() < 30


def test_deterministic_per_seed_and_index(body):
    ds = SyntheticPoseMeshDataset(body, 50, seed=3)
    single = ds[13]
    batch = ds.__getitems__([2, 13, 40])
    for k, v in single.items():
        torch.testing.assert_close(v, batch[k][1], atol=1e-5, rtol=1e-5, msg=k)
    again = SyntheticPoseMeshDataset(body, 50, seed=3)[13]
    for k, v in single.items():
        torch.testing.assert_close(v, again[k], atol=1e-5, rtol=1e-5, msg=k)
    other = SyntheticPoseMeshDataset(body, 50, seed=4)[13]
    assert not torch.allclose(other["pose"], single["pose"])
    # a new epoch draws new noise on the same geometry
    ds.set_epoch(1)
    later = ds[13]
    torch.testing.assert_close(later["vertices"], single["vertices"])
    assert not torch.equal(later["keypoints_2d_pixels"], single["keypoints_2d_pixels"])
    clean = SyntheticPoseMeshDataset(body, 50, seed=3, noise="none")[13]
    torch.testing.assert_close(clean["keypoints_2d_pixels"], clean["keypoints_2d_gt"])


def test_dataloader_batches(body):
    ds = SyntheticPoseMeshDataset(body, 12, joint_set="h36m", seed=0)
    loader = torch.utils.data.DataLoader(ds, batch_size=5, collate_fn=collate)
    batches = list(loader)
    assert [b["keypoints_2d"].shape[0] for b in batches] == [5, 5, 2]
    assert batches[0]["keypoints_2d"].shape == (5, 17, 2)
    torch.testing.assert_close(batches[1]["vertices"][0], ds[5]["vertices"], atol=1e-5, rtol=0)


def test_hand_dataset(hand):
    ds = SyntheticPoseMeshDataset(hand, 20, joint_set="hand", seed=0)
    b = ds.__getitems__(range(4))
    assert b["keypoints_2d"].shape == (4, 21, 2) and b["vertices"].shape == (4, 1609, 3)
    assert b["joints_3d"][:, 0].abs().max() < 1e-6  # wrist root
    size = (b["vertices"].amax(1) - b["vertices"].amin(1)).norm(dim=-1)
    assert torch.all((size > 0.1) & (size < 0.4))  # hand-sized meshes


def test_cache_roundtrip_corruption_and_config(body, tmp_path):
    ds = SyntheticPoseMeshDataset(body, 10, seed=2, cache_dir=tmp_path, shard_size=4)
    files = sorted(tmp_path.glob("synthetic-*.pt"))
    assert len(files) == 3 and not list(tmp_path.glob("*.tmp"))
    fresh = SyntheticPoseMeshDataset(body, 10, seed=2)
    for i in (0, 5, 9):
        a, b = ds[i], fresh[i]
        for k in a:
            torch.testing.assert_close(a[k], b[k], atol=1e-4, rtol=1e-4, msg=k)
    files[1].write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning, match="unusable"):
        SyntheticPoseMeshDataset(body, 10, seed=2, cache_dir=tmp_path, shard_size=4)
    assert torch.load(files[1], weights_only=True)["shard"] == 1  # rebuilt
    # a shard of another configuration under the expected name is refused and rebuilt
    other = SyntheticPoseMeshDataset(body, 10, seed=9, cache_dir=tmp_path, shard_size=4)
    assert other.config_hash() != ds.config_hash()
    data = torch.load(files[0], weights_only=True)
    data["config_hash"] = "0" * 16
    torch.save(data, files[0])
    with pytest.warns(RuntimeWarning, match="another configuration"):
        SyntheticPoseMeshDataset(body, 10, seed=2, cache_dir=tmp_path, shard_size=4)


@pytest.mark.parametrize("which", ["body", "hand"])
def test_without_the_mesh_the_rest_is_the_same(which, body, hand, tmp_path):
    """with_mesh=False leaves out the mesh keys and poses the regressor's vertices alone."""
    model, joint_set = (body, "coco") if which == "body" else (hand, "hand")
    ds = SyntheticPoseMeshDataset(model, 30, joint_set=joint_set, seed=4)
    full = ds.__getitems__([3, 17, 29])
    ds.with_mesh = False
    calls = []
    original = model.posed_vertices

    def spy(indices, *args, **kwargs):
        calls.append(len(indices))
        return original(indices, *args, **kwargs)

    model.posed_vertices = spy
    try:
        joints_only = ds.__getitems__([3, 17, 29])
    finally:
        del model.posed_vertices
    reg = model.joint_regressor(joint_set)
    assert calls == [int((reg.abs().sum(0) > 0).sum())] and calls[0] < model.num_vertices
    assert set(full) - set(joints_only) == {"vertices", "mesh_joints_3d"}
    for k, v in joints_only.items():
        # millimetre-scale pixels and metres: float rounding of another summation order
        torch.testing.assert_close(v, full[k], atol=2e-4, rtol=1e-5, msg=k)
    # the same from the on-disk cache, and back with the mesh
    cached = SyntheticPoseMeshDataset(model, 30, joint_set=joint_set, seed=4, cache_dir=tmp_path,
                                      shard_size=16, progress=False, with_mesh=False)  # fmt: skip
    assert set(cached.__getitems__([3, 17])) == set(joints_only)
    cached.with_mesh = True
    torch.testing.assert_close(cached.__getitems__([3])["vertices"], full["vertices"][:1],
                               atol=1e-4, rtol=0)  # fmt: skip


def test_bad_arguments(body):
    with pytest.raises(ValueError, match="not 'hand'"):
        SyntheticPoseMeshDataset(body, 10, joint_set="hand")
    with pytest.raises(ValueError, match="posefix"):
        SyntheticPoseMeshDataset(body, 10, joint_set="h36m", noise="posefix")
    with pytest.raises(ValueError, match="length"):
        SyntheticPoseMeshDataset(body, 0)
    with pytest.raises(ValueError, match="noise"):
        SyntheticPoseMeshDataset(body, 10, noise="salt")
    with pytest.raises(IndexError, match="out of range"):
        SyntheticPoseMeshDataset(body, 10)[10]
    with pytest.raises(TypeError, match="BodyModel"):
        SyntheticPoseMeshDataset(object(), 10)


def test_synthetic_example_runs(tmp_path, monkeypatch, anny_body):
    pytest.importorskip("matplotlib")
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "synthetic_data.py"
    monkeypatch.setattr(
        sys, "argv", ["synthetic_data.py", "--samples", "2", "--out", str(tmp_path)]
    )
    runpy.run_path(str(script), run_name="__main__")
    for name in ("canonical.png", "samples.png", "sample_000.obj", "throughput.json"):
        assert (tmp_path / name).stat().st_size > 0


def test_detector_failures_leave_the_rest_unchanged(body):
    from meshgraph.data.noise import DetectorNoise

    plain = SyntheticPoseMeshDataset(body, 64, seed=5, with_mesh=False)
    off = DetectorNoise(drop=0, drop_limb=0, swap_limb=0, swap_all=0, offset=0)
    quiet = SyntheticPoseMeshDataset(body, 64, seed=5, detector=off, with_mesh=False)
    idx = list(range(0, 64, 4))
    a, b = plain.__getitems__(idx), quiet.__getitems__(idx)
    # switched off, the detector changes nothing: the PoseFix noise draws come first
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)
    assert a["visible"].dtype == torch.bool and bool(a["visible"].all())
    loud = DetectorNoise(drop=0.3, drop_limb=0.5)
    noisy = SyntheticPoseMeshDataset(body, 64, seed=5, detector=loud, with_mesh=False)
    c = noisy.__getitems__(idx)
    assert not bool(c["visible"].all())
    for key in ("keypoints_2d_gt", "joints_3d", "pose", "camera_rotation"):
        torch.testing.assert_close(c[key], a[key], rtol=0, atol=0)  # the geometry stays
    # missing joints are 0 in the network input; the visible ones are z-scored
    assert not bool(c["keypoints_2d"][~c["visible"]].any())
    for row in range(len(idx)):
        seen = c["keypoints_2d"][row][c["visible"][row]]
        torch.testing.assert_close(seen.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    noisy.set_epoch(1)  # a new epoch, new failures
    assert not torch.equal(noisy.__getitems__(idx)["visible"], c["visible"])
    with pytest.raises(TypeError, match="detector must be a DetectorNoise"):
        SyntheticPoseMeshDataset(body, 4, detector={"drop": 0.1})


def test_drop_extra_hides_body29s_extra_joints_and_changes_nothing_else(body):
    """drop_extra: a sample's joints beyond COCO-19 all missing (a COCO-17 detector); every
    other number of the batch as without it, the network input that of the visible joints."""
    from meshgraph.bodies.joint_sets import BODY29, extra_joints
    from meshgraph.data.noise import DetectorNoise
    from meshgraph.geometry import normalize_keypoints

    extra = list(range(19, 29))
    assert extra_joints(BODY29) == extra  # the names after COCO-19's, by hand
    assert all(BODY29.names[j].split("_", 1)[0] in ("left", "right") for j in extra)
    kw = {"joint_set": "body29", "seed": 6, "with_mesh": False, "clean_fraction": 0.3,
          "detector": DetectorNoise(drop=0.1, drop_limb=0.3, swap_limb=0.1)}  # fmt: skip
    idx = list(range(300))
    a = SyntheticPoseMeshDataset(body, 300, **kw).__getitems__(idx)
    d = SyntheticPoseMeshDataset(body, 300, drop_extra=0.4, **kw)
    b = d.__getitems__(idx)
    for key in ("keypoints_2d_pixels", "keypoints_2d_gt", "exact"):
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)
    torch.testing.assert_close(b["visible"][:, :19], a["visible"][:, :19], rtol=0, atol=0)
    hidden = ~b["visible"][:, extra].any(1) & a["visible"][:, extra].any(1)
    kept = (b["visible"] == a["visible"]).all(1)
    assert bool((hidden | kept).all())
    assert 120 - 40 < int(hidden.sum()) < 120 + 40  # binomial(300, 0.4): sd 8.5
    assert bool(hidden[b["exact"]].any())  # exact keypoints lose them too (COCO-17 truth)
    norm, _ = normalize_keypoints(b["keypoints_2d_pixels"].double(), b["visible"])
    torch.testing.assert_close(b["keypoints_2d"], norm.float(), rtol=0, atol=1e-6)
    # exact 2D of every sample without them, as `meshgraph evaluate --drop-extra 1` gives
    c = SyntheticPoseMeshDataset(body, 8, joint_set="body29", seed=6, noise="none",
                                 drop_extra=1.0).__getitems__(list(range(8)))  # fmt: skip
    assert c["visible"].sum(1).tolist() == [19] * 8 and bool(c["exact"].all())
    # a sample left with fewer than 6 joints without them keeps them
    sparse = {"joint_set": "body29", "seed": 6, "with_mesh": False,
              "detector": DetectorNoise(drop=0.75, drop_limb=0.0, min_visible=4)}  # fmt: skip
    va = SyntheticPoseMeshDataset(body, 200, **sparse).__getitems__(idx[:200])["visible"]
    e = SyntheticPoseMeshDataset(body, 200, drop_extra=1.0, **sparse)
    ve = e.__getitems__(idx[:200])["visible"]
    few = va[:, :19].sum(1) < 6
    assert bool(few.any()) and bool((~few).any())
    torch.testing.assert_close(ve[few], va[few], rtol=0, atol=0)
    assert not bool(ve[~few][:, extra].any())
    with pytest.raises(ValueError, match="drop_extra must be a probability"):
        d.drop_extra = 1.5
    with pytest.raises(TypeError, match="drop_extra must be a number"):
        d.drop_extra = "all"
    with pytest.raises(ValueError, match="the coco joint set has no joints beyond COCO-19"):
        SyntheticPoseMeshDataset(body, 4, joint_set="coco", drop_extra=0.5)


def test_clean_fraction_keeps_exact_keypoints_and_leaves_the_others_as_they_were(body):
    from meshgraph.data.noise import DetectorNoise

    loud = DetectorNoise(drop=0.2, drop_limb=0.5, swap_limb=0.3)
    kw = {"seed": 6, "detector": loud, "with_mesh": False, "isotropic_input": True}
    noisy = SyntheticPoseMeshDataset(body, 400, **kw)
    mixed = SyntheticPoseMeshDataset(body, 400, clean_fraction=0.3, **kw)
    idx = list(range(400))
    a, b = noisy.__getitems__(idx), mixed.__getitems__(idx)
    exact = (b["keypoints_2d_pixels"] == b["keypoints_2d_gt"]).all(-1).all(-1)
    untouched = (b["keypoints_2d_pixels"] == a["keypoints_2d_pixels"]).all(-1).all(-1)
    # every sample is either exact (all joints visible) or the noisy one, numbers unchanged
    assert bool((exact | untouched).all())
    assert bool(b["visible"][exact].all())
    torch.testing.assert_close(b["visible"][~exact], a["visible"][~exact], rtol=0, atol=0)
    # no noisy sample of this set happens to be exact: the exact ones are the picked ones
    assert not bool((a["keypoints_2d_pixels"] == a["keypoints_2d_gt"]).all(-1).all(-1).any())
    # about 30 % picked: binomial(400, 0.3) has standard deviation 9.2
    assert 120 - 40 < int(exact.sum()) < 120 + 40
    # the network input of a picked sample is that of the exact keypoints
    plain = SyntheticPoseMeshDataset(body, 400, seed=6, noise="none", with_mesh=False,
                                     isotropic_input=True)  # fmt: skip
    rows = torch.nonzero(exact)[:, 0].tolist()[:8]
    torch.testing.assert_close(
        b["keypoints_2d"][rows], plain.__getitems__(rows)["keypoints_2d"], rtol=0, atol=1e-6
    )
    # a picked sample is picked by its own number: the same in any batch
    again = mixed.__getitems__(idx[::-1][:50])
    torch.testing.assert_close(
        again["keypoints_2d_pixels"], b["keypoints_2d_pixels"][idx[::-1][:50]]
    )
    mixed.clean_fraction = 1.0  # an attribute: every sample exact
    c = mixed.__getitems__(idx[:32])
    torch.testing.assert_close(c["keypoints_2d_pixels"], c["keypoints_2d_gt"], rtol=0, atol=0)
    assert bool(c["visible"].all())
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"clean_fraction must be a probability"):
            mixed.clean_fraction = bad
    with pytest.raises(TypeError, match="clean_fraction must be a number"):
        SyntheticPoseMeshDataset(body, 4, clean_fraction="half")
