"""Pose2Mesh networks: PoseNet, MeshNet, the FC baseline and the full model."""

from meshgraph.models.autoencoder import MeshAutoencoder
from meshgraph.models.networks import (
    FCBaseline,
    MeshNet,
    PoseNet,
    default_decoder_channels,
    joint_frame,
)
from meshgraph.models.pose2mesh import Pose2Mesh, Pose2MeshConfig, Prediction, fit_weak_perspective

__all__ = [
    "FCBaseline",
    "MeshAutoencoder",
    "MeshNet",
    "Pose2Mesh",
    "Pose2MeshConfig",
    "PoseNet",
    "Prediction",
    "default_decoder_channels",
    "fit_weak_perspective",
    "joint_frame",
]
