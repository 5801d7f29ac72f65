"""Small files in the published layouts of the benchmarks (tests only).

Each writer takes plain arrays and writes them exactly as the datasets' releases do: the
Pose2Mesh release's Human3.6M and 3DPW annotation files, FreiHAND's evaluation lists, COCO's
person-keypoint annotations and the released detection files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _dump(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def rotation(yaw: float, pitch: float) -> np.ndarray:
    """A camera rotation (float64)."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return rx @ rz


def h36m_subject(
    root: Path, subject: int, frames: list[dict], cameras: dict[int, dict], smpl: dict | None = None
) -> None:
    """Write ``annotations/Human36M_subjectS_{data,camera,joint_3d}.json``.

    ``frames``: dicts with action, subaction, cam, frame, joints (17, 3) world mm.
    ``cameras``: cam_idx -> {"R", "t" (mm), "f", "c"}.
    """
    images, anns, joints = [], [], {}
    for n, fr in enumerate(frames):
        a, sa, cam, f = fr["action"], fr["subaction"], fr["cam"], fr["frame"]
        name = (
            f"s_{subject:02d}_act_{a:02d}_subact_{sa:02d}_ca_{cam:02d}/"
            f"s_{subject:02d}_act_{a:02d}_subact_{sa:02d}_ca_{cam:02d}_{f + 1:06d}.jpg"
        )
        image_id = subject * 100000 + n
        images.append(
            {
                "id": image_id,
                "file_name": name,
                "width": 1000,
                "height": 1002,
                "subject": subject,
                "action_name": "Directions",
                "action_idx": a,
                "subaction_idx": sa,
                "cam_idx": cam,
                "frame_idx": f,
            }
        )
        anns.append(
            {
                "id": image_id,
                "image_id": image_id,
                "keypoints_vis": [True] * 17,
                "bbox": [100.0, 100.0, 300.0, 600.0],
            }
        )
        joints.setdefault(str(a), {}).setdefault(str(sa), {})[str(f)] = fr["joints"].tolist()
    stem = root / "annotations" / f"Human36M_subject{subject}"
    _dump(Path(f"{stem}_data.json"), {"images": images, "annotations": anns})
    cams = {
        str(k): {
            "R": np.asarray(v["R"]).tolist(),
            "t": np.asarray(v["t"]).tolist(),
            "f": list(v["f"]),
            "c": list(v["c"]),
        }
        for k, v in cameras.items()
    }
    _dump(Path(f"{stem}_camera.json"), cams)
    _dump(Path(f"{stem}_joint_3d.json"), joints)
    if smpl is not None:
        _dump(Path(f"{stem}_smpl_param.json"), smpl)


def pw3d(root: Path, people: list[dict], split: str = "test") -> Path:
    """Write ``data/3DPW_latest_SPLIT.json``: people with pose, shape, trans, gender, focal,
    princpt, sequence, frame."""
    images, anns = [], []
    for n, p in enumerate(people):
        images.append(
            {
                "id": n,
                "file_name": f"image_{p['frame']:05d}.jpg",
                "width": 1080,
                "height": 1920,
                "sequence": p["sequence"],
                "cam_param": {"focal": list(p["focal"]), "princpt": list(p["princpt"])},
            }
        )
        anns.append(
            {
                "id": 1000 + n,
                "image_id": n,
                "person_id": p.get("person", 0),
                "bbox": [0.0, 0.0, 100.0, 200.0],
                "openpose_result": [[0.0] * 3] * 18,
                "smpl_param": {
                    "pose": list(p["pose"]),
                    "shape": list(p["shape"]),
                    "trans": list(p["trans"]),
                    "gender": p["gender"],
                },
            }
        )
    return _dump(
        root / "data" / f"3DPW_latest_{split}.json", {"images": images, "annotations": anns}
    )


def freihand(root: Path, k: np.ndarray, xyz: np.ndarray, verts: np.ndarray | None = None) -> None:
    """Write ``evaluation_K.json``, ``evaluation_xyz.json`` (and ``evaluation_verts.json``)."""
    _dump(root / "evaluation_K.json", np.asarray(k).tolist())
    _dump(root / "evaluation_xyz.json", np.asarray(xyz).tolist())
    if verts is not None:
        _dump(root / "evaluation_verts.json", np.asarray(verts).tolist())


def coco(root: Path, people: list[dict], split: str = "val2017") -> Path:
    """Write ``annotations/person_keypoints_SPLIT.json``: people with keypoints (17, 3),
    iscrowd, image."""
    images = {}
    anns = []
    for n, p in enumerate(people):
        images[p["image"]] = {
            "id": p["image"],
            "file_name": f"{p['image']:012d}.jpg",
            "width": 640,
            "height": 480,
        }
        kp = np.asarray(p["keypoints"], dtype=float)
        anns.append(
            {
                "id": p.get("id", n + 1),
                "image_id": p["image"],
                "category_id": 1,
                "iscrowd": p.get("iscrowd", 0),
                "num_keypoints": int((kp[:, 2] > 0).sum()),
                "keypoints": kp.reshape(-1).tolist(),
                "bbox": [0, 0, 10, 10],
                "area": 100.0,
            }
        )
    return _dump(
        root / "annotations" / f"person_keypoints_{split}.json",
        {
            "images": list(images.values()),
            "annotations": anns,
            "categories": [{"id": 1, "name": "person"}],
        },
    )


def detections_by_image(path: Path, rows: dict[str, np.ndarray]) -> Path:
    """``{image path: J x [x, y, c]}`` (Human3.6M's ``absnet_output_on_testset.json``)."""
    return _dump(path, {k: np.asarray(v).tolist() for k, v in rows.items()})


def detections_by_id(path: Path, rows: dict[int, np.ndarray], key: str) -> Path:
    """``[{key: id, "keypoints": J x [x, y, c]}]`` (3DPW's darkpose, FreiHAND's hrnet)."""
    return _dump(path, [{key: k, "keypoints": np.asarray(v).tolist()} for k, v in rows.items()])
