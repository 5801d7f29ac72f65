from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from meshgraph.bodies import COCO
from meshgraph.data import (
    CameraRanges,
    gaussian_noise,
    look_at,
    normalize_keypoints,
    oks_distance,
    posefix_noise,
    project,
    sample_cameras,
)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_look_at_is_a_rotation_pointing_at_the_target():
    eye = torch.tensor([[3.0, -4.0, 1.0], [0.0, 0.0, 5.0]], dtype=torch.float64)
    target = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    r = look_at(eye, target)
    eye3 = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    torch.testing.assert_close(r @ r.transpose(1, 2), eye3)
    assert torch.allclose(torch.linalg.det(r), torch.ones(2, dtype=torch.float64))
    forward = torch.nn.functional.normalize(target - eye, dim=-1)
    torch.testing.assert_close(r[:, 2], forward)  # camera z along the view direction
    assert r[0, 1, 2] < 0  # image y (down) points against world up


def test_projection_matches_pinhole_by_hand():
    cams = sample_cameras(torch.zeros(4, 3), _gen())
    pts = torch.randn(4, 10, 3, dtype=torch.float64) * 0.3
    uv = project(pts, cams).numpy()
    for b in range(4):
        r, t = cams.rotation[b].numpy(), cams.translation[b].numpy()
        f, c = cams.focal[b].numpy(), cams.principal[b].numpy()
        for i in range(10):
            x = r @ pts[b, i].numpy() + t
            np.testing.assert_allclose(uv[b, i], f * x[:2] / x[2] + c, rtol=1e-12)


def test_cameras_respect_ranges_and_are_seeded():
    centres = torch.randn(64, 3, dtype=torch.float64)
    r = CameraRanges()
    cams = sample_cameras(centres, _gen(3), r)
    eye = -(cams.rotation.transpose(1, 2) @ cams.translation.unsqueeze(-1)).squeeze(-1)
    dist = (eye - centres).norm(dim=1)
    assert dist.min() >= r.distance[0] - 1e-9 and dist.max() <= r.distance[1] + 1e-9
    elev = torch.rad2deg(torch.asin((eye - centres)[:, 2] / dist))
    assert elev.min() >= r.elevation[0] - 1e-6 and elev.max() <= r.elevation[1] + 1e-6
    # the centre projects inside the image, near the principal point
    uv = project(centres[:, None], cams)[:, 0]
    torch.testing.assert_close(uv, cams.principal)
    again = sample_cameras(centres, _gen(3), r)
    assert torch.equal(again.rotation, cams.rotation)
    assert not torch.equal(sample_cameras(centres, _gen(4), r).rotation, cams.rotation)
    hand = sample_cameras(centres, _gen(3), CameraRanges.hand())
    hand_eye = -(hand.rotation.transpose(1, 2) @ hand.translation.unsqueeze(-1)).squeeze(-1)
    assert (hand_eye - centres).norm(dim=1).max() <= 1.0 + 1e-9
    assert len(cams[2:5]) == 3 and len(cams[0]) == 1


def test_points_behind_the_camera_are_refused():
    cams = sample_cameras(torch.zeros(1, 3), _gen())
    eye = -(cams.rotation[0].T @ cams.translation[0])
    behind = (2 * eye).view(1, 1, 3)  # beyond the camera, on the far side from the subject
    with pytest.raises(ValueError, match="behind"):
        project(behind, cams)


def test_normalization_by_hand():
    kp = torch.tensor([[[0.0, 0.0], [30.0, 0.0], [30.0, 80.0], [0.0, 80.0]]], dtype=torch.float64)
    out, box = normalize_keypoints(kp)
    # box: 30 x 80 -> width max(30, 80 * 0.75) = 60, height 80, enlarged 1.25 -> 75 x 100
    torch.testing.assert_close(
        box[0], torch.tensor([15 - 37.5, 40 - 50.0, 75.0, 100.0], dtype=torch.float64)
    )
    # z-scores: x in {-1, 1}, y in {-1, 1}
    torch.testing.assert_close(
        out[0], torch.tensor([[-1.0, -1], [1, -1], [1, 1], [-1, 1]], dtype=torch.float64)
    )
    # invariant to translation and scale of the input
    out2, _ = normalize_keypoints(kp * 3.7 + 100)
    torch.testing.assert_close(out2, out)


