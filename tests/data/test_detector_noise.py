"""Detector failures on 2D keypoints: missing joints, left/right swaps, per-joint offsets."""

from __future__ import annotations

import pytest
import torch

from meshgraph.bodies import COCO, HAND
from meshgraph.data.noise import DetectorNoise, detector_noise
from meshgraph.data.random import CounterRandom

OFF = {"drop": 0.0, "drop_limb": 0.0, "swap_limb": 0.0, "swap_all": 0.0, "offset": 0.0}


def _coco(b: int, seed: int = 0) -> torch.Tensor:
    """COCO-19 pixels whose pelvis and neck are the midpoints of hips and shoulders."""
    kp = 200 + 60 * torch.randn(b, 19, 2, generator=torch.Generator().manual_seed(seed))
    kp = kp.double()
    kp[:, 17] = 0.5 * (kp[:, 11] + kp[:, 12])
    kp[:, 18] = 0.5 * (kp[:, 5] + kp[:, 6])
    return kp


def _source(b: int, seed: int = 1) -> CounterRandom:
    return CounterRandom(seed, range(b), stream=2)


def test_nothing_switched_on_changes_nothing():
    kp = _coco(16)
    out, visible = detector_noise(kp, _source(16), "coco", DetectorNoise(**OFF))
    torch.testing.assert_close(out, kp, rtol=0, atol=1e-12)
    assert visible.dtype == torch.bool and bool(visible.all())


def test_swap_all_exchanges_every_left_right_label():
    kp = _coco(8)
    out, visible = detector_noise(kp, _source(8), COCO, DetectorNoise(**{**OFF, "swap_all": 1.0}))
    assert bool(visible.all())
    # by hand: COCO's left/right pairs (eyes, ears, shoulders, elbows, wrists, hips, knees,
    # ankles) change places; the nose stays; pelvis and neck are midpoints, so they stay too
    swapped = kp.clone()
    for a, b in ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)):
        swapped[:, [a, b]] = kp[:, [b, a]]
    torch.testing.assert_close(out, swapped, rtol=0, atol=1e-12)


# by hand, from COCO-19's skeleton rooted at the pelvis: a limb is a joint and everything
# beyond it; the pelvis goes with a hip and the neck with a shoulder (midpoints)
COCO_LIMBS = [
    {0, 1, 2, 3, 4}, {1, 3}, {2, 4}, {3}, {4},
    {5, 7, 9, 18}, {6, 8, 10, 18}, {7, 9}, {8, 10}, {9}, {10},
    {11, 13, 15, 17}, {12, 14, 16, 17}, {13, 15}, {14, 16}, {15}, {16},
]  # fmt: skip
# the left/right chains: a pair and the pairs beyond it
COCO_SWAPS = [
    {(1, 2), (3, 4)}, {(3, 4)}, {(5, 6), (7, 8), (9, 10)}, {(7, 8), (9, 10)}, {(9, 10)},
    {(11, 12), (13, 14), (15, 16)}, {(13, 14), (15, 16)}, {(15, 16)},
]  # fmt: skip


def test_a_dropped_limb_is_a_joint_and_everything_beyond_it():
    n = 400
    kp = _coco(n)
    params = DetectorNoise(**{**OFF, "drop_limb": 1.0}, min_visible=1)
    out, visible = detector_noise(kp, _source(n), "coco", params)
    torch.testing.assert_close(out, kp, rtol=0, atol=1e-12)  # coordinates stay
    seen = []
    for row in visible:
        missing = set(torch.nonzero(~row)[:, 0].tolist())
        assert missing in COCO_LIMBS, missing
        seen.append(frozenset(missing))
    assert len(set(seen)) == len(COCO_LIMBS)  # every limb gets its turn


def test_a_swapped_limb_exchanges_a_pair_and_the_pairs_beyond_it():
    n = 300
    kp = _coco(n)
    out, _ = detector_noise(kp, _source(n), "coco", DetectorNoise(**{**OFF, "swap_limb": 1.0}))
    seen = set()
    for i in range(n):
        pairs = set()
        for a, b in COCO.flip_pairs:
            if torch.equal(out[i, a], kp[i, b]) and torch.equal(out[i, b], kp[i, a]):
                pairs.add((a, b))
            else:  # a pair not swapped stays where it was
                assert torch.equal(out[i, [a, b]], kp[i, [a, b]])
        assert pairs in COCO_SWAPS, pairs
        seen.add(frozenset(pairs))
    assert len(seen) == len(COCO_SWAPS)


