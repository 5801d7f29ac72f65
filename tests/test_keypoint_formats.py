"""Keypoint layouts of other detectors -> COCO-19 / Hand-21, and keypoint files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from meshgraph.keypoint_formats import mediapipe_hand_side, read_keypoints, to_body29, to_coco19

# COCO-17 order: nose, l/r eye, l/r ear, l/r shoulder, l/r elbow, l/r wrist, l/r hip, l/r knee,
# l/r ankle. Where each lies in the other layouts, written out by hand from their docs.
BLAZEPOSE_FOR_COCO17 = [0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28]
BODY25_FOR_COCO17 = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
COCO18_FOR_COCO17 = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]


def _labelled(joints: int) -> np.ndarray:
    """Joint i at (i, 100 + i) with confidence 0.5 + i / 100: the output says where it came from."""
    i = np.arange(joints, dtype=np.float64)
    return np.stack([i, 100 + i, 0.5 + i / 100], 1)


@pytest.mark.parametrize(
    "source, joints, picks",
    [
        ("blazepose", 33, BLAZEPOSE_FOR_COCO17),
        ("openpose_body25", 25, BODY25_FOR_COCO17),
        ("openpose_coco18", 18, COCO18_FOR_COCO17),
        ("coco17", 17, list(range(17))),
    ],
)
def test_layouts_map_to_coco17_then_pelvis_and_neck(source, joints, picks):
    kp = _labelled(joints)
    out = to_coco19(kp, source)
    assert out.shape == (19, 3)
    np.testing.assert_array_equal(out[:17], kp[picks])
    # pelvis = mid-hips, neck = mid-shoulders, each with the lower confidence of the two
    lh, rh, ls, rs = (kp[picks[k]] for k in (11, 12, 5, 6))
    np.testing.assert_allclose(
        out[17], [(lh[0] + rh[0]) / 2, (lh[1] + rh[1]) / 2, min(lh[2], rh[2])]
    )
    np.testing.assert_allclose(
        out[18], [(ls[0] + rs[0]) / 2, (ls[1] + rs[1]) / 2, min(ls[2], rs[2])]
    )
    # the layout is recognised from the joint count alone
    np.testing.assert_array_equal(to_coco19(kp), out)


def test_openpose_neck_and_midhip_are_not_used():
    kp = _labelled(25)
    kp[1] = (999, 999, 1)  # OpenPose's own neck
    kp[8] = (-999, -999, 1)  # MidHip
    out = to_coco19(kp, "openpose_body25")
    assert np.abs(out[:, :2]).max() < 200


def test_coco19_passes_through_and_batches_and_confidence_defaults_to_one():
    kp = _labelled(19)
    np.testing.assert_array_equal(to_coco19(kp, "coco19"), kp)
    batch = np.stack([_labelled(17)[:, :2], _labelled(17)[:, :2] * 2])  # no confidences
    out = to_coco19(batch)
    assert out.shape == (2, 19, 3)
    np.testing.assert_array_equal(out[..., 2], 1.0)
    np.testing.assert_allclose(out[1, :17, :2], 2 * _labelled(17)[:, :2])


def test_missing_joint_keeps_confidence_zero_in_midpoints():
    kp = _labelled(25)
    kp[9] = 0  # OpenPose writes an undetected joint as 0, 0, 0 (right hip)
    out = to_coco19(kp, "openpose_body25")
    assert out[12, 2] == 0 and out[17, 2] == 0  # right hip and pelvis not visible
    assert out[18, 2] > 0


@pytest.mark.parametrize(
    "kp, source, match",
    [
        (np.zeros((20, 3)), None, "cannot tell the keypoint layout of 20"),
        (np.zeros((17, 3)), "blazepose", "has 33 joints, got 17"),
        (np.zeros((17, 3)), "alphapose", "unknown keypoint layout"),
        (np.zeros((17, 4)), None, r"\(J, 2\|3\)"),
        (np.zeros(17), None, r"\(J, 2\|3\)"),
        ([["a", "b"]], None, "must be real numbers"),
        ([[1, 2], [3]], None, "must be real numbers"),
        (np.ones((17, 2), complex), None, "got dtype complex128"),
    ],
)
def test_to_coco19_errors(kp, source, match):
    with pytest.raises(ValueError, match=match):
        to_coco19(kp, source)


def test_mediapipe_handedness_is_mirrored():
    assert mediapipe_hand_side("Left") == "right"
    assert mediapipe_hand_side("Right") == "left"
    assert mediapipe_hand_side("Right", mirrored_image=True) == "right"
    with pytest.raises(ValueError, match="'Left' or 'Right'"):
        mediapipe_hand_side("up")


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_read_openpose_body25_file(tmp_path):
    kp = _labelled(25)
    doc = {
        "version": 1.3,
        "people": [
            {"person_id": [-1], "pose_keypoints_2d": kp.ravel().tolist(), "face_keypoints_2d": []},
            {"person_id": [-1], "pose_keypoints_2d": (kp * 2).ravel().tolist()},
        ],
    }
    out = read_keypoints(_write(tmp_path / "op.json", doc))
    assert out.shape == (2, 19, 3)
    np.testing.assert_array_equal(out[0, :17], kp[BODY25_FOR_COCO17])
    np.testing.assert_array_equal(out[1, :17], (kp * 2)[BODY25_FOR_COCO17])


def test_read_openpose_hands(tmp_path):
    right, left = _labelled(21), _labelled(21) + 5
    doc = {"people": [{"pose_keypoints_2d": [], "hand_left_keypoints_2d": left.ravel().tolist(),
                       "hand_right_keypoints_2d": right.ravel().tolist()}]}  # fmt: skip
    np.testing.assert_array_equal(
        read_keypoints(_write(tmp_path / "h.json", doc), "hand")[0], right
    )
    doc["people"][0]["hand_right_keypoints_2d"] = []
    np.testing.assert_array_equal(read_keypoints(_write(tmp_path / "l.json", doc), "hand")[0], left)


def test_read_coco_annotations_with_visibility_flags(tmp_path):
    flat = np.zeros((17, 3))
    flat[:, :2] = _labelled(17)[:, :2]
    flat[:, 2] = 2
    flat[3, 2] = 0  # not labelled
    flat[4, 2] = 1  # labelled, hidden: still a position
    annotation = {"image_id": 1, "num_keypoints": 16, "keypoints": flat.ravel().tolist()}
    doc = {"images": [{"id": 1}], "annotations": [annotation]}
    out = read_keypoints(_write(tmp_path / "coco.json", doc))[0]
    assert out[3, 2] == 0 and out[4, 2] == 1 and out[0, 2] == 1
    np.testing.assert_array_equal(out[:17, :2], flat[:, :2])


def test_read_mmpose_and_rtmlib_predictions(tmp_path):
    xy = _labelled(17)[:, :2]
    scores = np.linspace(0.2, 0.9, 17)
    inst = {"keypoints": xy.tolist(), "keypoint_scores": scores.tolist(), "bbox": [[0, 0, 9, 9]]}
    for doc in ([inst], {"meta_info": {}, "instance_info": [inst, inst]}):
        out = read_keypoints(_write(tmp_path / "mm.json", doc))
        assert out.shape[1:] == (19, 3)
        np.testing.assert_array_equal(out[0, :17, :2], xy)
        np.testing.assert_allclose(out[0, :17, 2], scores)


def test_read_own_formats_and_npy(tmp_path):
    kp = _labelled(19)
    for data in (kp.tolist(), {"keypoints": kp.tolist()}, kp.ravel().tolist()):
        np.testing.assert_array_equal(read_keypoints(_write(tmp_path / "k.json", data))[0], kp)
    np.save(tmp_path / "k.npy", kp[:, :2])
    out = read_keypoints(tmp_path / "k.npy")
    np.testing.assert_array_equal(out[0, :, :2], kp[:, :2])
    np.testing.assert_array_equal(out[0, :, 2], 1.0)
    # a BlazePose export named as such
    np.testing.assert_array_equal(
        read_keypoints(_write(tmp_path / "b.json", {"keypoints": _labelled(33).tolist()}))[0, :17],
        _labelled(33)[BLAZEPOSE_FOR_COCO17],
    )
    h = read_keypoints(_write(tmp_path / "h36m.json", _labelled(17).tolist()), "h36m")
    assert h.shape == (1, 17, 3)


MMPOSE_PERSON = {"keypoints": [[0, 0]] * 17, "keypoint_scores": [1] * 17}


@pytest.mark.parametrize(
    "content, joint_set, match",
    [
        ("{not json", "coco", "is not a JSON keypoint file"),
        (json.dumps({"people": []}), "coco", "holds no person"),
        (json.dumps({"foo": 1}), "coco", "no 'keypoints', 'annotations'"),
        (json.dumps([{"kp": 1}]), "coco", "expected objects with a 'keypoints' key"),
        (json.dumps({"people": [{"pose_keypoints_2d": [0.0] * 30}]}), "coco", "BODY_25 or COCO-18"),
        (json.dumps(np.zeros((19, 3)).tolist()), "hand", "are 21 joints, got 19"),
        (json.dumps(np.zeros((20, 3)).tolist()), "coco", "cannot tell the keypoint layout"),
        (
            json.dumps([{"keypoints": [[0, 0]] * 17, "keypoint_scores": [1] * 3}]),
            "coco",
            "3 keypoint scores for 17",
        ),
        (  # mmpose's --save-predictions output for a video: frames of instances
            json.dumps({"instance_info": [{"frame_id": 1, "instances": [MMPOSE_PERSON]}]}),
            "coco",
            r"an mmpose video file \(1 frames of 'instances'\).*read_keypoint_frames",
        ),
        (  # the inferencer's video file (pred_out_dir): a list of frames
            json.dumps([{"frame_id": 0, "instances": [MMPOSE_PERSON]}] * 2),
            "coco",
            r"an mmpose video file \(2 frames of 'instances'\).*read_keypoint_frames",
        ),
        (json.dumps([]), "coco", "holds no person"),
    ],
)
def test_read_keypoints_errors_name_the_file(tmp_path, content, joint_set, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=match) as err:
        read_keypoints(path, joint_set)
    assert str(path) in str(err.value)


def test_read_keypoints_missing_file_and_suffix(tmp_path):
    with pytest.raises(FileNotFoundError, match="no keypoint file"):
        read_keypoints(tmp_path / "none.json")
    (tmp_path / "k.txt").write_text("1 2")
    with pytest.raises(ValueError, match=r"\.json or \.npy"):
        read_keypoints(tmp_path / "k.txt")


def _tiny_coco_model(path):
    """A small untrained COCO-19 model on an icosphere, saved to ``path``."""
    import torch

    from meshgraph.generators import icosphere
    from meshgraph.models import Pose2Mesh, Pose2MeshConfig

    mesh = icosphere(2)
    reg = torch.rand(17, mesh.num_vertices, generator=torch.Generator().manual_seed(0))
    cfg = Pose2MeshConfig(joint_set="coco", num_levels=3, posenet_width=16, coarse_channels=4,
                          decoder_channels=(4, 4, 4))  # fmt: skip
    model = Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True)).eval()
    model.save(path)
    return model


def test_cli_predict_skips_a_person_it_cannot_take(tmp_path, capsys):
    """A COCO file whose second person has no keypoint (num_keypoints 0): the others are
    predicted, each as alone, and a warning names the one skipped."""
    import torch

    from meshgraph.cli import main
    from meshgraph.io import load_mesh

    model = _tiny_coco_model(tmp_path / "m.pt")
    rng = np.random.default_rng(4)
    people = np.concatenate([rng.random((3, 17, 2)) * [400, 600], np.full((3, 17, 1), 2.0)], -1)
    people[1] = 0.0  # an annotation without keypoints
    doc = {"annotations": [{"image_id": 1, "keypoints": p.reshape(-1).tolist()} for p in people]}
    (tmp_path / "coco.json").write_text(json.dumps(doc))
    out = tmp_path / "pred"
    args = ["predict", str(tmp_path / "m.pt"), str(tmp_path / "coco.json"), "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err  # the command prints each warning as one line
    assert "coco.json: person 1 skipped: too few visible joints: 0" in err
    assert "person 0" not in err and "person 2" not in err
    assert sorted(f.name for f in out.glob("mesh_*.obj")) == ["mesh_000.obj", "mesh_002.obj"]
    assert json.loads((out / "camera.json").read_text())["people"] == [0, 2]
    for person in (0, 2):
        coco19 = read_keypoints(tmp_path / "coco.json", "coco")[person]
        alone = model.predict(torch.from_numpy(coco19)).vertices[0]
        verts, _ = load_mesh(out / f"mesh_{person:03d}.obj")
        np.testing.assert_allclose(verts, alone.numpy(), atol=1e-5)
    # nobody predictable: an error; one person who cannot be taken: the reason, as before
    doc["annotations"] = doc["annotations"][1:2] * 2
    (tmp_path / "none.json").write_text(json.dumps(doc))
    args[2] = str(tmp_path / "none.json")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "person 0 skipped" in err and "person 1 skipped" in err
    assert "none.json: no person in the file can be predicted" in err
    doc["annotations"] = doc["annotations"][:1]
    (tmp_path / "one.json").write_text(json.dumps(doc))
    args[2] = str(tmp_path / "one.json")
    assert main(args) == 2
    assert "one.json: too few visible joints: 0" in capsys.readouterr().err


def test_cli_predict_reads_openpose_people_as_a_batch(tmp_path):
    """`meshgraph predict` on an OpenPose file = predicting each person's COCO-19 by hand."""
    import torch

    from meshgraph.cli import main

    model = _tiny_coco_model(tmp_path / "m.pt")
    rng = np.random.default_rng(3)
    people = rng.random((2, 25, 3)) * [400, 600, 1]
    people[..., 2] = 0.5 + 0.5 * people[..., 2]
    doc = {"people": [{"pose_keypoints_2d": p.reshape(-1).tolist()} for p in people]}
    (tmp_path / "op.json").write_text(json.dumps(doc))
    out = tmp_path / "pred"
    args = ["predict", str(tmp_path / "m.pt"), str(tmp_path / "op.json"), "--out", str(out)]
    assert main([*args, "--layout", "openpose_body25"]) == 0
    # BODY_25 -> COCO-17 by hand: nose, eyes, ears, then shoulders to ankles, left before right
    order = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
    coco = people[:, order]

    def mid(a, b):
        xy = (coco[:, a, :2] + coco[:, b, :2]) / 2
        return np.concatenate([xy, np.minimum(coco[:, a, 2:], coco[:, b, 2:])], -1)

    coco19 = np.concatenate([coco, mid(11, 12)[:, None], mid(5, 6)[:, None]], 1)
    expected = model.predict(torch.from_numpy(coco19)).vertices
    for b in range(2):
        lines = (out / f"mesh_{b:03d}.obj").read_text().splitlines()
        verts = np.array([[float(v) for v in ln.split()[1:4]] for ln in lines if ln[:2] == "v "])
        np.testing.assert_allclose(verts, expected[b].numpy(), atol=1e-5)
    # an 18-joint OpenPose COCO file named as BODY_25 is refused
    doc = {"people": [{"pose_keypoints_2d": people[0, :18].reshape(-1).tolist()}]}
    (tmp_path / "op18.json").write_text(json.dumps(doc))
    args[2] = str(tmp_path / "op18.json")
    assert main([*args, "--layout", "openpose_body25"]) == 2


