"""Training Pose2Mesh: two stages, resumable checkpoints, several processes."""

from meshgraph.training.evaluate import evaluate, mean_mesh, mean_mesh_baseline
from meshgraph.training.trainer import TrainConfig, Trainer, pose2mesh_losses

__all__ = [
    "TrainConfig",
    "Trainer",
    "evaluate",
    "mean_mesh",
    "mean_mesh_baseline",
    "pose2mesh_losses",
]