def test_isotropic_normalization_by_hand():
    """One spread for both axes: the pose keeps its width over its height."""
    kp = torch.tensor([[[0.0, 0.0], [30.0, 0.0], [30.0, 80.0], [0.0, 80.0]]], dtype=torch.float64)
    out, box = normalize_keypoints(kp, isotropic=True)
    # the same 75 x 100 box; relative x in {0.3, 0.7} (std 0.2), y in {0.1, 0.9} (std 0.4);
    # one spread sqrt((0.2^2 + 0.4^2) / 2) = sqrt(0.1)
    torch.testing.assert_close(box, normalize_keypoints(kp)[1])
    s = math.sqrt(0.1)
    expected = torch.tensor([[-0.2, -0.4], [0.2, -0.4], [0.2, 0.4], [-0.2, 0.4]]) / s
    torch.testing.assert_close(out[0], expected.double())
    # invariant to translation and scale; a mirror image negates x (both normalisations)
    torch.testing.assert_close(normalize_keypoints(kp * 3.7 + 100, isotropic=True)[0], out)
    rng = np.random.default_rng(0)
    pts = torch.from_numpy(rng.random((3, 17, 2)) * [200, 400])
    for iso in (False, True):
        a = normalize_keypoints(pts, isotropic=iso)[0]
        b = normalize_keypoints(pts * torch.tensor([-1.0, 1.0]), isotropic=iso)[0]
        torch.testing.assert_close(b, a * torch.tensor([-1.0, 1.0], dtype=a.dtype))
    # the spreads' ratio is the box-relative one (per axis: 1); the mean square spread is 1
    iso, axis = normalize_keypoints(pts, isotropic=True)[0], normalize_keypoints(pts)[0]
    rel = (pts - _box_of(pts)[:, None, :2]) / _box_of(pts)[:, None, 2:]
    torch.testing.assert_close(iso.std(1, correction=0)[:, 0] / iso.std(1, correction=0)[:, 1],
                               rel.std(1)[:, 0] / rel.std(1)[:, 1])  # fmt: skip
    torch.testing.assert_close(iso.pow(2).mean((1, 2)), torch.ones(3, dtype=iso.dtype))
    torch.testing.assert_close(axis.std(1, correction=0), torch.ones(3, 2, dtype=iso.dtype))
    # invisible joints: 0, and no influence
    vis = torch.ones(3, 17, dtype=torch.bool)
    vis[1, 4] = False
    moved = pts.clone()
    moved[1, 4] = 1e6
    out_v = normalize_keypoints(moved, vis, isotropic=True)[0]
    torch.testing.assert_close(out_v[[0, 2]], iso[[0, 2]])
    assert out_v[1, 4].abs().sum() == 0


def _box_of(pts):
    return normalize_keypoints(pts)[1]


