"""Pose2Mesh networks: PoseNet, MeshNet and the FC baseline."""

from meshgraph.models.networks import FCBaseline, MeshNet, PoseNet, default_decoder_channels

__all__ = ["FCBaseline", "MeshNet", "PoseNet", "default_decoder_channels"]