# Body-29's ten extra joints (left, right: heel, big toe, index knuckle, pinky knuckle, thumb),
# where each lies in the layouts that have it, written out by hand from their docs; None: the
# layout lacks it.
BODY29_EXTRA = {
    "blazepose": [29, 30, 31, 32, 19, 20, 17, 18, 21, 22],
    "openpose_body25": [21, 24, 19, 22, None, None, None, None, None, None],
    "halpe26": [24, 25, 20, 21, None, None, None, None, None, None],
    # COCO-WholeBody: feet 17-22, left hand 91-111, right hand 112-132 (Hand-21 order)
    "coco_wholebody": [19, 22, 17, 20, 96, 117, 108, 129, 93, 114],
    # Halpe-136: Halpe-26 (heels 24-25, big toes 20-21), face 26-93, left hand 94-114, right
    # hand 115-135 (Hand-21 order: knuckles 5 and 17, thumb knuckle 2)
    "halpe136": [24, 25, 20, 21, 99, 120, 111, 132, 96, 117],
    "coco17": [None] * 10,
}
# the ankle (feet) or wrist (hands) each extra joint hangs from, as COCO-17 indices
BODY29_PARENT = [15, 16, 15, 16, 9, 10, 9, 10, 9, 10]
HALPE26_FOR_COCO17 = list(range(17))
WHOLEBODY_FOR_COCO17 = list(range(17))


