"""Photos -> keypoints -> meshes: images, the renderer, the detector front end, the image path."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from meshgraph.detect import (
    Detection,
    KeypointDetector,
    NoDetectionError,
    image_files,
    load_image,
    predict_image,
    save_image_prediction,
)
from meshgraph.generators import icosphere
from meshgraph.models import Pose2Mesh, Pose2MeshConfig

DATA = Path(__file__).resolve().parents[1] / "examples" / "data"


def _png(path, array):
    from PIL import Image

    Image.fromarray(array).save(path)
    return path


# ---------------------------------------------------------------- images


def test_load_image_formats(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[1, 2] = (10, 200, 30)
    assert (load_image(_png(tmp_path / "a.png", rgb)) == rgb).all()
    grey = np.arange(24, dtype=np.uint8).reshape(4, 6)
    out = load_image(grey)
    assert out.shape == (4, 6, 3) and (out[..., 1] == grey).all()
    rgba = np.concatenate([rgb, np.full((4, 6, 1), 7, np.uint8)], axis=2)
    assert (load_image(rgba) == rgb).all()
    # floats in [0, 1] are scaled to [0, 255]
    assert load_image(np.array([[[0.0, 0.5, 1.0], [0, 0, 0]]]))[0, 0].tolist() == [0, 128, 255]


def test_load_image_turns_a_photo_upright_by_its_exif_orientation(tmp_path):
    from PIL import Image

    stored = np.zeros((4, 6, 3), np.uint8)
    stored[0, 0] = (255, 0, 0)  # a red top-left corner as stored
    stored[3, 5] = (0, 0, 255)
    img = Image.fromarray(stored)
    exif = img.getexif()
    exif[0x0112] = 6  # EXIF orientation 6: the viewer turns it 90 degrees clockwise
    img.save(tmp_path / "turned.png", exif=exif)
    out = load_image(tmp_path / "turned.png")
    np.testing.assert_array_equal(out, np.rot90(stored, k=-1))  # NumPy's clockwise turn
    assert out.shape == (6, 4, 3) and out[0, 3].tolist() == [255, 0, 0]
    img.save(tmp_path / "plain.png")  # no tag: as stored
    np.testing.assert_array_equal(load_image(tmp_path / "plain.png"), stored)


def test_load_image_scales_16_bit_images(tmp_path):
    from PIL import Image

    grey8 = np.arange(24, dtype=np.uint8).reshape(4, 6) * 10
    grey16 = grey8.astype(np.uint16) * 257  # the same grey levels in 16 bits
    Image.fromarray(grey16).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png")
    assert out.dtype == np.uint8 and out.shape == (4, 6, 3)
    np.testing.assert_array_equal(out[..., 0], grey8)
    rgb16 = np.repeat(grey16[..., None], 3, axis=2)  # e.g. cv2.imread(..., IMREAD_ANYDEPTH)
    np.testing.assert_array_equal(load_image(rgb16)[..., 2], grey8)
    # a dark 16-bit file (every level below 257) is scaled as its array is, not taken for
    # floats in [0, 1]
    dark16 = np.arange(24, dtype=np.uint16).reshape(4, 6) * 10
    Image.fromarray(dark16).save(tmp_path / "dark16.png")
    expected = np.round(dark16 / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(load_image(tmp_path / "dark16.png")[..., 0], expected)
    np.testing.assert_array_equal(load_image(dark16)[..., 0], expected)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p / "missing.png", "no image file at"),
        (lambda p: (p / "x.png").write_text("not a picture") and p / "x.png", "not an image file"),
        (lambda p: _png(p / "flat.png", np.full((8, 8, 3), 90, np.uint8)), "one flat colour"),
    ],
)
def test_load_image_refuses_bad_files(tmp_path, make, needle):
    path = make(tmp_path)
    with pytest.raises((ValueError, FileNotFoundError), match=needle) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_load_image_refuses_bad_arrays(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="empty"):
        load_image(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        load_image(np.full((2, 2, 3), np.nan))
    with pytest.raises(ValueError, match=r"\(H, W, 3\|4\)"):
        load_image(np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(ValueError, match="numbers"):
        load_image(np.array([[["a", "b", "c"]]]))
    import meshgraph.detect as detect

    monkeypatch.setattr(detect, "MAX_IMAGE_PIXELS", 15)
    big = np.random.default_rng(0).integers(0, 255, (4, 4, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="larger than"):
        load_image(big)
    with pytest.raises(ValueError, match="larger than") as info:  # read from the header
        load_image(_png(tmp_path / "big.png", big))
    assert "big.png" in str(info.value)


def test_image_files(tmp_path):
    for name in ("b.JPG", "a.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in image_files(tmp_path)] == ["a.png", "b.JPG"]
    with pytest.raises(NotADirectoryError):
        image_files(tmp_path / "a.png")


# ---------------------------------------------------------------- the renderer


def test_render_mesh_paints_the_nearer_face():
    pytest.importorskip("matplotlib")
    from meshgraph.viz import render_mesh

    # two overlapping triangles: the red-lit one lies in front (smaller z) of the other
    verts = np.array([[10, 10, 5], [90, 10, 5], [10, 90, 5],      # near, facing the camera
                      [20, 20, 9], [95, 20, 9], [20, 95, 9]], float)  # fmt: skip
    faces = np.array([[3, 4, 5], [0, 1, 2]])  # the far face listed last: order must not matter
    img = render_mesh(verts, faces, (100, 100), colour=(1.0, 0.0, 0.0))
    assert img.shape == (100, 100, 3) and img.dtype == np.uint8
    r, g, b = (int(c) for c in img[30, 30])  # inside both: the near face, pure red shaded
    assert r > 50 and g < 5 and b < 5
    # outside both triangles: the background (grey-blue, b > r)
    r, g, b = (int(c) for c in img[95, 5])
    assert b > r and g > 100
    # a face seen edge-on gets only the ambient light; one facing the light gets more
    lit = render_mesh(verts[:3], faces[:1] * 0 + [0, 1, 2], (100, 100), colour=(1, 1, 1),
                      light=(0, 0, 1))  # fmt: skip
    assert int(lit[30, 30, 0]) > 240  # facing the light: ambient + full diffuse
    with pytest.raises(ValueError, match="size"):
        render_mesh(verts, faces, (0, 10))


def test_synthetic_photos_draw_the_body_where_its_keypoints_are(anny_hand):
    pytest.importorskip("matplotlib")
    from meshgraph.data.photos import synthetic_photos

    photos = synthetic_photos(anny_hand, anny_hand, [0, 1], size=256)
    for p in photos:
        assert p.image.shape == (256, 256, 3) and p.vertices.shape == (anny_hand.num_vertices, 3)
        # the skin colour (r > b) is under the keypoints, the background (b > r) in the corner
        u, v = np.clip(p.keypoints_2d.round().astype(int), 0, 255).T
        skin = p.image[v, u].astype(int)
        assert (skin[:, 0] > skin[:, 2]).mean() > 0.8
        assert p.image[0, 0, 2] > p.image[0, 0, 0]
    # the same draws alone as in a batch (float rounding of batched skinning aside)
    again = synthetic_photos(anny_hand, anny_hand, [1], size=256)[0]
    np.testing.assert_allclose(again.vertices, photos[1].vertices, atol=1e-6)
    assert np.abs(again.image.astype(int) - photos[1].image).max() <= 2


# ---------------------------------------------------------------- the detector front end


def _fake_detector(kind, result, joint_set=None, calibration=None):
    det = KeypointDetector.__new__(KeypointDetector)
    det.kind = kind
    det.joint_set = joint_set or ("coco" if kind == "body" else "hand")
    det.calibration = calibration
    det._graph = SimpleNamespace(process=lambda rgb: result, close=lambda: None)
    return det


def test_detector_converts_blazepose_to_coco19_pixels():
    marks = [SimpleNamespace(x=i / 40, y=1 - i / 40, visibility=0.5 + i / 100) for i in range(33)]
    det = _fake_detector("body", SimpleNamespace(pose_landmarks=SimpleNamespace(landmark=marks)))
    image = np.random.default_rng(0).integers(0, 255, (200, 100, 3), dtype=np.uint8)
    found = det(image)
    assert found.kind == "body" and found.image_size == (100, 200) and found.side is None
    # COCO's nose is BlazePose's 0, left shoulder its 11, left hip its 23 (x * width, y * height)
    np.testing.assert_allclose(found.keypoints[0], [0, 200, 0.5])
    np.testing.assert_allclose(found.keypoints[5], [11 / 40 * 100, (1 - 11 / 40) * 200, 0.61])
    # pelvis: the mid-hips (23, 24) with the lower visibility; neck: mid-shoulders (11, 12)
    np.testing.assert_allclose(found.keypoints[17], [23.5 / 40 * 100, (1 - 23.5 / 40) * 200, 0.73])
    np.testing.assert_allclose(found.keypoints[18], [11.5 / 40 * 100, (1 - 11.5 / 40) * 200, 0.61])
    det = _fake_detector("body", SimpleNamespace(pose_landmarks=None))
    with pytest.raises(NoDetectionError, match="no person found"):
        det(image)
    det.close()
    with pytest.raises(RuntimeError, match="closed"):
        det(image)


def test_detector_converts_blazepose_to_body29_pixels():
    marks = [SimpleNamespace(x=i / 40, y=1 - i / 40, visibility=0.5 + i / 100) for i in range(33)]
    result = SimpleNamespace(pose_landmarks=SimpleNamespace(landmark=marks))
    image = np.random.default_rng(0).integers(0, 255, (200, 100, 3), dtype=np.uint8)
    coco = _fake_detector("body", result)(image).keypoints
    found = _fake_detector("body", result, "body29")(image).keypoints
    assert found.shape == (29, 3)
    np.testing.assert_allclose(found[:19], coco)
    # by hand from BlazePose's landmark list: heels 29/30, foot tips 31/32, index 19/20,
    # pinky 17/18, thumb 21/22 (left, right)
    for row, mark in zip(range(19, 29), (29, 30, 31, 32, 19, 20, 17, 18, 21, 22), strict=True):
        np.testing.assert_allclose(
            found[row], [mark / 40 * 100, (1 - mark / 40) * 200, 0.5 + mark / 100]
        )
    with pytest.raises(ValueError, match="'coco' or 'body29'"):
        KeypointDetector("body", joint_set="hand")


def test_detector_moves_blazepose_onto_anny_joints():
    from meshgraph.keypoint_formats import BLAZEPOSE_OFFSETS, remove_joint_offsets

    marks = [SimpleNamespace(x=0.5 + 0.3 * np.sin(i), y=0.9 - i / 45, visibility=0.9)
             for i in range(33)]  # fmt: skip
    result = SimpleNamespace(pose_landmarks=SimpleNamespace(landmark=marks))
    image = np.random.default_rng(0).integers(0, 255, (300, 200, 3), dtype=np.uint8)
    for joint_set in ("coco", "body29"):
        raw = _fake_detector("body", result, joint_set)(image).keypoints
        moved = _fake_detector("body", result, joint_set, "anny")(image).keypoints
        np.testing.assert_allclose(moved, remove_joint_offsets(raw, BLAZEPOSE_OFFSETS["anny"]))
        assert np.abs(moved - raw).max() > 1  # the hips moved by pixels
    with pytest.raises(ValueError, match="calibration must be None or one of"):
        KeypointDetector("body", calibration="smpl")


@pytest.mark.parametrize(("body", "calibration"), [("anny", "anny"), ("smpl", None)])
def test_detector_for_model_moves_joints_for_anny_only(monkeypatch, body, calibration):
    import meshgraph.detect as detect

    made = []
    monkeypatch.setattr(detect.KeypointDetector, "__init__",
                        lambda self, kind, **kw: made.append((kind, kw)))  # fmt: skip
    mesh = icosphere(1)
    reg = torch.rand(17, mesh.num_vertices, generator=torch.Generator().manual_seed(0))
    cfg = Pose2MeshConfig(body=body, joint_set="body29", mesh_joint_set="h36m", num_levels=2,
                          posenet_width=8, coarse_channels=4, decoder_channels=(4, 4))  # fmt: skip
    detect.KeypointDetector.for_model(Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True)))
    assert made == [("body", {"min_confidence": 0.5, "joint_set": "body29",
                              "calibration": calibration})]  # fmt: skip


def test_predict_image_converts_between_coco19_and_body29(tmp_path):
    mesh = icosphere(2)
    reg = torch.rand(17, mesh.num_vertices, generator=torch.Generator().manual_seed(0))
    image = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    marks = [SimpleNamespace(x=0.5 + 0.3 * np.sin(i), y=0.9 - i / 45, visibility=0.9)
             for i in range(33)]  # fmt: skip
    result = SimpleNamespace(pose_landmarks=SimpleNamespace(landmark=marks))
    for model_set, detector_set in (("body29", "coco"), ("coco", "body29")):
        torch.manual_seed(0)
        cfg = Pose2MeshConfig(joint_set=model_set, mesh_joint_set="h36m", num_levels=3,
                              posenet_width=16, coarse_channels=4, decoder_channels=(4, 4, 4),
                              visibility_input=True)  # fmt: skip
        model = Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True)).eval()
        det = _fake_detector("body", result, detector_set)
        out = predict_image(model, image, detector=det)
        own = _fake_detector("body", result, model_set)(image).keypoints
        if model_set == "body29":  # a COCO-19 detector: the ten extra joints come missing
            assert out.detection.keypoints.shape == (29, 3)
            np.testing.assert_allclose(out.detection.keypoints[:19], own[:19])
            assert (out.detection.keypoints[19:, 2] == 0).all()
            assert out.prediction.visible[0].tolist() == [True] * 19 + [False] * 10
            files = save_image_prediction(out, tmp_path, stem="b29")  # Body-29's bones drawn
            assert all(path.stat().st_size > 0 for path in files.values())
        else:  # a Body-29 detector for a COCO-19 model: its first 19 joints
            np.testing.assert_allclose(out.detection.keypoints, own)
            torch.testing.assert_close(out.prediction.vertices, model.predict(own).vertices)
        # stored keypoints of the other set are converted the same way
        given = _fake_detector("body", result, detector_set)(image).keypoints
        again = predict_image(model, image, keypoints=given)
        np.testing.assert_allclose(again.detection.keypoints, out.detection.keypoints)


def test_detector_reports_the_hand_of_the_person():
    marks = [SimpleNamespace(x=0.5, y=i / 21) for i in range(21)]
    # mediapipe labels as if the photo were mirrored: "Left" is the person's right hand
    label = SimpleNamespace(label="Left", score=0.9)
    hands = [SimpleNamespace(classification=[label])]
    result = SimpleNamespace(multi_hand_landmarks=[SimpleNamespace(landmark=marks)],
                             multi_handedness=hands)  # fmt: skip
    image = np.random.default_rng(0).integers(0, 255, (42, 10, 3), dtype=np.uint8)
    found = _fake_detector("hand", result)(image)
    assert found.side == "right" and found.score == pytest.approx(0.9)
    np.testing.assert_allclose(found.keypoints[:, :2], [[5, 2 * i] for i in range(21)])
    empty = SimpleNamespace(multi_hand_landmarks=None, multi_handedness=None)
    with pytest.raises(NoDetectionError, match="no hand found"):
        _fake_detector("hand", empty)(image)


def test_detector_without_mediapipe_names_the_extra(monkeypatch):
    import meshgraph._optional as optional

    real = optional.importlib.import_module

    def no_mediapipe(name, *args):
        if name == "mediapipe":
            raise ImportError("No module named 'mediapipe'")
        return real(name, *args)

    monkeypatch.setattr(optional.importlib, "import_module", no_mediapipe)
    with pytest.raises(ImportError, match=r"torch-meshgraph\[detect\]"):
        KeypointDetector("body")
    with pytest.raises(ValueError, match="'body' or 'hand'"):
        KeypointDetector("face")


# ---------------------------------------------------------------- the image path


def _hand_model():
    mesh = icosphere(2)
    reg = torch.rand(21, mesh.num_vertices, generator=torch.Generator().manual_seed(0))
    cfg = Pose2MeshConfig(joint_set="hand", mesh_joint_set="hand", body="anny-hand.R",
                          num_levels=3, posenet_width=16, coarse_channels=4,
                          decoder_channels=(4, 4, 4))  # fmt: skip
    return Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True)).eval()


def test_predict_image_mirrors_the_model_for_a_left_hand(tmp_path):
    model = _hand_model()
    kp = np.c_[np.random.default_rng(2).random((21, 2)) * 300 + 50, np.ones(21)]
    image = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    right = predict_image(model, image, keypoints=Detection(kp, "hand", 1.0, "right", (400, 400)))
    left = predict_image(model, image, keypoints=Detection(kp, "hand", 1.0, "left", (400, 400)))
    torch.testing.assert_close(right.prediction.vertices, model.predict(kp).vertices)
    torch.testing.assert_close(left.prediction.vertices, model.mirrored().predict(kp).vertices)
    np.testing.assert_array_equal(left.faces, model.faces.numpy()[:, [0, 2, 1]])
    # placed on the photo: s * X + t, exactly
    s, tx, ty = right.prediction.camera[0].tolist()
    v = right.prediction.vertices[0].double().numpy()
    np.testing.assert_allclose(right.vertices_in_image(), np.c_[s * v[:, 0] + tx,
                               s * v[:, 1] + ty, s * v[:, 2]])  # fmt: skip
    files = save_image_prediction(right, tmp_path, stem="x")
    record = json.loads(files["json"].read_text())
    assert record["side"] == "right" and len(record["keypoints_2d"]) == 21
    assert record["camera"] == pytest.approx([s, tx, ty])
    for path in files.values():
        assert path.stat().st_size > 0
    with pytest.raises(ValueError, match=r"\(J, 2\|3\)"):
        predict_image(model, image, keypoints=np.zeros(5))
    with pytest.raises(ValueError, match="too few visible joints"):
        predict_image(model, image, keypoints=np.c_[kp[:, :2], np.zeros(21)])


def test_predict_image_tells_a_model_its_keypoints_are_exact(tmp_path, capsys):
    from meshgraph.cli import main

    mesh = icosphere(2)
    reg = torch.rand(21, mesh.num_vertices, generator=torch.Generator().manual_seed(0))
    cfg = Pose2MeshConfig(joint_set="hand", mesh_joint_set="hand", body="anny-hand.R",
                          num_levels=3, posenet_width=16, coarse_channels=4,
                          decoder_channels=(4, 4, 4), exactness_input=True)  # fmt: skip
    model = Pose2Mesh(cfg, mesh, reg / reg.sum(1, keepdim=True)).eval()
    with torch.no_grad():  # weights that read the channel (the last input of each joint)
        model.posenet.inp.weight.view(16, 21, 3)[..., 2].normal_()
    kp = np.c_[np.random.default_rng(4).random((21, 2)) * 300 + 50, np.ones(21)]
    image = np.random.default_rng(0).integers(0, 255, (400, 400, 3), dtype=np.uint8)
    exact = predict_image(model, image, keypoints=kp, exact=True).prediction
    detected = predict_image(model, image, keypoints=kp).prediction
    torch.testing.assert_close(exact.vertices, model.predict(kp, exact=True).vertices)
    torch.testing.assert_close(detected.vertices, model.predict(kp).vertices)
    assert not torch.allclose(exact.vertices, detected.vertices)
    with pytest.raises(ValueError, match="exact=True needs the keypoints"):
        predict_image(model, image, exact=True)
    with pytest.raises(TypeError, match="exact must be a bool"):
        predict_image(model, image, keypoints=kp, exact=1)
    # the command line: --exact with --keypoints, refused without
    model.save(tmp_path / "m.pt")
    photo = _png(tmp_path / "photo.png", image)
    (tmp_path / "kp.json").write_text(json.dumps({"keypoints": kp.tolist()}))
    args = ["predict", str(tmp_path / "m.pt"), "--image", str(photo), "--keypoints",
            str(tmp_path / "kp.json")]  # fmt: skip
    meshes = {}
    for flag in ([], ["--exact"]):
        out = tmp_path / ("exact" if flag else "detected")
        assert main([*args, "--out", str(out), *flag]) == 0
        meshes[bool(flag)] = np.array(json.loads((out / "photo.json").read_text())["joints_3d"])
    np.testing.assert_allclose(meshes[True], exact.joints_3d[0].numpy(), atol=2e-6)
    np.testing.assert_allclose(meshes[False], detected.joints_3d[0].numpy(), atol=2e-6)
    capsys.readouterr()
    assert main([*args[:4], "--exact"]) == 2
    assert "--exact goes with a keypoint file (--keypoints)" in capsys.readouterr().err


def _shipped_or_skip(kind):
    from meshgraph.models.pretrained import PRETRAINED, weights_dir

    if not (weights_dir() / PRETRAINED[kind]["file"]).is_file():
        pytest.skip(f"no shipped {kind} weights in this checkout")
    return Pose2Mesh.pretrained(kind)


@pytest.mark.parametrize("kind", ["body", "hand"])
def test_photo_to_mesh_against_the_known_mesh(kind, tmp_path):
    """The example photos end to end: detect (or stored keypoints), predict, compare."""
    from meshgraph._optional import WITH_MEDIAPIPE
    from meshgraph.metrics import mesh_errors

    model = _shipped_or_skip(kind)
    truth = np.load(DATA / f"photo_{kind}_truth.npz", allow_pickle=False)
    stored = json.loads((DATA / f"photo_{kind}_keypoints.json").read_text())
    if WITH_MEDIAPIPE:
        body_set = {"joint_set": model.joint_set.name} if kind == "body" else {}
        with KeypointDetector(kind, **body_set) as detector:
            found = detector(DATA / f"photo_{kind}.png")
        # the stored keypoints are this detector's output on this photo
        np.testing.assert_allclose(found.keypoints, stored["keypoints"], atol=0.5)
        assert found.side == stored["side"]
    else:
        found = Detection(np.asarray(stored["keypoints"]), kind, 1.0, stored["side"], (512, 512))
    # the detector's 2D error on the rendered photo: a few pixels on a 512-pixel image
    err = np.linalg.norm(found.keypoints[:, :2] - truth["keypoints_2d"], axis=1)
    assert np.median(err) < 10, err
    result = predict_image(model, DATA / f"photo_{kind}.png", keypoints=found)
    pred = result.prediction
    scores = mesh_errors(pred.vertices[0], pred.mesh_joints_3d[0],
                         torch.from_numpy(truth["vertices"]).float(),
                         torch.from_numpy(truth["mesh_joints_3d"]).float(),
                         root=model.mesh_joint_set.root)  # fmt: skip
    # far better than no model: the mean mesh of the held-out sets is 3-6 times worse
    metrics = model.provenance["metrics"]
    metrics = json.loads(metrics) if isinstance(metrics, str) else metrics
    baseline = metrics["mean_mesh_baseline"]["mpvpe"]
    assert scores["mpvpe"] < 0.6 * baseline, (scores, baseline)
    assert scores["pa_mpvpe"] < scores["mpvpe"]
    # the mesh lies over the person: its projected joints near the detected keypoints
    s, tx, ty = pred.camera[0].tolist()
    uv = s * pred.joints_3d[0, :, :2].double().numpy() + [tx, ty]
    assert np.median(np.linalg.norm(uv - found.keypoints[:, :2], axis=1)) < 25


def test_cli_predict_image(tmp_path, capsys):
    from meshgraph.cli import main

    model = _hand_model()
    model.save(tmp_path / "m.pt")
    rng = np.random.default_rng(1)
    photo = _png(tmp_path / "photo.png", rng.integers(0, 255, (300, 200, 3), dtype=np.uint8))
    kp = np.c_[rng.random((21, 2)) * 150 + 20, np.ones(21)]
    (tmp_path / "kp.json").write_text(json.dumps({"keypoints": kp.tolist()}))
    args = ["predict", str(tmp_path / "m.pt"), "--image", str(photo)]
    assert main([*args, "--keypoints", str(tmp_path / "kp.json")]) == 0
    out = tmp_path / "photo_mesh"  # the default: next to the photo
    for name in ("photo.obj", "photo.ply", "photo_image.obj", "photo.json", "photo_overlay.png"):
        assert (out / name).stat().st_size > 0, name
    record = json.loads((out / "photo.json").read_text())
    np.testing.assert_allclose(record["keypoints_2d"], kp, atol=1e-3)
    assert "saved 1 of 1 meshes" in capsys.readouterr().out
    # errors name the problem
    assert main([*args[:2], "--image", str(tmp_path / "none.png"), "--keypoints", "x"]) == 2
    assert "no image file or folder" in capsys.readouterr().err
    assert main([*args, "--left", "--keypoints", str(tmp_path / "kp.json")]) == 2
    assert "the detector tells which hand" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*args[:2], "--image", str(empty)]) == 2
    assert "holds no image" in capsys.readouterr().err


def test_cli_predict_image_folder_continues_past_bad_images(tmp_path, capsys):
    pytest.importorskip("mediapipe")
    from meshgraph.cli import main

    model = _hand_model()
    model.save(tmp_path / "m.pt")
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.png").write_bytes((DATA / "photo_hand.png").read_bytes())
    (folder / "b.png").write_text("not an image")
    _png(folder / "c.png", np.full((64, 64, 3), 30, np.uint8))  # one colour
    _png(folder / "d.png", np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
    assert main(["predict", str(tmp_path / "m.pt"), "--image", str(folder), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert "saved 1 of 4 meshes" in captured.out
    err = captured.err
    assert "b.png" in err and "not an image file" in err
    assert "c.png" in err and "one flat colour" in err
    assert "d.png" in err and "no hand found" in err
    assert (tmp_path / "photos_meshes" / "a.obj").stat().st_size > 0


def test_mediapipe_chatter_stays_off_stderr_and_other_lines_stay():
    """mediapipe's start-up and per-detection log lines are left out; the caller's are kept."""
    pytest.importorskip("mediapipe")
    from meshgraph.detect import _MEDIAPIPE_CHATTER
    from tests.helpers import run_python

    detect = (
        "import sys\n"
        "from meshgraph.detect import KeypointDetector\n"
        "for kind in ('body', 'hand'):\n"
        "    with KeypointDetector(kind) as detector:\n"
        f"        found = detector({str(DATA)!r} + f'/photo_{{kind}}.png')\n"
        "    print(kind, found.keypoints.shape, file=sys.stderr)\n"
    )
    unfiltered = (
        "import contextlib\n"
        "import meshgraph.detect\n"
        "meshgraph.detect._stderr_without = lambda *lines: contextlib.nullcontext()\n"
    )

    assert run_python(detect).stderr.splitlines() == ["body (19, 3)", "hand (21, 3)"]
    # the lines left out are what mediapipe writes when nothing filters them
    raw = run_python(unfiltered + detect).stderr
    assert any(chatter in raw for chatter in _MEDIAPIPE_CHATTER), raw