def test_hand_fingers_drop_from_the_knuckle_out():
    n = 300
    kp = 100 + 30 * torch.randn(n, 21, 2, dtype=torch.float64)
    params = DetectorNoise(**{**OFF, "drop_limb": 1.0, "swap_all": 1.0}, min_visible=1)
    out, visible = detector_noise(kp, _source(n), HAND, params)
    torch.testing.assert_close(out, kp, rtol=0, atol=0)  # a hand has no left/right pairs
    for row in visible:
        missing = sorted(torch.nonzero(~row)[:, 0].tolist())
        # Hand-21: finger f has joints 1 + 4 f .. 4 + 4 f, base to tip; the wrist never goes
        assert missing and 0 not in missing
        finger, first = (missing[0] - 1) // 4, (missing[0] - 1) % 4
        assert missing == list(range(missing[0], 5 + 4 * finger)), (missing, first)


def test_drop_rate_and_min_visible():
    n = 2000
    kp = _coco(n)
    _, visible = detector_noise(kp, _source(n), "coco", DetectorNoise(**{**OFF, "drop": 0.2}))
    rate = 1 - visible[:, :17].double().mean()
    assert abs(float(rate) - 0.2) < 0.02
    # pelvis and neck are seen only with both of their sources
    torch.testing.assert_close(visible[:, 17], visible[:, 11] & visible[:, 12])
    # everything dropped: too few joints, so the sample keeps them all
    _, all_gone = detector_noise(kp[:8], _source(8), "coco", DetectorNoise(**{**OFF, "drop": 1}))
    assert bool(all_gone.all())


def test_offsets_scale_with_the_box_and_are_largest_at_the_hips():
    n = 4000
    kp = _coco(n)
    kp[:, :, 1] *= 2  # a tall box: its larger side is the height
    out, _ = detector_noise(kp, _source(n), "coco", DetectorNoise(**{**OFF, "offset": 0.02}))
    size = (kp.amax(1) - kp.amin(1)).amax(1)
    rel = (out - kp) / size[:, None, None]
    std = rel[:, :17].std(dim=(0, 2))
    torch.testing.assert_close(std[0], torch.tensor(0.02, dtype=torch.float64), rtol=0.05, atol=0)
    torch.testing.assert_close(std[11], torch.tensor(0.04, dtype=torch.float64), rtol=0.05, atol=0)
    torch.testing.assert_close(std[5], torch.tensor(0.03, dtype=torch.float64), rtol=0.05, atol=0)
    torch.testing.assert_close(out[:, 17], 0.5 * (out[:, 11] + out[:, 12]))


def test_body29_hand_points_and_heels_scatter_further():
    from meshgraph.bodies import BODY29

    n = 4000
    extra = 200 + 60 * torch.randn(n, 10, 2, generator=torch.Generator().manual_seed(5))
    kp = torch.cat([_coco(n), extra.double()], 1)
    kp[:, :, 1] *= 2  # a tall box: its larger side is the height
    out, _ = detector_noise(kp, _source(n), "body29", DetectorNoise(**{**OFF, "offset": 0.01}))
    size = (kp.amax(1) - kp.amin(1)).amax(1)
    std = ((out - kp) / size[:, None, None]).std(dim=(0, 2))
    expected = {"nose": 0.01, "left_hip": 0.02, "left_ankle": 0.01, "left_big_toe": 0.01,
                "right_heel": 0.015, "left_index": 0.02, "right_pinky": 0.02,
                "left_thumb": 0.02}  # fmt: skip
    for name, value in expected.items():
        got = std[BODY29.index(name)]
        torch.testing.assert_close(got, torch.tensor(value, dtype=got.dtype), rtol=0.05, atol=0)
    # its first 19 joints scatter as COCO-19's do
    coco, _ = detector_noise(
        kp[:, :19], _source(n), "coco", DetectorNoise(**{**OFF, "offset": 0.01})
    )
    coco_size = (kp[:, :19].amax(1) - kp[:, :19].amin(1)).amax(1)  # its own, smaller box
    coco_std = ((coco - kp[:, :19]) / coco_size[:, None, None]).std(dim=(0, 2))
    torch.testing.assert_close(std[:19], coco_std, rtol=0.08, atol=0)