@pytest.mark.parametrize(
    "source, joints, picks",
    [
        ("blazepose", 33, BLAZEPOSE_FOR_COCO17),
        ("openpose_body25", 25, BODY25_FOR_COCO17),
        ("halpe26", 26, HALPE26_FOR_COCO17),
        ("coco_wholebody", 133, WHOLEBODY_FOR_COCO17),
        ("halpe136", 136, list(range(17))),
        ("coco17", 17, list(range(17))),
    ],
)
def test_layouts_map_to_body29(source, joints, picks):
    kp = _labelled(joints)
    out = to_body29(kp, source)
    assert out.shape == (29, 3)
    np.testing.assert_array_equal(out[:19], to_coco19(kp, source))
    np.testing.assert_array_equal(out[:17], kp[picks])
    for k, where in enumerate(BODY29_EXTRA[source]):
        if where is None:  # missing: at its ankle or wrist, confidence 0
            np.testing.assert_array_equal(out[19 + k, :2], kp[picks[BODY29_PARENT[k]], :2])
            assert out[19 + k, 2] == 0.0
        else:
            np.testing.assert_array_equal(out[19 + k], kp[where])
    np.testing.assert_array_equal(to_body29(kp), out)  # told from the joint count


def test_body29_passes_through_and_coco19_gains_missing_extras():
    kp = _labelled(29)
    np.testing.assert_array_equal(to_body29(kp), kp)
    np.testing.assert_array_equal(to_body29(kp[None, :19])[0, :19], kp[:19])
    assert to_body29(kp[None, :19]).shape == (1, 29, 3)
    # and back: COCO-19 from Body-29 is its first 19 rows, pelvis and neck recomputed
    np.testing.assert_allclose(to_coco19(kp, "body29")[:17], kp[:17])


