"""Synthetic 2D-pose -> mesh data: cameras, projection, normalisation, detector noise."""

from meshgraph.data.camera import (
    Camera,
    CameraRanges,
    look_at,
    normalize_keypoints,
    project,
    sample_cameras,
)
from meshgraph.data.noise import gaussian_noise, oks_distance, posefix_noise
from meshgraph.data.poses import BetaSampler, BodyPoseSampler, HandPoseSampler, ShapeSampler
from meshgraph.data.synthetic import (
    SyntheticPoseMeshDataset,
    collate,
    default_pose_sampler,
    default_shape_sampler,
)

__all__ = [
    "BetaSampler",
    "BodyPoseSampler",
    "Camera",
    "CameraRanges",
    "HandPoseSampler",
    "ShapeSampler",
    "SyntheticPoseMeshDataset",
    "collate",
    "default_pose_sampler",
    "default_shape_sampler",
    "gaussian_noise",
    "look_at",
    "normalize_keypoints",
    "oks_distance",
    "posefix_noise",
    "project",
    "sample_cameras",
]
