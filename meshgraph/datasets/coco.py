"""COCO person keypoints (2D only) in the published annotation layout.

The file ``ROOT/annotations/person_keypoints_SPLIT.json`` (e.g. ``SPLIT = train2017``)::

    {"images": [{"id", "file_name", "width", "height"}],
     "annotations": [{"id", "image_id", "keypoints": [x, y, v] * 17, "num_keypoints",
                      "iscrowd", "bbox"}],
     "categories": [{"name": "person", "keypoints": [17 names], "skeleton": [...]}]}

``v`` is 0 (not labelled), 1 (labelled, hidden) or 2 (visible); labelled joints count as
visible. The 17 keypoints become COCO-19 (pelvis and neck: the mid-hips and mid-shoulders,
where both are labelled). The samples carry the 2D keys of the dataset protocol only
(``keypoints_2d``, ``visible``, ``keypoints_2d_pixels``, ``box``): real photos have no 3D
ground truth.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from meshgraph.bodies.joint_sets import COCO
from meshgraph.datasets.base import (
    DatasetFileError,
    KeypointDataset,
    field,
    image_of,
    images_and_annotations,
)
from meshgraph.keypoint_formats import to_coco19

__all__ = ["COCOKeypoints"]

_LAYOUT = (
    '{"images": [{"id", "file_name"}], "annotations": [{"id", "image_id", '
    '"keypoints": [x, y, v] * 17, "num_keypoints", "iscrowd"}]}'
)


class COCOKeypoints(KeypointDataset):
    """The people of COCO's keypoint annotations as 2D samples.

    Args:
        root: The COCO folder (holding ``annotations/``), or the annotation file itself.
        split: ``"train2017"``, ``"val2017"``, ...
        min_keypoints: Keep people with at least this many labelled keypoints (crowds are
            always left out).
        limit: Keep only the first ``limit`` people (in annotation-id order).

    Raises:
        DatasetFileError: A missing or malformed file (named, with the layout expected).
    """

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        split: str = "val2017",
        min_keypoints: int = 6,
        limit: int | None = None,
    ) -> None:
        root = Path(root)
        path = root if root.is_file() else root / "annotations" / f"person_keypoints_{split}.json"
        images, anns = images_and_annotations(path, _LAYOUT)
        files = {i: field(im, "file_name", path, _LAYOUT) for i, im in images.items()}
        kept = []
        for ann in sorted(anns, key=lambda a: a.get("id", 0) if isinstance(a, dict) else 0):
            if ann.get("iscrowd", 0) if isinstance(ann, dict) else 0:
                continue
            kp = np.asarray(field(ann, "keypoints", path, _LAYOUT), dtype=np.float64)
            if kp.shape != (51,) or not np.isfinite(kp).all():
                raise DatasetFileError(
                    f"{path}: annotation {ann.get('id')} has {kp.size} keypoint numbers, "
                    "expected 51 ([x, y, v] for each of the 17 COCO keypoints)"
                )
            kp = kp.reshape(17, 3)
            if int((kp[:, 2] > 0).sum()) < max(min_keypoints, 2):
                continue
            image = image_of(ann, images, path, _LAYOUT)
            kept.append((str(ann.get("id")), str(files[image["id"]]), kp))
            if limit is not None and len(kept) >= limit:
                break
        if not kept:
            raise DatasetFileError(f"{path}: no person with {min_keypoints}+ keypoints")
        kp19 = to_coco19(np.stack([k for _, _, k in kept]), "coco17")
        visible = kp19[..., 2] > 0
        pixels = np.where(visible[..., None], kp19[..., :2], 0.0)
        self.image_files = [f for _, f, _ in kept]
        super().__init__(
            name=f"COCO {split}",
            joint_set=COCO,
            pixels=pixels,
            visible=visible,
            ids=[i for i, _, _ in kept],
        )