def test_body29_names_match_the_joint_set():
    from meshgraph.bodies import BODY29
    from meshgraph.keypoint_formats import KEYPOINT_FORMATS

    assert KEYPOINT_FORMATS["body29"] == BODY29.names


@pytest.mark.parametrize(
    "kp, source, match",
    [
        (np.zeros((26, 3)), "blazepose", "33 joints"),
        (np.zeros((30, 3)), None, "cannot tell"),
        (np.zeros((29, 3)), "mpii", "unknown keypoint layout"),
    ],
)
def test_to_body29_errors(kp, source, match):
    with pytest.raises(ValueError, match=match):
        to_body29(kp, source)


def test_read_openpose_body25_file_as_body29(tmp_path):
    kp = _labelled(25)
    doc = {"people": [{"pose_keypoints_2d": kp.ravel().tolist()}]}
    out = read_keypoints(_write(tmp_path / "op.json", doc), "body29")
    assert out.shape == (1, 29, 3)
    np.testing.assert_array_equal(out[0, :17], kp[BODY25_FOR_COCO17])
    np.testing.assert_array_equal(out[0, 19], kp[21])  # left heel
    assert (out[0, 23:, 2] == 0).all()  # no hand points in BODY_25


def _upright_body29(rng: np.random.Generator) -> np.ndarray:
    """Body-29 pixels of a person standing upright, with jitter, and confidence 0.9."""
    from meshgraph.keypoint_formats import KEYPOINT_FORMATS

    names = KEYPOINT_FORMATS["body29"]
    kp = np.zeros((29, 3))
    kp[:, 2] = 0.9
    for i, name in enumerate(names):
        x = -1.0 if name.startswith("left_") else 1.0 if name.startswith("right_") else 0.0
        kp[i, :2] = (100 + 20 * x + rng.normal(0, 3), 200 - 10 * (i % 7) + rng.normal(0, 3))
    at = {n: i for i, n in enumerate(names)}
    kp[at["left_shoulder"], :2], kp[at["right_shoulder"], :2] = (80, 100), (120, 100)
    kp[at["left_hip"], :2], kp[at["right_hip"], :2] = (90, 200), (110, 200)
    kp[at["pelvis"], :2], kp[at["neck"], :2] = (100, 200), (100, 100)
    return kp


