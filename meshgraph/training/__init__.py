"""Training Pose2Mesh: two stages, resumable checkpoints, several processes."""

from meshgraph.training.trainer import TrainConfig, Trainer, pose2mesh_losses

__all__ = ["TrainConfig", "Trainer", "pose2mesh_losses"]