def test_normalization_visibility_and_errors():
    kp = torch.randn(2, 17, 2) * 50 + 200
    vis = torch.ones(2, 17, dtype=torch.bool)
    vis[0, 3] = False
    moved = kp.clone()
    moved[0, 3] = 1e6  # an invisible joint does not change anything
    out, _ = normalize_keypoints(moved, vis)
    ref, _ = normalize_keypoints(kp, vis)
    torch.testing.assert_close(out, ref)
    assert out[0, 3].abs().sum() == 0
    with pytest.raises(ValueError, match="one point"):
        normalize_keypoints(torch.ones(1, 5, 2))
    with pytest.raises(ValueError, match="fewer than 2"):
        normalize_keypoints(kp, torch.zeros(2, 17, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        normalize_keypoints(torch.full((1, 3, 2), float("nan")))
    with pytest.raises(ValueError, match=r"\(B, J, 2\)"):
        normalize_keypoints(torch.zeros(3, 2))
    line = torch.stack([torch.zeros(5), torch.arange(5.0)], dim=1)[None]
    with pytest.raises(ValueError, match="degenerate"):
        normalize_keypoints(line)


def test_gaussian_noise_statistics_and_seed():
    kp = torch.zeros(4000, 3, 2, dtype=torch.float64)
    kp[:, 1] = 256.0  # a 256 x 256 box: std in reference pixels
    noisy = gaussian_noise(kp, _gen(1), std=(1.0, 2.0, 3.0))
    d = noisy - kp
    np.testing.assert_allclose(d.std(dim=(0, 2)).numpy(), [1.0, 2.0, 3.0], rtol=0.05)
    assert torch.equal(noisy, gaussian_noise(kp, _gen(1), std=(1.0, 2.0, 3.0)))
    half = gaussian_noise(kp, _gen(2), std=1.0, probability=0.5) - kp
    assert (half.abs().sum(-1) == 0).double().mean().item() == pytest.approx(0.5, abs=0.03)
    with pytest.raises(ValueError, match="std"):
        gaussian_noise(kp, _gen(), std=(1.0, 2.0))


def test_oks_distance_gives_the_oks():
    area = torch.tensor([5000.0])
    sigma = torch.tensor([0.079])
    for c in (0.85, 0.5, 0.1):
        d = oks_distance(area, sigma, c)
        oks = math.exp(-(d.item() ** 2) / (2 * area.item() * (2 * sigma.item()) ** 2))
        assert oks == pytest.approx(c)
    with pytest.raises(ValueError):
        oks_distance(area, sigma, 1.0)


def test_posefix_noise_categories():
    gen = _gen(5)
    b = 3000
    kp = torch.zeros(b, 19, 2, dtype=torch.float64)
    # joints far apart, so that an inverted joint lands far from its own position
    kp[:, :17, 0] = torch.arange(17, dtype=torch.float64) * 200
    kp[:, :17, 1] = torch.arange(17, dtype=torch.float64) * 100
    area = torch.full((b,), 10000.0, dtype=torch.float64)
    noisy = posefix_noise(kp, gen, area=area)
    # COCO's published sigmas (cocoeval), written out here independently of the code
    coco = [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07]
    coco += [0.87, 0.87, 0.89, 0.89]
    sigma = torch.tensor(coco, dtype=torch.float64) / 10
    d = (noisy[:, :17] - kp[:, :17]).norm(dim=-1)
    d85 = oks_distance(area[:1], sigma, 0.85)
    d50 = oks_distance(area[:1], sigma, 0.5)
    hips = d[:, 11]
    # hips: jitter 0.20 in [d85, d50); nose: jitter 0.10
    frac_hip_jitter = ((hips >= d85[11]) & (hips < d50[11])).double().mean().item()
    assert frac_hip_jitter == pytest.approx(0.20, abs=0.03)
    nose = d[:, 0]
    assert ((nose >= d85[0]) & (nose < d50[0])).double().mean().item() == pytest.approx(
        0.10, abs=0.02
    )
    # inversions land next to the counterpart (left wrist 9 <-> right wrist 10)
    near_other = (noisy[:, 9] - kp[:, 10]).norm(dim=-1) < d85[9]
    assert near_other.double().mean().item() == pytest.approx(0.03, abs=0.015)
    # pelvis and neck follow the noisy hips and shoulders
    torch.testing.assert_close(noisy[:, 17], 0.5 * (noisy[:, 11] + noisy[:, 12]))
    torch.testing.assert_close(noisy[:, 18], 0.5 * (noisy[:, 5] + noisy[:, 6]))
    assert torch.equal(noisy, posefix_noise(kp, _gen(5), area=area))
    off = posefix_noise(kp, _gen(5), area=area, scale=0.0)
    assert (off[:, :17] - kp[:, :17]).norm(dim=-1).max() < d85.max()  # only "good" offsets
    with pytest.raises(ValueError, match="COCO"):
        posefix_noise(kp, gen, joint_set="h36m")
    assert COCO.num_joints == 19


def test_per_row_generators_match_one_row_calls():
    """A batch with one generator per row gives each row the numbers of a one-row call."""
    from meshgraph.data.noise import draw_rows

    kp = 200 + 50 * torch.randn(4, 19, 2, dtype=torch.float64)
    centres = torch.randn(4, 3, dtype=torch.float64)

    def gens():
        return [torch.Generator().manual_seed(s) for s in (3, 1, 4, 1)]

    for fn in (
        lambda x, g: posefix_noise(x, g, "coco"),
        lambda x, g: gaussian_noise(x, g, std=2.0, probability=0.7),
    ):
        batched = fn(kp, gens())
        rows = torch.cat([fn(kp[i : i + 1], g) for i, g in enumerate(gens())])
        torch.testing.assert_close(batched, rows, rtol=0, atol=0)
    cams = sample_cameras(centres, gens())
    for i, g in enumerate(gens()):
        one = sample_cameras(centres[i : i + 1], g)
        torch.testing.assert_close(cams.rotation[i : i + 1], one.rotation, rtol=0, atol=0)
        torch.testing.assert_close(cams.principal[i : i + 1], one.principal, rtol=0, atol=0)
        torch.testing.assert_close(cams.focal[i : i + 1], one.focal, rtol=0, atol=0)
    with pytest.raises(ValueError, match="3 generators for a batch of 4"):
        draw_rows(gens()[:3], 4, lambda n, g: [torch.rand(n, generator=g)])


def test_posefix_noise_body29_extra_joints_err_like_their_ankle_or_wrist():
    b = 3000
    kp = torch.zeros(b, 29, 2, dtype=torch.float64)
    # joints far apart, so that an inverted joint lands far from its own position
    kp[:, :, 0] = torch.arange(29, dtype=torch.float64) * 200
    kp[:, :, 1] = torch.arange(29, dtype=torch.float64) * 100
    kp[:, 17] = 0.5 * (kp[:, 11] + kp[:, 12])
    kp[:, 18] = 0.5 * (kp[:, 5] + kp[:, 6])
    area = torch.full((b,), 10000.0, dtype=torch.float64)
    noisy = posefix_noise(kp, _gen(7), "body29", area=area)
    d = (noisy - kp).norm(dim=-1)
    # the ankle's and wrist's published COCO sigmas, written out here: 0.089, 0.062
    d85 = {
        "ankle": oks_distance(area[:1], torch.tensor([0.089], dtype=torch.float64), 0.85),
        "wrist": oks_distance(area[:1], torch.tensor([0.062], dtype=torch.float64), 0.85),
    }
    d50 = {
        "ankle": oks_distance(area[:1], torch.tensor([0.089], dtype=torch.float64), 0.5),
        "wrist": oks_distance(area[:1], torch.tensor([0.062], dtype=torch.float64), 0.5),
    }
    # heels and toes (19-22): the ankle's group, jitter 0.10; hand points (23-28): the
    # wrist's, jitter 0.15
    for joints, limb, rate in ((range(19, 23), "ankle", 0.10), (range(23, 29), "wrist", 0.15)):
        for j in joints:
            jit = ((d[:, j] >= d85[limb]) & (d[:, j] < d50[limb])).double().mean().item()
            assert jit == pytest.approx(rate, abs=0.025), (j, jit)
    # an inverted left heel (19) lands next to the right heel (20)
    near_other = (noisy[:, 19] - kp[:, 20]).norm(dim=-1) < d85["ankle"]
    assert near_other.double().mean().item() == pytest.approx(0.01, abs=0.008)
    torch.testing.assert_close(noisy[:, 17], 0.5 * (noisy[:, 11] + noisy[:, 12]))
    torch.testing.assert_close(noisy[:, 18], 0.5 * (noisy[:, 5] + noisy[:, 6]))
    off = posefix_noise(kp, _gen(7), "body29", area=area, scale=0.0)
    assert (off[:, 19:23] - kp[:, 19:23]).norm(dim=-1).max() < d85["ankle"]
    assert (off[:, 23:] - kp[:, 23:]).norm(dim=-1).max() < d85["wrist"]
    with pytest.raises(ValueError, match="29"):
        posefix_noise(kp[:, :19], _gen(7), "body29")


def test_posefix_joints_and_person_area_by_hand():
    from meshgraph.data.noise import person_area, posefix_joints

    own, like = posefix_joints("coco", 19)
    assert own == like == list(range(17))  # the derived pelvis and neck are not moved
    assert posefix_joints("coco", 17) == (list(range(17)), list(range(17)))
    own, like = posefix_joints("body29", 29)
    # heels and big toes like the ankles (15 left, 16 right), knuckles and thumbs the wrists
    assert own == list(range(17)) + list(range(19, 29))
    assert like[17:] == [15, 16, 15, 16, 9, 10, 9, 10, 9, 10]
    kp = torch.zeros(2, 19, 2, dtype=torch.float64)
    kp[0, :17] = torch.tensor([[float(i), 2.0 * i] for i in range(17)])  # box 16 x 32
    kp[0, 17:] = 1000.0  # beyond the first 17: not part of the box
    kp[1, :17, 0] = torch.arange(17.0)  # flat: the box's height counts as 1 pixel
    torch.testing.assert_close(person_area(kp), torch.tensor([0.53 * 16 * 32, 0.53 * 16 * 1],
                                                              dtype=torch.float64))  # fmt: skip