def test_remove_joint_offsets_by_hand():
    from meshgraph.keypoint_formats import KEYPOINT_FORMATS, remove_joint_offsets

    kp = _upright_body29(np.random.default_rng(0))
    at = {n: i for i, n in enumerate(KEYPOINT_FORMATS["body29"])}
    # torso: mid-hips (100, 200) to mid-shoulders (100, 100): 100 px, "up" is (0, -1) in
    # pixels; the left hip's mate lies at +x, so its "out" is (-1, 0)
    offsets = {"left_hip": (0.07, -0.03), "right_shoulder": (0.02, 0.0), "nose": (0.1, 0.5)}
    out = remove_joint_offsets(kp, offsets)
    # left hip: (90, 200) - (0.07 * (0, -1) - 0.03 * (-1, 0)) * 100 = (87, 207)
    np.testing.assert_allclose(out[at["left_hip"]], [87, 207, 0.9])
    np.testing.assert_allclose(out[at["right_shoulder"]], [120, 102, 0.9])
    # the nose has no mate: it moves along the torso only, 10 px down
    np.testing.assert_allclose(out[at["nose"], :2], kp[at["nose"], :2] + [0, 10])
    # pelvis and neck follow the moved hips and shoulders
    np.testing.assert_allclose(out[at["pelvis"], :2], [(87 + 110) / 2, (207 + 200) / 2])
    np.testing.assert_allclose(out[at["neck"], :2], [100, 101])
    moved = {at[n] for n in (*offsets, "pelvis", "neck")}
    rest = [i for i in range(29) if i not in moved]
    np.testing.assert_array_equal(out[rest], kp[rest])
    # no offsets: nothing moves; COCO-19 (the first 19) moves the same way
    np.testing.assert_array_equal(remove_joint_offsets(kp, {}), kp)
    np.testing.assert_allclose(remove_joint_offsets(kp[:19], offsets), out[:19])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_remove_joint_offsets_turns_scales_and_mirrors_with_the_image(seed):
    from meshgraph.keypoint_formats import BLAZEPOSE_OFFSETS, remove_joint_offsets

    rng = np.random.default_rng(seed)
    kp = _upright_body29(rng)
    angle, scale, shift = rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 5), rng.normal(0, 300, 2)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if seed == 2:
        turn = turn @ np.diag([-1.0, 1.0])  # a mirrored photo

    def move(points: np.ndarray) -> np.ndarray:
        moved = points.copy()
        moved[:, :2] = scale * points[:, :2] @ turn.T + shift
        return moved

    offsets = BLAZEPOSE_OFFSETS["anny"]
    np.testing.assert_allclose(remove_joint_offsets(move(kp), offsets),
                               move(remove_joint_offsets(kp, offsets)), atol=1e-9)  # fmt: skip
    # a batch gives what each sample gives alone
    batch = remove_joint_offsets(np.stack([kp, move(kp)]), offsets)
    np.testing.assert_allclose(batch[1], remove_joint_offsets(move(kp), offsets))