def test_offset_spread_draws_each_samples_offset_uniformly_around_the_mean():
    n, j = 6000, HAND.num_joints
    kp = 300 + 80 * torch.randn(n, j, 2, generator=torch.Generator().manual_seed(3)).double()
    size = (kp.amax(1) - kp.amin(1)).amax(1)
    fixed, _ = detector_noise(kp, _source(n), HAND, DetectorNoise(**{**OFF, "offset": 0.02}))
    params = DetectorNoise(**{**OFF, "offset": 0.02, "offset_spread": 1.0})
    spread, _ = detector_noise(kp, _source(n), HAND, params)

    def rms(out: torch.Tensor) -> torch.Tensor:  # per sample, over 2 J numbers, box-relative
        return ((out - kp) / size[:, None, None]).square().mean(dim=(1, 2)).sqrt()

    fixed_rms, spread_rms = rms(fixed), rms(spread)
    # the same Gaussian draws, each sample scaled by its own factor f in [0, 2]
    factor = spread_rms / fixed_rms
    assert float(factor.min()) >= 0 and float(factor.max()) <= 2 + 1e-9
    # uniform on [0, 2]: mean 1, quartiles 0.5 / 1.5, E[f^2] = 4/3 (hand-worked)
    assert abs(float(factor.mean()) - 1.0) < 0.03
    q = torch.quantile(factor, torch.tensor([0.25, 0.75], dtype=factor.dtype))
    torch.testing.assert_close(q, torch.tensor([0.5, 1.5], dtype=q.dtype), rtol=0, atol=0.05)
    overall = ((spread - kp) / size[:, None, None]).square().mean().sqrt()
    expected = torch.tensor(0.02 * (4 / 3) ** 0.5, dtype=overall.dtype)
    torch.testing.assert_close(overall, expected, rtol=0.03, atol=0)
    # half the spread: factors uniform on [0.5, 1.5], the same mean
    half = DetectorNoise(**{**OFF, "offset": 0.02, "offset_spread": 0.5})
    factor = rms(detector_noise(kp, _source(n), HAND, half)[0]) / fixed_rms
    assert float(factor.min()) >= 0.5 - 1e-9 and float(factor.max()) <= 1.5 + 1e-9
    assert float(factor.min()) < 0.52 and float(factor.max()) > 1.48
    assert abs(float(factor.mean()) - 1.0) < 0.02


def test_batches_match_one_sample_calls():
    kp = _coco(6)
    params = DetectorNoise(drop=0.3, drop_limb=0.5, swap_limb=0.5, swap_all=0.2, offset=0.02)
    out, vis = detector_noise(kp, CounterRandom(5, [3, 9, 4, 1, 0, 7], 2), "coco", params)
    for row, index in enumerate([3, 9, 4, 1, 0, 7]):
        one, one_vis = detector_noise(kp[row : row + 1], CounterRandom(5, [index], 2), "coco",
                                      params)  # fmt: skip
        torch.testing.assert_close(out[row : row + 1], one, rtol=0, atol=0)
        assert torch.equal(vis[row : row + 1], one_vis)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"drop": 1.5}, "drop must be a probability"),
        ({"swap_all": -0.1}, "swap_all must be a probability"),
        ({"offset": -0.01}, "offset must be in"),
        ({"min_visible": 0}, "min_visible must be a positive integer"),
        ({"offset_spread": 1.5}, "offset_spread must be in"),
    ],
)
def test_bad_parameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DetectorNoise(**kwargs)


def test_bad_keypoints_are_refused():
    with pytest.raises(ValueError, match=r"shape \(B, 19, 2\) for the coco joint set"):
        detector_noise(torch.zeros(2, 17, 2), _source(2), "coco")


def test_default_detector_noise_per_joint_set():
    from meshgraph.data.noise import default_detector_noise

    assert default_detector_noise("coco") == DetectorNoise()
    assert default_detector_noise("h36m") == DetectorNoise()
    hand = default_detector_noise(HAND)
    assert hand.offset == 0.04 and hand.drop == DetectorNoise().drop
    assert default_detector_noise("hand", drop=0.2) == DetectorNoise(offset=0.04, drop=0.2)
    with pytest.raises(ValueError, match="DetectorNoise has no field 'dropout'"):
        default_detector_noise("coco", dropout=0.1)
    with pytest.raises(ValueError, match="drop must be a probability"):
        default_detector_noise("coco", drop=2.0)


def test_body29_swaps_carry_the_feet_and_hands_with_their_limb():
    from meshgraph.bodies import BODY29

    n = 300
    kp = 200 + 60 * torch.randn(n, 29, 2, generator=torch.Generator().manual_seed(3))
    kp = kp.double()
    kp[:, 17] = 0.5 * (kp[:, 11] + kp[:, 12])
    kp[:, 18] = 0.5 * (kp[:, 5] + kp[:, 6])
    out, _ = detector_noise(kp, _source(n), BODY29, DetectorNoise(**{**OFF, "swap_limb": 1.0}))
    name = BODY29.names
    for i in range(n):
        swapped = {
            name[a][5:]
            for a, b in BODY29.flip_pairs
            if torch.equal(out[i, a], kp[i, b]) and torch.equal(out[i, b], kp[i, a])
        }
        # by hand: a swapped ankle takes its heel and toe along, a swapped wrist its hand
        if "ankle" in swapped:
            assert {"heel", "big_toe"} <= swapped, swapped
        if "wrist" in swapped:
            assert {"index", "pinky", "thumb"} <= swapped, swapped
    out, visible = detector_noise(
        kp, _source(n), "body29", DetectorNoise(**{**OFF, "swap_all": 1.0})
    )
    assert bool(visible.all())

    def other(m: str) -> str:
        if m.startswith("left_"):
            return "right_" + m[5:]
        return "left_" + m[6:] if m.startswith("right_") else m

    perm = [name.index(other(m)) for m in name]
    torch.testing.assert_close(out, kp[:, perm], rtol=0, atol=1e-12)
