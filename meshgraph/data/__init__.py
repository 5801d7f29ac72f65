"""Synthetic 2D-pose -> mesh data: cameras, projection, normalisation, detector noise.

``Camera``, ``look_at``, ``project`` and ``normalize_keypoints`` live in
:mod:`meshgraph.geometry` and are importable from here too.
"""

from meshgraph.data.camera import CameraRanges, sample_cameras
from meshgraph.data.noise import gaussian_noise, oks_distance, posefix_noise
from meshgraph.data.poses import BetaSampler, BodyPoseSampler, HandPoseSampler, ShapeSampler
from meshgraph.data.protocol import SAMPLE_KEYS, PoseMeshDataset, check_sample
from meshgraph.data.synthetic import (
    SyntheticPoseMeshDataset,
    collate,
    default_pose_sampler,
    default_shape_sampler,
)
from meshgraph.data.transfer import fit_topology_map, posed_pairs
from meshgraph.geometry import Camera, look_at, normalize_keypoints, project

__all__ = [
    "SAMPLE_KEYS",
    "BetaSampler",
    "BodyPoseSampler",
    "Camera",
    "CameraRanges",
    "HandPoseSampler",
    "PoseMeshDataset",
    "ShapeSampler",
    "SyntheticPoseMeshDataset",
    "check_sample",
    "collate",
    "default_pose_sampler",
    "default_shape_sampler",
    "fit_topology_map",
    "gaussian_noise",
    "look_at",
    "normalize_keypoints",
    "oks_distance",
    "posed_pairs",
    "posefix_noise",
    "project",
    "sample_cameras",
]