def test_remove_joint_offsets_with_missing_joints():
    from meshgraph.keypoint_formats import KEYPOINT_FORMATS, remove_joint_offsets

    kp = _upright_body29(np.random.default_rng(3))
    at = {n: i for i, n in enumerate(KEYPOINT_FORMATS["body29"])}
    offsets = {"left_hip": (0.07, -0.03), "left_ear": (0.0, -0.05)}
    # no torso (a hip below the threshold): nothing moves, pelvis and neck included
    lost = kp.copy()
    lost[at["right_hip"], 2] = 0.05
    lost[at["pelvis"], :2] = (0, 0)
    np.testing.assert_array_equal(remove_joint_offsets(lost, offsets), lost)
    assert not np.array_equal(remove_joint_offsets(lost, offsets, confidence_threshold=0.01), lost)
    # a missing joint stays; a joint whose mate is missing moves along the torso only
    part = kp.copy()
    part[at["left_ear"], 2] = 0.0
    part[at["right_hip"], 2] = 0.5
    out = remove_joint_offsets(part, offsets)
    np.testing.assert_array_equal(out[at["left_ear"]], part[at["left_ear"]])
    part[at["right_ear"], 2], part[at["left_ear"], 2] = 0.0, 0.9
    out = remove_joint_offsets(part, offsets)
    np.testing.assert_allclose(out[at["left_ear"], :2], part[at["left_ear"], :2])  # out only
    part[at["right_ear"], 2] = 0.9  # with its mate: 5 px towards it (out is -0.05 of 100 px)
    out = remove_joint_offsets(part, offsets)
    side = part[at["left_ear"], :2] - part[at["right_ear"], :2]
    expected = part[at["left_ear"], :2] + 5 * side / np.linalg.norm(side)
    np.testing.assert_allclose(out[at["left_ear"], :2], expected)
    # hips and shoulders at one point: no torso to measure in
    flat = kp.copy()
    flat[[at[n] for n in ("left_hip", "right_hip", "left_shoulder", "right_shoulder")], :2] = 5.0
    np.testing.assert_array_equal(remove_joint_offsets(flat, offsets), flat)


@pytest.mark.parametrize(
    ("kp", "offsets", "match"),
    [
        (np.zeros((17, 3)), {}, "19 or 29 joints"),
        (np.zeros((19, 4)), {}, r"\(J, 2\|3\)"),
        (np.full((19, 3), np.nan), {}, "NaN"),
        (np.zeros((19, 3)), {"left_heel": (0.0, 0.0)}, "no joint named left_heel"),
    ],
)
def test_remove_joint_offsets_errors(kp, offsets, match):
    from meshgraph.keypoint_formats import remove_joint_offsets

    with pytest.raises(ValueError, match=match):
        remove_joint_offsets(kp, offsets)


def test_blazepose_offsets_are_the_same_on_both_sides():
    from meshgraph.keypoint_formats import BLAZEPOSE_OFFSETS, KEYPOINT_FORMATS

    for offsets in BLAZEPOSE_OFFSETS.values():
        assert set(offsets) <= set(KEYPOINT_FORMATS["coco19"])
        for name, value in offsets.items():
            assert offsets[name.replace("left_", "right_")] == value
            assert offsets[name.replace("right_", "left_")] == value


def test_blazepose_offsets_are_the_measured_ones():
    """The shipped table is benchmarks/detector_offsets.py's measurement, both sides averaged."""
    import json
    from pathlib import Path

    from meshgraph.keypoint_formats import BLAZEPOSE_OFFSETS

    path = Path(__file__).parents[1] / "benchmarks/results/detector-offsets-cpu.json"
    if not path.exists():
        pytest.skip("no benchmarks/results in this checkout")
    measured = json.loads(path.read_text())["joints"]
    for name, (up, out) in BLAZEPOSE_OFFSETS["anny"].items():
        assert up == round(measured[name]["up_both_sides"], 3), name
        assert out == round(measured[name]["out_both_sides"], 3), name


def _openpose_doc(people: np.ndarray) -> str:
    return json.dumps({"people": [{"pose_keypoints_2d": p.reshape(-1).tolist()} for p in people]})


def test_read_keypoint_frames_folder_in_natural_order(tmp_path):
    from meshgraph.keypoint_formats import read_keypoint_frames

    rng = np.random.default_rng(5)
    frames = {2: rng.random((1, 25, 3)), 10: rng.random((2, 25, 3)), 1: np.zeros((0, 25, 3))}
    for i, people in frames.items():  # OpenPose writes {"people": []} for an empty frame
        (tmp_path / f"clip_{i}_keypoints.json").write_text(_openpose_doc(people))
    (tmp_path / "notes.txt").write_text("not keypoints")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "clip_0_keypoints.json").write_text(_openpose_doc(frames[2]))
    got = read_keypoint_frames(tmp_path, "coco")
    assert [name for name, _ in got] == [f"clip_{i}_keypoints" for i in (1, 2, 10)]
    assert got[0][1].shape == (0, 19, 3)
    for (_, kp), i in zip(got[1:], (2, 10), strict=True):
        # each frame as the file alone, BODY_25 -> COCO-19 by hand for its first 17 joints
        np.testing.assert_array_equal(kp[:, :17], frames[i][:, BODY25_FOR_COCO17])
    # a single file is one frame named by its stem
    single = read_keypoint_frames(tmp_path / "clip_10_keypoints.json", "coco")
    assert len(single) == 1 and single[0][0] == "clip_10_keypoints"
    np.testing.assert_array_equal(single[0][1], got[2][1])


