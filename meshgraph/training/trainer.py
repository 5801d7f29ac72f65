"""Two-stage Pose2Mesh training on the synthetic data, with checkpoints that resume exactly.

Stage 1 trains PoseNet alone (its 3D-joint loss); stage 2 trains everything with the paper's
loss terms. All quantities are in metres, so the paper's weights for millimetre joints
(``1e-3``) become 1 here:

``L = w_vertex L_vertex + w_normal L_normal + w_edge L_edge + w_joint L_joint + w_pose L_pose``

with defaults 1, 0.1, 20 (from ``edge_loss_start`` of stage 2 on), 1, 1.

2D-only data (COCO's people, :class:`~meshgraph.datasets.COCOKeypoints`): with a
``dataset_2d`` and ``batch_size_2d > 0``, every step also feeds that many of its samples
through the network (in the same batch, so batch normalisation sees both) and adds
``w_2d * L_2d``, the :func:`~meshgraph.losses.reprojection_loss` of PoseNet's 3D joints to
their 2D input (both stages; the mesh has no 2D target). The 2D samples of a step are a
function of the seed, the epoch and the step, so a killed run still resumes exactly.

An epoch is ``samples_per_epoch`` samples of the (deterministic) synthetic dataset, visited
in a seeded permutation per epoch; a checkpoint (written atomically whenever
:data:`CHECKPOINT_EVERY_S` seconds have passed since the last one and at the end of the run,
or, with ``checkpoint_every``, every that many steps and at the end of every epoch) records
the position in the
epoch, the model, the optimiser, the scheduler and the RNG state, so a killed run resumes
where it stopped and takes exactly the steps it would have taken.

Determinism: a seed fixes the data, the order and the initial weights, and a run repeated on
the same machine with the same thread count (``torch.set_num_threads``, ``--threads``) gives
bit-identical weights, as does a killed run resumed with that thread count. Another thread
count changes the order of CPU reductions, so the weights differ in their last bits (and, over
many steps, by more); resuming with another thread count warns.

Several processes: launch with ``torchrun --nproc_per_node N``; every rank takes its share of
each batch (the global batch size stays ``batch_size``), gradients are averaged by
:class:`~torch.nn.parallel.DistributedDataParallel` (gloo on the CPU, nccl on GPUs).
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from meshgraph.data.protocol import PoseMeshDataset, check_sample, stack_samples
from meshgraph.data.synthetic import SyntheticPoseMeshDataset
from meshgraph.io import atomic_write, folder_lock, load_torch
from meshgraph.losses import (
    keypoint_loss,
    normal_and_edge_losses,
    normal_vector_loss,
    reprojection_loss,
    vertex_loss,
)
from meshgraph.models.pose2mesh import Pose2Mesh
from meshgraph.training.evaluate import check_normalisation

__all__ = [
    "CHECKPOINT_EVERY_S",
    "TrainConfig",
    "Trainer",
    "pose2mesh_losses",
    "refuse_existing_run",
]


@dataclass
class TrainConfig:
    """Training schedule and loss weights (see the module docstring).

    Attributes:
        posenet_epochs: Stage-1 epochs (PoseNet alone).
        epochs: Stage-2 epochs (everything).
        samples_per_epoch: Samples per epoch.
        batch_size: Global batch size.
        lr: Learning rate of both stages.
        lr_schedule: ``"step"`` (the paper: constant in stage 1, multiplied by ``lr_decay``
            after each of ``lr_decay_epochs`` in stage 2) or ``"cosine"`` (each stage anneals
            from ``lr`` to ``lr * lr_decay`` along a half cosine, step by step).
        lr_decay_epochs: Stage-2 epochs after which the lr is multiplied by ``lr_decay``
            (``"step"`` schedule).
        lr_decay: The decay factor (``"cosine"``: the final fraction of ``lr``).
        posenet_lr_scale: Stage 2 multiplies PoseNet's learning rate by this (1: the paper).
            Restarting the trained PoseNet at the full rate undoes part of stage 1 (its joint
            error rose from 111 to 167 mm in the first stage-2 epoch of the body quick
            preset); a smaller rate keeps it.
        optimizer: ``"adam"`` (default) or ``"rmsprop"`` (the paper's). On short CPU schedules
            RMSprop's first steps blew the mesh up (vertex L1 of 8 m after the first stage-2
            epoch on the Anny hand, against 1.7 m for Adam), so Adam is the default.
        w_vertex, w_normal, w_edge, w_joint, w_pose: Loss weights.
        edge_loss_start: Stage-2 epoch from which the edge loss is on (the paper: after the
            first epochs).
        checkpoint_every: Steps between mid-epoch checkpoints, plus one at the end of every
            epoch. ``None`` (default): a checkpoint after any step once
            :data:`CHECKPOINT_EVERY_S` seconds have passed since the last one, and at the end
            of the run. A checkpoint of the body quick model took 80-230 ms on a 2-core CPU
            (69 MB), as long as 1-8 GPU steps (writing it from a background thread saved
            nothing), and that preset's epochs last 3-20 s. It changes no number: a run may
            be resumed with another value.
        seed: Seed of the data order and the initial weights.
        max_steps: Stop after this many steps in total (a time budget); ``None``: no limit.
            A stopped run still writes ``model.pt`` (the weights so far) and can be resumed
            from ``checkpoint.pt``.
        bf16: Run the forward pass under bfloat16 :func:`torch.autocast` (the losses and the
            optimiser stay in the model's dtype). On a 2-core CPU with bfloat16 instructions
            it did not pay (body quick preset, a stage-2 step: 213 ms against 211 ms,
            ``python -m benchmarks.trainer_options``): the sparse Chebyshev products stay in
            float32 there. Off by default; CUDA is not measured yet.
        batch_size_2d: 2D-only samples (the trainer's ``dataset_2d``) added to every step; 0
            (default): none.
        w_2d: Weight of their reprojection loss (normalised 2D units).
        compile: Run the forward pass through :func:`torch.compile` (the first step compiles:
            12 s with a warm compile cache, 53 s without). It did not pay on a 2-core CPU
            either (274 ms against 211 ms a step). It changes no schedule: a run may be
            resumed with or without it.
    """

    posenet_epochs: int = 2
    epochs: int = 4
    samples_per_epoch: int = 4096
    batch_size: int = 64
    lr: float = 1e-3
    lr_decay_epochs: tuple[int, ...] = ()
    lr_decay: float = 0.1
    lr_schedule: str = "step"
    posenet_lr_scale: float = 1.0
    optimizer: str = "adam"
    w_vertex: float = 1.0
    w_normal: float = 0.1
    w_edge: float = 20.0
    w_joint: float = 1.0
    w_pose: float = 1.0
    batch_size_2d: int = 0
    w_2d: float = 1.0
    edge_loss_start: int = 1
    checkpoint_every: int | None = None
    seed: int = 0
    max_steps: int | None = None
    bf16: bool = False
    compile: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Refuse a schedule that cannot train (the message names the field)."""
        for name in ("posenet_epochs", "epochs", "edge_loss_start", "batch_size_2d"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        for name in ("samples_per_epoch", "batch_size", "checkpoint_every"):
            value = getattr(self, name)
            if name == "checkpoint_every" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_steps is not None and (
            not isinstance(self.max_steps, int) or self.max_steps < 1
        ):
            raise ValueError(
                f"max_steps must be a positive integer or None, got {self.max_steps!r}"
            )
        for name in ("bf16", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.posenet_epochs + self.epochs == 0:
            raise ValueError("posenet_epochs + epochs must be at least 1")
        for name in ("lr", "lr_decay"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value!r}")
        for name in ("posenet_lr_scale", "w_vertex", "w_normal", "w_edge", "w_joint", "w_pose",
                     "w_2d"):  # fmt: skip
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative finite number, got {value!r}")
        if any(not isinstance(e, int) or e < 0 for e in self.lr_decay_epochs):
            raise ValueError(
                f"lr_decay_epochs must be non-negative integers, got {self.lr_decay_epochs!r}"
            )

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps per epoch."""
        return math.ceil(self.samples_per_epoch / self.batch_size)

    @property
    def total_epochs(self) -> int:
        """Epochs of both stages."""
        return self.posenet_epochs + self.epochs


def pose2mesh_losses(
    out: dict[str, Tensor],
    batch: dict[str, Tensor],
    faces: Tensor,
    cfg: TrainConfig,
    stage: int,
    stage_epoch: int,
) -> dict[str, Tensor]:
    """The loss terms of one batch and their weighted ``total``.

    Stage 1: ``pose`` only. Stage 2: ``vertex``, ``normal``, ``edge`` (from
    ``cfg.edge_loss_start``), ``joint`` (mesh-regressed joints) and ``pose``.
    """
    terms: dict[str, Tensor] = {"pose": keypoint_loss(out["joints_3d"], batch["joints_3d"])}
    total = cfg.w_pose * terms["pose"]
    if stage == 2:
        verts, target = out["vertices"], batch["vertices"]
        terms["vertex"] = vertex_loss(verts, target)
        if stage_epoch >= cfg.edge_loss_start:  # both surface terms from one pass
            terms["normal"], terms["edge"] = normal_and_edge_losses(verts, target, faces)
        else:
            terms["normal"] = normal_vector_loss(verts, target, faces)
        terms["joint"] = keypoint_loss(out["mesh_joints_3d"], batch["mesh_joints_3d"])
        total = total + cfg.w_vertex * terms["vertex"] + cfg.w_normal * terms["normal"]
        total = total + cfg.w_joint * terms["joint"]
        if "edge" in terms:
            total = total + cfg.w_edge * terms["edge"]
    terms["total"] = total
    return terms


#: The keys of a 2D-only sample that training reads (prefixed ``2d_`` in a batch).
_KEYS_2D = ("keypoints_2d", "visible")

#: Seconds between redraws of ``losses.png`` during training (it is always drawn at the end).
PLOT_EVERY_S = 30.0
#: Seconds after which the next step writes a checkpoint (``checkpoint_every=None``): a killed
#: run loses at most this much work (plus one step).
CHECKPOINT_EVERY_S = 60.0


def _all_visible(keypoints: Tensor, visible: Tensor | None) -> Tensor:
    """``visible``, or every joint visible when a batch has no mask."""
    if visible is not None:
        return visible
    return torch.ones(keypoints.shape[:2], dtype=torch.bool, device=keypoints.device)


def _optimizer(
    cls: type[torch.optim.Optimizer], groups: list[dict[str, Any]], lr: float
) -> torch.optim.Optimizer:
    """The optimiser, with its fused kernel where the parameters' device has one.

    Adam's fused step (one kernel over every tensor) takes 4 ms on a 2-core CPU for the body
    quick model's 8.5 M parameters, against 23 ms for the default multi-tensor step; it is the
    same update, rounded in another order. RMSprop has no fused kernel.
    """
    if cls is torch.optim.Adam:
        try:
            return cls(groups, lr=lr, fused=True)
        except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
            pass
    return cls(groups, lr=lr)


def refuse_existing_run(out_dir: str | os.PathLike) -> None:
    """Refuse to start a fresh run in a folder that holds another run's ``checkpoint.pt``.

    Raises:
        FileExistsError: With what to do instead (``--resume``, ``--overwrite``, another
            folder).
    """
    if (Path(out_dir) / "checkpoint.pt").exists():
        raise FileExistsError(
            f"{out_dir} already holds a training run (checkpoint.pt); resume it (--resume), "
            "start afresh over it (--overwrite) or choose another output folder"
        )


class Trainer:
    """Train a :class:`~meshgraph.models.Pose2Mesh` on a synthetic dataset.

    Args:
        model: The network.
        dataset: Training data (the model's joint sets).
        config: The schedule.
        out_dir: Where ``checkpoint.pt``, ``metrics.csv``, ``losses.png`` and the final
            ``model.pt`` go.
        device: Training device.
        progress: Show a progress bar with the running loss.
        evaluate: Optional callable ``model -> dict of metrics`` run after every epoch (rank
            0), its results written to ``metrics.csv``.
        on_step: Optional callable run after every optimiser step (with the trainer).
        prefetch: Make the next batch in a background thread during each step (the batches
            and the weights are the same either way). Default (``None``): on for CUDA and
            other accelerators, off on the CPU. Measured on 2 cores (body quick preset,
            batches made in pairs, 7 alternating runs of 75 steps): a stage-1 step and its
            data took 50 ms on average without it and 57 ms with it (a data thread with one
            OpenMP thread: 62 ms); in stage 2, where the GEMMs already use both cores, it
            gained nothing either. (Before batches were made in pairs, stage 1 gained from it:
            38-42 ms against 48-50 ms.)
        batches_per_load: Make this many consecutive batches of an epoch in one call to the
            dataset (then split them), which spreads its fixed per-call cost: on 2 CPU cores,
            64 body samples took 40-44 ms alone and 27-31 ms a batch in pairs. A sample
            depends on its index alone, and the groups are aligned (batches ``0-1``,
            ``2-3``, ...) so that a resumed run makes the same groups: the batches and the
            weights are the same for any value (a test says so).
        dataset_2d: 2D-only samples (``keypoints_2d`` and ``visible`` in the model's input
            joint set, e.g. :class:`~meshgraph.datasets.COCOKeypoints`), of which
            ``config.batch_size_2d`` join every step with the reprojection loss (see the
            module docstring).

    The datasets must normalise the 2D input as the model expects
    (:func:`~meshgraph.training.evaluate.check_normalisation`, a ``ValueError`` otherwise).

    Stage 1 needs no mesh: where the dataset has a ``with_mesh`` attribute (as
    :class:`~meshgraph.data.SyntheticPoseMeshDataset` does), the trainer turns it off for the
    PoseNet epochs and restores it afterwards, so that only the vertices of the joint
    regressor are posed (and the stage-2 epochs make the whole mesh). On the body quick preset
    (2 CPU cores, 5 alternating runs of 60 steps) a stage-1 step with its batch took 49 ms
    against 57 ms (medians).
    """

    def __init__(
        self,
        model: Pose2Mesh,
        dataset: PoseMeshDataset | SyntheticPoseMeshDataset,
        config: TrainConfig,
        out_dir: str | os.PathLike,
        *,
        device: str | torch.device = "cpu",
        progress: bool = True,
        evaluate: Callable[[Pose2Mesh], dict[str, float]] | None = None,
        on_step: Callable[[Trainer], None] | None = None,
        prefetch: bool | None = None,
        batches_per_load: int = 2,
        dataset_2d: PoseMeshDataset | None = None,
    ) -> None:
        if model.joint_set.name != dataset.joint_set.name:
            raise ValueError(
                f"the model takes {model.joint_set.name} joints, the dataset gives "
                f"{dataset.joint_set.name}"
            )
        check_normalisation(model, dataset)
        if (dataset_2d is None) != (config.batch_size_2d == 0):
            raise ValueError(
                "2D-only training needs both a dataset_2d and config.batch_size_2d > 0, got "
                f"dataset_2d={'None' if dataset_2d is None else type(dataset_2d).__name__} "
                f"and batch_size_2d={config.batch_size_2d}"
            )
        if dataset_2d is not None:
            if getattr(dataset_2d, "joint_set", None) is None or (
                dataset_2d.joint_set.name != model.joint_set.name
            ):
                got = getattr(getattr(dataset_2d, "joint_set", None), "name", None)
                raise ValueError(
                    f"the model takes {model.joint_set.name} joints, dataset_2d gives {got}"
                )
            if len(dataset_2d) == 0:
                raise ValueError("dataset_2d is empty")
            check_normalisation(model, dataset_2d, "dataset_2d")
            check_sample(stack_samples(dataset_2d, [0]), model.joint_set, keys=("keypoints_2d",))
        if model.config.mirror:
            raise ValueError(
                "the model is mirrored (Pose2Mesh.mirrored): train the model it mirrors, then "
                "mirror the trained one"
            )
        if config.optimizer not in ("rmsprop", "adam"):
            raise ValueError(f"optimizer must be 'rmsprop' or 'adam', got {config.optimizer!r}")
        if config.lr_schedule not in ("step", "cosine"):
            raise ValueError(f"lr_schedule must be 'step' or 'cosine', got {config.lr_schedule!r}")
        if isinstance(batches_per_load, bool) or not isinstance(batches_per_load, int):
            raise TypeError(f"batches_per_load must be an int, got {batches_per_load!r}")
        if batches_per_load < 1:
            raise ValueError(f"batches_per_load must be at least 1, got {batches_per_load}")
        self.config = config
        self.dataset = dataset
        self.dataset_2d = dataset_2d
        self.batches_per_load = batches_per_load
        # (epoch indices, first step, its batches): the group of batches made last
        self._group: tuple[Tensor, int, list[dict[str, Tensor]]] | None = None
        self.out_dir = Path(out_dir)
        self.device = torch.device(device)
        self.progress = progress
        self.evaluate = evaluate
        self.on_step = on_step
        # batches are functions of their indices: making the next one in a thread while the
        # device runs this step changes no number (see prefetching())
        self.prefetch = prefetch
        self._pool: ThreadPoolExecutor | None = None
        self._checkpointed_at = time.monotonic()  # when the last checkpoint was written
        self._plotted_at = -math.inf  # when losses.png was last drawn, and with how many rows
        self._plotted_rows = 0
        self.distributed = dist.is_available() and dist.is_initialized()
        self.rank = dist.get_rank() if self.distributed else 0
        self.world = dist.get_world_size() if self.distributed else 1
        self.model = model.to(self.device)
        self.faces = model.faces.to(self.device)
        self.step = 0  # global step
        self._epoch = 0  # the epoch whose batches are made (their 2D-only samples' order)
        self.history: list[dict[str, float]] = []
        #: Seconds of training (steps, validation, checkpoints) that the weights hold, summed
        #: over every process that ran the schedule: a resumed run adds its own to the
        #: checkpoint's; the work between a checkpoint and a kill, done again, counts once.
        self.train_seconds = 0.0
        self._seconds_since = (time.perf_counter(), 0.0)  # (this fit's start, seconds before)
        self._make_optimizer(stage=1)

    # ------------------------------------------------------------------ schedule
    def _stage_of(self, epoch: int) -> tuple[int, int]:
        """(stage, epoch within the stage) of a global epoch index."""
        p = self.config.posenet_epochs
        return (1, epoch) if epoch < p else (2, epoch - p)

    def _make_optimizer(self, stage: int) -> None:
        """Optimiser (and DDP wrapper) of a stage: PoseNet alone, then the whole model."""
        module: nn.Module = self.model.posenet if stage == 1 else self.model
        self.net = module
        if self.distributed:
            self.net = nn.parallel.DistributedDataParallel(module, broadcast_buffers=False)
        self._forward = torch.compile(self.net) if self.config.compile else self.net
        cls = torch.optim.RMSprop if self.config.optimizer == "rmsprop" else torch.optim.Adam
        if stage == 1:
            groups = [{"params": list(module.parameters()), "lr_scale": 1.0}]
        else:
            pose_ids = {id(p) for p in self.model.posenet.parameters()}
            groups = [
                {"params": [p for p in module.parameters() if id(p) in pose_ids],
                 "lr_scale": self.config.posenet_lr_scale},
                {"params": [p for p in module.parameters() if id(p) not in pose_ids],
                 "lr_scale": 1.0},
            ]  # fmt: skip
        self.optimizer = _optimizer(cls, groups, self.config.lr)
        self.stage = stage

    def _lr_for(self, stage: int, stage_epoch: int, step_in_epoch: int = 0) -> float:
        cfg = self.config
        if cfg.lr_schedule == "cosine":  # per step, from lr down to lr * lr_decay, per stage
            epochs = cfg.posenet_epochs if stage == 1 else cfg.epochs
            t = (stage_epoch * cfg.steps_per_epoch + step_in_epoch) / max(
                epochs * cfg.steps_per_epoch, 1
            )
            floor = cfg.lr * cfg.lr_decay
            return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))
        if stage == 1:
            return cfg.lr
        decays = sum(stage_epoch >= e for e in cfg.lr_decay_epochs)
        return cfg.lr * cfg.lr_decay**decays

    def _epoch_indices(self, epoch: int) -> Tensor:
        g = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        n = min(self.config.samples_per_epoch, len(self.dataset))
        start = (epoch * self.config.samples_per_epoch) % len(self.dataset)
        idx = (torch.arange(n) + start) % len(self.dataset)
        return idx[torch.randperm(n, generator=g)]

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_path(self) -> Path:
        """The resumable checkpoint file."""
        return self.out_dir / "checkpoint.pt"

    def _checkpoint_due(self, step_in_epoch: int, last_epoch: bool = False) -> bool:
        """Whether to checkpoint after step ``step_in_epoch`` of an epoch.

        ``step_in_epoch == steps_per_epoch`` is the epoch's end; ``last_epoch``: the run's last.
        """
        every = self.config.checkpoint_every
        if step_in_epoch == self.config.steps_per_epoch:
            return every is not None or last_epoch or self._time_for_checkpoint()
        if every is not None:
            return step_in_epoch % every == 0
        return self._time_for_checkpoint()

    def _time_for_checkpoint(self) -> bool:
        return time.monotonic() - self._checkpointed_at >= CHECKPOINT_EVERY_S

    def _save_checkpoint(
        self, epoch: int, step_in_epoch: int, running: dict[str, Any] | None = None
    ) -> None:
        self._checkpointed_at = time.monotonic()
        if self.rank != 0:
            return
        state = {
            "running": running or {"sums": {}, "count": 0},
            "model": self.model.checkpoint(),
            "optimizer": self.optimizer.state_dict(),
            "stage": self.stage,
            "epoch": epoch,
            "step_in_epoch": step_in_epoch,
            "step": self.step,
            "history": self.history,
            "config": asdict(self.config),
            "rng": torch.get_rng_state(),
            "num_threads": torch.get_num_threads(),
            "train_seconds": self._seconds_so_far(),
        }
        atomic_write(self.checkpoint_path(), lambda fh: torch.save(state, fh))

    def _load_checkpoint(self) -> tuple[int, int]:
        path = self.checkpoint_path()
        state = load_torch(path, what="training checkpoint")  # weights_only: runs no code
        needed = ("running", "model", "optimizer", "stage", "epoch", "step_in_epoch", "step",
                  "history", "config", "rng")  # fmt: skip
        if not isinstance(state, dict) or any(k not in state for k in needed):
            raise ValueError(f"{path} is not a meshgraph training checkpoint")
        saved = dict(state["config"])
        saved["lr_decay_epochs"] = tuple(saved["lr_decay_epochs"])
        current = asdict(self.config) | {"lr_decay_epochs": tuple(self.config.lr_decay_epochs)}
        # max_steps is a budget of this run, compile a way to run it and checkpoint_every
        # when to save it, not the schedule; bf16 is missing from checkpoints written before
        # it existed (they ran without it), and so are the 2D-only fields
        for key in ("max_steps", "compile", "checkpoint_every"):
            saved.pop(key, None)
            current.pop(key, None)
        saved.setdefault("bf16", False)
        saved.setdefault("batch_size_2d", 0)
        saved.setdefault("w_2d", 1.0)
        if saved != current:
            raise ValueError(
                f"{self.checkpoint_path()} was written with another training configuration; "
                "use another output folder or the same settings"
            )
        model_config = state["model"].get("config", {}) if isinstance(state["model"], dict) else {}
        began = bool(model_config.get("isotropic_input", False))  # older runs: per-axis
        if began != self.model.config.isotropic_input:
            flag = "--isotropic-input" if began else "--no-isotropic-input"
            raise ValueError(
                f"{path} was trained on 2D input normalised with "
                f"{'one spread for both axes' if began else 'per-axis scores'} "
                f"(isotropic_input={began}): resume it with the same ({flag})"
            )
        threads = state.get("num_threads")
        if threads is not None and threads != torch.get_num_threads():
            warnings.warn(
                f"resuming with {torch.get_num_threads()} threads, {path} was written with "
                f"{threads}: the steps are the same, but the weights will differ in the last "
                "bits from an uninterrupted run (CPU reductions depend on the thread count)",
                RuntimeWarning,
                stacklevel=3,
            )
        self.model.load_state_dict(state["model"]["state_dict"])
        self._make_optimizer(state["stage"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.history = list(state["history"])
        # checkpoints written before the field existed: the epochs' logged seconds (all but
        # the unfinished epoch's steps)
        seconds = state.get("train_seconds")
        if not isinstance(seconds, (int, float)):
            seconds = sum(float(row.get("seconds", 0.0)) for row in self.history)
        self.train_seconds = float(seconds)
        torch.set_rng_state(state["rng"])
        self._running = state["running"]
        return int(state["epoch"]), int(state["step_in_epoch"])

    # ------------------------------------------------------------------ logging
    def _log_epoch(self, row: dict[str, float]) -> None:
        self.history.append(row)
        if self.rank != 0:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        keys: list[str] = []
        for r in self.history:
            keys += [k for k in r if k not in keys]
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=keys)
        writer.writeheader()
        writer.writerows(self.history)
        atomic_write(self.out_dir / "metrics.csv", lambda fh: fh.write(text.getvalue().encode()))
        self._tensorboard(row)
        # the figure takes about 0.25 s: redrawn at most every PLOT_EVERY_S seconds, and at
        # the end of the run (see _fit)
        if time.monotonic() - self._plotted_at >= PLOT_EVERY_S:
            self._plot()

    def _tensorboard(self, row: dict[str, float]) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        try:
            writer = SummaryWriter(str(self.out_dir / "tensorboard"))
        except Exception:
            return
        for k, v in row.items():
            if k != "epoch":
                writer.add_scalar(k, v, int(row["epoch"]))
        writer.close()

    def _plot(self) -> None:
        self._plotted_at = time.monotonic()
        self._plotted_rows = len(self.history)
        try:
            from meshgraph.viz import pyplot

            plt = pyplot()
        except ImportError:
            return
        fig, ax = plt.subplots(figsize=(6, 4))
        epochs = [r["epoch"] for r in self.history]
        for key in sorted({k for r in self.history for k in r if k.startswith("loss_")}):
            ys = [r.get(key, float("nan")) for r in self.history]
            ax.plot(epochs, ys, marker="o", label=key[5:])
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.axvline(self.config.posenet_epochs - 0.5, color="grey", ls="--", lw=0.8)
        ax.legend(fontsize=7)
        from meshgraph.viz import save_figure

        save_figure(fig, self.out_dir / "losses.png", dpi=100)

    # ------------------------------------------------------------------ training
    def fit(self, resume: bool = False, overwrite: bool = False) -> list[dict[str, float]]:
        """Run (or resume) the schedule; returns the per-epoch history.

        Each row (also written to ``metrics.csv``) holds ``epoch``, ``steps``, the mean
        ``loss_*`` terms, ``stage``, ``lr``, the ``evaluate`` metrics and ``seconds`` (the
        wall time of the epoch's steps and validation).

        While it runs, ``out_dir`` is locked (:func:`~meshgraph.io.folder_lock`): a second
        run into the same folder is refused.

        Args:
            resume: Continue from ``checkpoint.pt`` in ``out_dir`` if it exists.
            overwrite: Start afresh even though ``out_dir`` holds another run's
                ``checkpoint.pt`` (it is replaced). Without it, such a folder is refused.

        Raises:
            FolderInUseError: If another live run holds ``out_dir``.
            FileExistsError: If ``out_dir`` holds a run and neither ``resume`` nor
                ``overwrite`` is set.
            ValueError: If the checkpoint to resume is unreadable or from another schedule.
        """
        with_mesh = getattr(self.dataset, "with_mesh", None)
        with folder_lock(self.out_dir, enabled=self.rank == 0):
            try:
                return self._fit(resume, overwrite)
            finally:
                self._stop_prefetching()
                if with_mesh is not None:
                    self.dataset.with_mesh = with_mesh

    def _stop_prefetching(self) -> None:
        """End the background data thread, if any.

        Not only tidiness: once a second thread has run torch operators, the OpenMP team it
        created competes with the training thread's, and a CPU stage-2 step of the body quick
        preset took 250-300 ms instead of 205 ms until that thread ended.
        """
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _seconds_so_far(self) -> float:
        """Training seconds of the schedule up to now (see :attr:`train_seconds`)."""
        since, before = self._seconds_since
        return before + time.perf_counter() - since

    def _fit(self, resume: bool, overwrite: bool) -> list[dict[str, float]]:
        cfg = self.config
        self.stopped = False
        self._checkpointed_at = time.monotonic()
        start_epoch, start_step = 0, 0
        self.train_seconds = 0.0
        with_mesh = getattr(self.dataset, "with_mesh", None)
        if with_mesh is False and cfg.epochs > 0:
            raise ValueError(
                "the dataset makes no mesh (with_mesh=False), which the stage-2 epochs need: "
                "set with_mesh=True (the trainer leaves the mesh out of stage 1 by itself)"
            )
        if resume and self.checkpoint_path().exists():
            start_epoch, start_step = self._load_checkpoint()
        self._seconds_since = (time.perf_counter(), self.train_seconds)
        if not resume:
            # every rank checks, so that all of them stop together (shared output folder)
            if not overwrite:
                refuse_existing_run(self.out_dir)
            torch.manual_seed(cfg.seed)
        bar = self._bar(start_epoch * cfg.steps_per_epoch + start_step)
        for epoch in range(start_epoch, cfg.total_epochs):
            started = time.perf_counter()
            stage, stage_epoch = self._stage_of(epoch)
            if stage != self.stage:
                self._make_optimizer(stage)
            if not self.prefetching(stage):
                self._stop_prefetching()
            for group in self.optimizer.param_groups:
                group["lr"] = group["lr_scale"] * self._lr_for(stage, stage_epoch)
            set_epoch = getattr(self.dataset, "set_epoch", None)
            if set_epoch is not None:
                set_epoch(epoch)
            if with_mesh is not None:  # PoseNet's stage needs no mesh (False is refused above)
                self.dataset.with_mesh = stage == 2
            indices = self._epoch_indices(epoch)
            self._epoch = epoch
            first = start_step if epoch == start_epoch else 0
            running = getattr(self, "_running", None) if first else None
            sums: dict[str, float] = dict(running["sums"]) if running else {}
            count = int(running["count"]) if running else 0
            self.net.train()
            s = first
            pending = self._load_async(indices, s)  # the next batch is made during this step
            while s < cfg.steps_per_epoch:
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    break
                if cfg.lr_schedule == "cosine":
                    for group in self.optimizer.param_groups:
                        group["lr"] = group["lr_scale"] * self._lr_for(stage, stage_epoch, s)
                batch = pending.result() if pending is not None else self._load(indices, s)
                more = s + 1 < cfg.steps_per_epoch and (
                    cfg.max_steps is None or self.step + 1 < cfg.max_steps
                )  # no batch of the next epoch is made before set_epoch
                pending = self._load_async(indices, s + 1) if more else None
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                terms = self._train_step(batch, stage, stage_epoch)
                for k, v in terms.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                self.step += 1
                s += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(stage=stage, epoch=epoch, loss=f"{sums['total'] / count:.4f}")
                if s < cfg.steps_per_epoch and self._checkpoint_due(s):
                    self._save_checkpoint(epoch, s, {"sums": sums, "count": count})
                if self.on_step is not None:
                    self.on_step(self)
            if s < cfg.steps_per_epoch:  # stopped by max_steps: keep the position, log nothing
                self._save_checkpoint(epoch, s, {"sums": sums, "count": count})
                self.stopped = True
                break
            row = self._row(epoch, sums, count)
            row["stage"] = stage
            row["lr"] = self.optimizer.param_groups[-1]["lr"]  # the mesh network's in stage 2
            if self.evaluate is not None and self.rank == 0:
                row.update(self.evaluate(self.model))
            # wall time of the epoch's steps and validation in this process (since the resume
            # for a resumed epoch)
            row["seconds"] = time.perf_counter() - started
            self._log_epoch(row)
            if self._checkpoint_due(s, last_epoch=epoch + 1 == cfg.total_epochs):
                self._save_checkpoint(epoch + 1, 0)
        if bar is not None:
            bar.close()
        self.train_seconds = self._seconds_so_far()
        if self.rank == 0 and self._plotted_rows != len(self.history):
            self._plot()  # the curves up to the last epoch
        if self.rank == 0:  # also when stopped by max_steps: the model as it stands
            self.model.save(self.out_dir / "model.pt")
        return self.history

    def _share(self, indices: Tensor, s: int) -> Tensor:
        """This rank's sample indices of batch ``s`` of the epoch."""
        bs = self.config.batch_size
        return indices[s * bs : (s + 1) * bs][self.rank :: self.world]

    def _load(self, indices: Tensor, s: int) -> dict[str, Tensor]:
        """This rank's share of batch ``s`` of the epoch (pinned when training on CUDA).

        Made with the other batches of its group (see ``batches_per_load``); the calls come
        one at a time (from the training loop or the single data thread).
        """
        n = self.batches_per_load
        first = s - s % n
        group = self._group
        if group is None or group[0] is not indices or group[1] != first:
            steps = range(first, min(first + n, self.config.steps_per_epoch))
            shares = [self._share(indices, t) for t in steps]
            made = stack_samples(self.dataset, torch.cat(shares).tolist())
            sizes = [len(x) for x in shares]
            parts = {k: v.split(sizes) for k, v in made.items()}
            batches = [{k: v[i] for k, v in parts.items()} for i in range(len(sizes))]
            group = (indices, first, batches)
            self._group = group
        batch = group[2][s - first]
        if self.dataset_2d is not None:
            made_2d = stack_samples(self.dataset_2d, self._indices_2d(s).tolist())
            batch = {**batch, **{f"2d_{k}": made_2d[k] for k in _KEYS_2D if k in made_2d}}
        if self.device.type == "cuda":  # pinned host memory copies asynchronously
            batch = {k: v.pin_memory() if v.device.type == "cpu" else v for k, v in batch.items()}
        return batch

    def _indices_2d(self, s: int) -> Tensor:
        """This rank's 2D-only sample indices of batch ``s`` of the current epoch.

        The epoch's order is a seeded permutation of ``dataset_2d`` (another stream than the
        3D samples'), visited ``batch_size_2d`` at a time and wrapping around.
        """
        epoch = self._epoch
        n = len(self.dataset_2d)  # type: ignore[arg-type]
        g = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch + 7_919_000)
        order = torch.randperm(n, generator=g)
        b2 = self.config.batch_size_2d
        picked = order[(torch.arange(b2) + (s * b2) % n) % n]
        return picked[self.rank :: self.world]

    def _load_async(self, indices: Tensor, s: int) -> Future | None:
        """Start making batch ``s`` in the background thread (``None`` without prefetching)."""
        if not self.prefetching(self.stage) or s >= self.config.steps_per_epoch:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meshgraph-data")
        return self._pool.submit(self._load, indices, s)

    def prefetching(self, stage: int) -> bool:
        """Whether the batches of ``stage`` are made in a background thread (see ``prefetch``)."""
        if self.prefetch is not None:
            return bool(self.prefetch)
        # accelerators: the device never waits for host-made data; on the CPU a data thread
        # competes with the step's OpenMP team for the same cores (see ``prefetch``)
        return self.device.type != "cpu"

    @staticmethod
    def _row(epoch: int, sums: dict[str, float], count: int) -> dict[str, float]:
        row: dict[str, float] = {"epoch": epoch, "steps": count}
        row.update({f"loss_{k}": v / max(count, 1) for k, v in sums.items()})
        return row

    def _train_step(
        self, batch: dict[str, Tensor], stage: int, stage_epoch: int
    ) -> dict[str, float]:
        keypoints, visible = batch["keypoints_2d"], batch.get("visible")
        exact = batch.get("exact")  # None: every sample detected
        n3d = len(keypoints)
        if "2d_keypoints_2d" in batch:  # 2D-only samples ride in the same forward pass
            kp2, vis2 = batch["2d_keypoints_2d"], batch.get("2d_visible")
            if visible is not None or vis2 is not None:
                visible = torch.cat([_all_visible(keypoints, visible), _all_visible(kp2, vis2)])
            if exact is not None:  # a detector's keypoints (COCO's annotations are not exact)
                exact = torch.cat([exact, exact.new_zeros(len(kp2))])
            keypoints = torch.cat([keypoints, kp2])
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16):
            if stage == 1:
                x = self.model.network_input(keypoints, visible, exact)
                out = {"joints_3d": self._forward(x)}
            else:
                out = self._forward(keypoints, visible, exact)
        if self.config.bf16:  # the losses in (at least) float32
            out = {k: v.to(torch.promote_types(v.dtype, torch.float32)) for k, v in out.items()}
        out_2d = None
        if len(keypoints) > n3d:
            out_2d = out["joints_3d"][n3d:]
            out = {k: v[:n3d] for k, v in out.items()}
        terms = pose2mesh_losses(out, batch, self.faces, self.config, stage, stage_epoch)
        if out_2d is not None:
            terms["2d"] = reprojection_loss(out_2d, batch["2d_keypoints_2d"], visible[n3d:]
                                            if visible is not None else None)  # fmt: skip
            terms["total"] = terms["total"] + self.config.w_2d * terms["2d"]
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        self.optimizer.step()
        values = {k: float(v.detach()) for k, v in terms.items()}
        if self.distributed:
            t = torch.tensor([values[k] for k in sorted(values)], dtype=torch.float64)
            dist.all_reduce(t)
            values = {
                k: float(x) / self.world for k, x in zip(sorted(values), t.tolist(), strict=True)
            }
        return values

    def _bar(self, initial: int) -> Any:
        if not self.progress or self.rank != 0:
            return None
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover
            return None
        total = self.config.total_epochs * self.config.steps_per_epoch
        if self.config.max_steps is not None:
            total = min(total, self.config.max_steps)
        return tqdm(total=total, initial=initial, desc="training", unit="step", file=sys.stderr)