def test_read_keypoint_frames_mmpose_video_files(tmp_path):
    from meshgraph.keypoint_formats import read_keypoint_frames

    rng = np.random.default_rng(6)
    people = rng.random((3, 17, 2)) * 300
    scores = rng.random((3, 17))

    def inst(i):
        return {"keypoints": people[i].tolist(), "keypoint_scores": scores[i].tolist()}

    frames = [
        {"frame_id": 0, "instances": [inst(0), inst(1)]},
        {"frame_id": 1, "instances": []},
        {"frame_id": 2, "instances": [inst(2)]},
    ]
    (tmp_path / "inferencer.json").write_text(json.dumps(frames))
    (tmp_path / "demo.json").write_text(json.dumps({"meta_info": {}, "instance_info": frames}))
    for name in ("inferencer.json", "demo.json"):
        got = read_keypoint_frames(tmp_path / name, "coco")
        assert [n for n, _ in got] == ["frame_000000", "frame_000001", "frame_000002"]
        assert [len(kp) for _, kp in got] == [2, 0, 1]
        np.testing.assert_array_equal(got[0][1][1, :17, :2], people[1])
        np.testing.assert_array_equal(got[2][1][0, :17, 2], scores[2])
    # a bad frame is named in the error
    frames[2]["instances"] = [{"keypoints": [[0, 0]] * 17, "keypoint_scores": [1] * 3}]
    (tmp_path / "bad.json").write_text(json.dumps(frames))
    with pytest.raises(ValueError, match=r"bad\.json \(frame_000002\): 3 keypoint scores"):
        read_keypoint_frames(tmp_path / "bad.json", "coco")


def test_read_keypoint_frames_errors(tmp_path):
    from meshgraph.keypoint_formats import read_keypoint_frames

    with pytest.raises(FileNotFoundError, match="no keypoint file or folder"):
        read_keypoint_frames(tmp_path / "missing")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no keypoint file"):
        read_keypoint_frames(tmp_path)
    video = [{"frame_id": 0, "instances": [MMPOSE_PERSON]}]
    (tmp_path / "v.json").write_text(json.dumps(video))
    with pytest.raises(
        ValueError, match=r"v\.json: a file of several frames or images inside a folder"
    ):
        read_keypoint_frames(tmp_path)


def test_cli_predict_a_folder_of_frames_and_a_video_file(tmp_path, capsys):
    """`meshgraph predict` on a folder of OpenPose frames and on an mmpose video file: one
    folder per frame, each mesh the same as predicting that person alone."""
    import torch

    from meshgraph.cli import main
    from meshgraph.io import load_mesh
    from meshgraph.keypoint_formats import read_keypoint_frames

    model = _tiny_coco_model(tmp_path / "m.pt")
    rng = np.random.default_rng(8)
    clip = tmp_path / "clip"
    clip.mkdir()
    counts = [3] * 30  # 90 people: more than one batch of 64
    counts[4], counts[7] = 0, 1
    for i, n in enumerate(counts):
        people = rng.random((n, 25, 3)) * [400, 600, 1]
        people[..., 2] = 0.5 + 0.5 * people[..., 2]
        if i == 9:
            people[1, :, 2] = 0.0  # a person without a confident joint
        (clip / f"clip_{i:012d}_keypoints.json").write_text(_openpose_doc(people))
    out = tmp_path / "meshes"
    args = ["predict", str(tmp_path / "m.pt"), str(clip), "--out", str(out), "--no-progress"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "1 frames without people; 1 people skipped" in captured.err
    record = json.loads((out / "frames.json").read_text())["frames"]
    assert [f["frame"] for f in record] == [f"clip_{i:012d}_keypoints" for i in range(30)]
    assert record[4] == {"frame": "clip_000000000004_keypoints", "people": [], "skipped": []}
    assert record[9]["people"] == [0, 2]
    assert record[9]["skipped"][0]["person"] == 1
    assert "too few visible joints" in record[9]["skipped"][0]["why"]
    assert not (out / "clip_000000000004_keypoints").exists()
    frames = read_keypoint_frames(clip, "coco")
    for i in (0, 7, 9, 29):
        name, kp = frames[i]
        for person in record[i]["people"]:
            alone = model.predict(torch.from_numpy(kp[person])).vertices[0].numpy()
            tag = f"_{person:03d}" if len(kp) > 1 else ""
            verts, _ = load_mesh(out / name / f"mesh{tag}.obj")
            np.testing.assert_allclose(verts, alone, atol=1e-5)
        camera = json.loads((out / name / "camera.json").read_text())
        assert camera["people"] == record[i]["people"]
    # an mmpose video file: frames named by their frame_id, next to the file by default
    video = [
        {"frame_id": i, "instances": [{"keypoints": p[:, :2].tolist(),
                                       "keypoint_scores": p[:, 2].tolist()}
                                      for p in rng.random((2, 17, 3)) * [300, 300, 1]]}
        for i in range(3)
    ]  # fmt: skip
    (tmp_path / "walk.json").write_text(json.dumps(video))
    assert main(["predict", str(tmp_path / "m.pt"), str(tmp_path / "walk.json")]) == 0
    kp = read_keypoint_frames(tmp_path / "walk.json", "coco")[2][1]
    verts, _ = load_mesh(tmp_path / "walk_meshes" / "frame_000002" / "mesh_001.obj")
    alone = model.predict(torch.from_numpy(kp[1])).vertices[0].numpy()
    np.testing.assert_allclose(verts, alone, atol=1e-5)


def test_read_keypoint_frames_groups_alphapose_and_coco_by_image(tmp_path):
    from meshgraph.keypoint_formats import read_keypoint_frames

    rng = np.random.default_rng(9)
    people = rng.random((4, 26, 3)) * [500, 400, 1]  # Halpe-26, AlphaPose's default
    image_ids = ["img/1.jpg", "img/1.jpg", "img/2.jpg", "3.png"]
    results = [{"image_id": i, "category_id": 1, "keypoints": p.ravel().tolist(), "score": 0.9}
               for i, p in zip(image_ids, people, strict=True)]  # fmt: skip
    (tmp_path / "alphapose-results.json").write_text(json.dumps(results))
    frames = read_keypoint_frames(tmp_path / "alphapose-results.json", "coco")
    assert [name for name, _ in frames] == ["1", "2", "3"]
    assert [len(kp) for _, kp in frames] == [2, 1, 1]
    np.testing.assert_array_equal(frames[0][1][1], to_coco19(people[1], "halpe26"))
    np.testing.assert_array_equal(frames[2][1][0], to_coco19(people[3], "halpe26"))
    # read_keypoints still gives every person of the file
    assert read_keypoints(tmp_path / "alphapose-results.json", "coco").shape == (4, 19, 3)
    # COCO: every image of the images list in its order, named by file_name; ids as keys
    coco = {
        "images": [{"id": 7, "file_name": "000000000007.jpg"}, {"id": 5, "file_name": "b.jpg"},
                   {"id": 9, "file_name": "000000000007.png"}],
        "annotations": [{"image_id": 5, "keypoints": people[0, :17].ravel().tolist()},
                        {"image_id": 7, "keypoints": people[1, :17].ravel().tolist()},
                        {"image_id": 5, "keypoints": people[2, :17].ravel().tolist()}],
    }  # fmt: skip
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    frames = read_keypoint_frames(tmp_path / "coco.json", "coco")
    assert [name for name, _ in frames] == ["000000000007", "b", "000000000007_1"]
    assert [len(kp) for _, kp in frames] == [1, 2, 0]
    np.testing.assert_array_equal(frames[1][1][1], to_coco19(people[2, :17], "coco17"))
    # without the images list: ids in the order they appear; one image: a single frame
    del coco["images"]
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    assert [n for n, _ in read_keypoint_frames(tmp_path / "coco.json")] == ["image_5", "image_7"]
    (tmp_path / "one.json").write_text(json.dumps(results[:2]))
    assert [n for n, _ in read_keypoint_frames(tmp_path / "one.json")] == ["one"]


def test_read_keypoints_alphapose_cmu_format(tmp_path):
    people = np.random.default_rng(10).random((2, 17, 3)) * [300, 300, 1]
    doc = {"version": 0.1, "bodies": [{"joints": p.ravel().tolist()} for p in people]}
    (tmp_path / "cmu.json").write_text(json.dumps(doc))
    got = read_keypoints(tmp_path / "cmu.json", "coco")
    np.testing.assert_array_equal(got[:, :17], people)


def test_cli_predict_alphapose_results_per_image(tmp_path):
    import torch

    from meshgraph.cli import main
    from meshgraph.io import load_mesh

    model = _tiny_coco_model(tmp_path / "m.pt")
    people = np.random.default_rng(11).random((3, 17, 3)) * [400, 400, 1] + [0, 0, 0.5]
    results = [{"image_id": name, "keypoints": p.ravel().tolist(), "score": 1.0}
               for name, p in zip(["a.jpg", "b.jpg", "a.jpg"], people, strict=True)]  # fmt: skip
    (tmp_path / "alphapose-results.json").write_text(json.dumps(results))
    assert main(["predict", str(tmp_path / "m.pt"), str(tmp_path / "alphapose-results.json")]) == 0
    out = tmp_path / "alphapose-results_meshes"
    record = json.loads((out / "frames.json").read_text())["frames"]
    assert [(f["frame"], f["people"]) for f in record] == [("a", [0, 1]), ("b", [0])]
    for folder, file, person in (("a", "mesh_001.obj", 2), ("b", "mesh.obj", 1)):
        coco19 = to_coco19(people[person], "coco17")
        alone = model.predict(torch.from_numpy(coco19)).vertices[0].numpy()
        np.testing.assert_allclose(load_mesh(out / folder / file)[0], alone, atol=1e-5)
