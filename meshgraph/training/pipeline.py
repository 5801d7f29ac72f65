"""The Pose2Mesh application end to end: data, training, evaluation, outputs.

Used by ``examples/pose2mesh_body.py``, ``examples/pose2mesh_hand.py`` and ``meshgraph
train``. :func:`run` builds the body model, a training set and a held-out set (another seed:
unseen poses, shapes and cameras), trains in two stages, evaluates with ground-truth and with
noisy 2D input, compares with the mean-mesh baseline, and writes to the output folder:

* ``model.pt`` (``Pose2Mesh.load``), ``checkpoint.pt`` (``--resume``), ``metrics.csv``,
  ``losses.png``;
* ``results.json`` and ``results.csv``: the final metrics table;
* ``init_from.json`` (a run started with ``init_from``): the record of its starting weights,
  which ``--resume`` reads instead of the starting file;
* ``prediction.obj``, ``prediction.ply`` (coloured by the per-vertex error),
  ``ground_truth.obj``, and ``prediction.png``: the 2D input skeleton, the predicted and the
  ground-truth meshes and the per-vertex error map.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from meshgraph.bodies.base import BodyModel
from meshgraph.bodies.joint_sets import JointSet, get_joint_set
from meshgraph.bodies.registry import create_body
from meshgraph.data.noise import default_detector_noise
from meshgraph.data.synthetic import (
    SyntheticPoseMeshDataset,
    default_pose_sampler,
    default_shape_sampler,
)
from meshgraph.io import atomic_write, folder_lock
from meshgraph.models.pose2mesh import Pose2Mesh, Pose2MeshConfig
from meshgraph.training.evaluate import (
    HELD_OUT_SEED,
    HELD_OUT_SETS,
    evaluate,
    held_out_sets,
    mean_mesh_baseline,
)
from meshgraph.training.trainer import TrainConfig, Trainer, refuse_existing_run

__all__ = [
    "HELD_OUT_SEED",
    "PRESETS",
    "RunConfig",
    "add_exactness_channel",
    "build_body",
    "deepen_posenet_state",
    "run",
    "run_isotropic_input",
    "warm_start",
    "widen_joint_state",
]


class _MadeOnce:
    """A dataset whose batches are made once and kept (same indices, same tensors).

    The per-epoch validation evaluates the same 64 held-out samples after every epoch; making
    them took 25 ms of its 105 ms (body quick preset, 2 CPU cores). Everything else is the
    wrapped dataset's.
    """

    def __init__(self, dataset: SyntheticPoseMeshDataset) -> None:
        self._dataset = dataset
        self._made: dict[tuple[int, ...], dict[str, torch.Tensor]] = {}

    def __len__(self) -> int:
        return len(self._dataset)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        key = tuple(int(i) for i in indices)
        if key not in self._made:
            self._made[key] = self._dataset.__getitems__(list(key))
        return self._made[key]


@dataclass
class RunConfig:
    """One Pose2Mesh experiment.

    Attributes:
        kind: ``"body"`` or ``"hand"``.
        body: ``"anny"`` (default), or ``"smpl"``, ``"smplh"``, ``"mano"`` with ``model_path``,
            or any family registered with :func:`~meshgraph.bodies.register_body`.
        side: Hands: ``"R"`` (``None``: the right hand) or ``"L"``.
        model_path: Licensed SMPL/SMPL-H/MANO file or folder (not needed for Anny).
        regressors: SMPL family: joint-set name -> ``.npy`` regressor file (e.g. Pose2Mesh's
            ``J_regressor_h36m_correct.npy``), replacing the built-in approximations.
        anny_topology: Anny topology (``None``: the full mesh).
        joint_set: Input joint set (``None``: ``"coco"`` for bodies, ``"hand"`` for hands).
        poses: Options of the training set's pose sampler
            (:func:`~meshgraph.data.default_pose_sampler`; e.g. ``{"uniform": 0.3}`` for bodies).
            The held-out sets keep the default sampler, so runs stay comparable.
        shapes: Options of the training set's shape sampler
            (:func:`~meshgraph.data.default_shape_sampler`; e.g. ``{"height_sd": 0.065}``
            for Anny). The held-out sets keep the default sampler.
        detector: :class:`~meshgraph.data.noise.DetectorNoise` fields for the training set,
            changed from :func:`~meshgraph.data.noise.default_detector_noise` of the joint
            set (``{}``: that default; ``None``: no detector failures). Train models with
            ``model={"visibility_input": True}`` so that they see which joints are missing.
        clean_fraction: Chance that a training sample keeps its exact 2D keypoints, as if
            neither the noise nor the detector had touched it (the dataset's
            ``clean_fraction``); the held-out sets are unchanged.
        drop_extra: Chance that a training sample's joints beyond COCO-19 (Body-29's heels,
            toes, knuckles and thumbs) are all missing, as from a COCO-17 detector or COCO-17
            ground truth (the dataset's ``drop_extra``); the held-out sets are unchanged.
        model: :class:`~meshgraph.models.Pose2MeshConfig` fields. Without
            ``isotropic_input`` a fresh run normalises its 2D input isotropically, a
            fine-tuning as its starting model did (:func:`run_isotropic_input`) and a resumed
            run as its checkpoint does; the training and held-out sets follow the network.
        train: :class:`~meshgraph.training.TrainConfig` fields.
        data_2d: 2D-only training samples: :class:`~meshgraph.datasets.COCOKeypoints`
            arguments (``{"root": DIR, "split": "train2017"}``; bodies with COCO input), with
            ``train={"batch_size_2d": N}`` samples of it in every step (``None``: none).
        train_samples: Size of the training set (indices cycle through it).
        test_samples: Held-out samples evaluated.
        seed: Seed of the training data and weights.
        device: ``"cpu"`` or ``"cuda"``.
        init_from: Start from a trained model's weights instead of random ones (fine-tuning,
            ``load_from`` in mmpose's terms; ``--resume`` continues a run instead): a
            :meth:`Pose2Mesh.save <meshgraph.models.Pose2Mesh.save>` file such as a run's
            ``model.pt``, or ``"body"``/``"hand"`` for the shipped weights (float16). Its
            network must be the run's (config, topology and hierarchy), except that the run's
            joint set may extend the model's (a COCO-19 body fine-tuned on Body-29:
            :func:`widen_joint_state`); without ``joint_set`` the run takes the model's. An
            output map is dropped; ``isotropic_input`` may differ (the fine-tuning then adapts
            the network to the other normalisation). ``results.json`` records
            the file, its SHA-256 and, where known, how it was made (:func:`warm_start`).
            The schedule is this run's: ``posenet_epochs=0`` skips stage 1.
    """

    kind: str = "body"
    body: str = "anny"
    side: str | None = None
    model_path: str | None = None
    regressors: dict[str, str] = field(default_factory=dict)
    anny_topology: str | None = None
    joint_set: str | None = None
    poses: dict[str, Any] = field(default_factory=dict)
    shapes: dict[str, Any] = field(default_factory=dict)
    detector: dict[str, Any] | None = None
    clean_fraction: float = 0.0
    drop_extra: float = 0.0
    model: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    data_2d: dict[str, Any] | None = None
    train_samples: int = 1_000_000
    test_samples: int = 256
    seed: int = 0
    device: str = "cpu"
    init_from: str | None = None


#: Ready-made runs. ``quick`` finishes in minutes on 2 CPU cores; ``long`` is the at-most-2-hour
#: CPU schedule of the accuracy targets (the body on Anny's 1,229-vertex topology, where a
#: stage-2 step costs a fraction of a second); ``full`` is the full-mesh schedule (hours on a
#: CPU, meant for a GPU). PoseNet uses dropout 0.1, not the paper's 0.5: with fresh synthetic
#: samples every step there is little to regularise. Measured on the body data (PoseNet alone,
#: 32k training samples, clean 2D, cosine schedules): 0.1 reached 42 mm PA-MPJPE on held-out
#: poses after 4,600 steps, 0.5 was at 44 mm after 10,200. MeshNet works in the body frame of
#: the 3D joints (``canonical_frame``, not in the paper): in the body ablation (same PoseNet,
#: data and 512 stage-2 steps) it lowered PA-MPJPE from 100 to 92 mm and MPVPE from 177 to
#: 163 mm (``python -m benchmarks.pose2mesh_ablation``).
#: Settings every preset shares (see above for the measurements behind them).
_MODEL = {"posenet_dropout": 0.1, "coarse_channels": 64, "canonical_frame": True}
_HAND_MODEL = {**_MODEL, "mesh_joint_set": "hand"}
_TRAIN = {"batch_size": 64, "posenet_lr_scale": 0.1}
_COSINE = {**_TRAIN, "lr_schedule": "cosine", "lr_decay": 0.02}
_SIMPLE_BODY = "notoes_collapse10pc"  # Anny's 1,229-vertex body topology

PRESETS: dict[str, dict[str, RunConfig]] = {
    "body": {
        "quick": RunConfig(
            kind="body",
            anny_topology=_SIMPLE_BODY,
            model={**_MODEL, "num_levels": 6, "posenet_width": 1024},
            train={
                **_COSINE,
                "posenet_epochs": 16,
                "epochs": 12,
                "samples_per_epoch": 4096,
                "edge_loss_start": 3,
            },
        ),
        "long": RunConfig(
            kind="body",
            anny_topology=_SIMPLE_BODY,
            model={**_MODEL, "num_levels": 6, "posenet_width": 1024},
            train={
                **_COSINE,
                "posenet_epochs": 24,
                "epochs": 16,
                "samples_per_epoch": 16384,
                "edge_loss_start": 4,
            },
        ),
        "full": RunConfig(
            kind="body",
            model={**_MODEL, "num_levels": 8, "posenet_width": 2048},
            train={
                **_COSINE,
                "posenet_epochs": 20,
                "epochs": 15,
                "samples_per_epoch": 32768,
                "edge_loss_start": 7,
            },
        ),
    },
    "hand": {
        "quick": RunConfig(
            kind="hand",
            model={**_HAND_MODEL, "num_levels": 6, "posenet_width": 1024},
            train={
                **_TRAIN,
                "posenet_epochs": 3,
                "epochs": 5,
                "samples_per_epoch": 4096,
                "lr_decay_epochs": (4,),
                "edge_loss_start": 2,
            },
        ),
        "long": RunConfig(
            kind="hand",
            model={**_HAND_MODEL, "num_levels": 6, "posenet_width": 1024},
            train={
                **_COSINE,
                "posenet_epochs": 8,
                "epochs": 12,
                "samples_per_epoch": 16384,
                "edge_loss_start": 4,
            },
        ),
        "full": RunConfig(
            kind="hand",
            model={**_HAND_MODEL, "num_levels": 7, "posenet_width": 2048},
            train={
                **_COSINE,
                "posenet_epochs": 30,
                "epochs": 40,
                "samples_per_epoch": 32768,
                "edge_loss_start": 15,
            },
        ),
    },
}


def build_body(cfg: RunConfig) -> BodyModel:
    """The body model of a run, through the body registry (:func:`~meshgraph.bodies.create_body`).

    Anny by default; the SMPL family from ``model_path``; any registered family by its name.
    """
    side = cfg.side if cfg.kind == "hand" else None  # None: the registry's default hand side
    spec = {"family": cfg.body, "part": cfg.kind, "side": side, "topology": cfg.anny_topology}
    return create_body(spec, model_path=cfg.model_path, regressors=dict(cfg.regressors) or None)


def _file_sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def warm_start(model: Pose2Mesh, source: str | os.PathLike) -> dict[str, Any]:
    """Copy the weights of a trained model into ``model`` (fine-tuning's starting point).

    Args:
        model: The run's freshly built network.
        source: A :meth:`Pose2Mesh.save <meshgraph.models.Pose2Mesh.save>` file (a run's
            ``model.pt``), or ``"body"``/``"hand"``: the shipped weights
            (:meth:`Pose2Mesh.pretrained <meshgraph.models.Pose2Mesh.pretrained>`, float16
            values). A model answering through an output map gives its network's own mesh.

    The networks must match, but for three ways to grow: a joint set that extends the
    source's (:func:`widen_joint_state`), a deeper PoseNet (:func:`deepen_posenet_state`) and
    an exactness channel the source lacks (:func:`add_exactness_channel`).

    Returns:
        The record of the source: ``file``, ``sha256`` and, where known (a shipped file's
        provenance, or the ``results.json`` beside a run's ``model.pt``), the ``command``,
        ``commit`` and ``train_seconds`` that made it, and its own ``init_from``; and how the
        network grew (``widened_from``, ``deepened_from``, ``exactness_added``).

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a Pose2Mesh model, or its network differs from ``model``'s
            (the message names the differing config fields, or the mesh).
    """
    from meshgraph.models.pretrained import PRETRAINED, load_pretrained, weights_dir

    record: dict[str, Any] = {}
    name = os.fspath(source)
    if name in PRETRAINED and not Path(name).is_file():
        path = weights_dir() / PRETRAINED[name]["file"]
        trained = load_pretrained(name, full_mesh=False)
        info = trained.provenance
        record.update({k: info.get(k) for k in ("command", "commit", "train_seconds")})
        if "init_from" in info:
            record["init_from"] = json.loads(info["init_from"])
    else:
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no model file to start from (init_from)")
        trained = Pose2Mesh.load(path).without_output_map()
        results = path.parent / "results.json"
        if results.is_file():
            try:
                made = json.loads(results.read_text())
            except (OSError, ValueError):
                made = {}
            record.update({k: made[k] for k in ("command", "commit", "train_seconds",
                                                "init_from") if k in made})  # fmt: skip
    ours, theirs = asdict(model.config), asdict(trained.config)
    # the input normalisation is no part of the network's shape: a fine-tuning may change it
    differ = [k for k in ours if ours[k] != theirs.get(k) and k != "isotropic_input"]
    widen = "joint_set" in differ and _extends(ours["joint_set"], theirs["joint_set"])
    their_blocks = theirs["posenet_blocks"]  # files saved before the field load with 2
    deepen = "posenet_blocks" in differ and ours["posenet_blocks"] > their_blocks
    # files saved before the field load without the channel
    tell = "exactness_input" in differ and ours["exactness_input"] and not theirs["exactness_input"]
    differ = [k for k in differ if not (k == "joint_set" and widen)
              and not (k == "posenet_blocks" and deepen)
              and not (k == "exactness_input" and tell)]  # fmt: skip
    if differ:
        detail = ", ".join(f"{k}: {theirs.get(k)!r} (the run: {ours[k]!r})" for k in differ)
        raise ValueError(f"{path}: its network differs from the run's in {detail}")
    if trained.topology.num_vertices != model.topology.num_vertices or not torch.equal(
        trained.topology.faces.cpu(), model.topology.faces.cpu()
    ):
        raise ValueError(
            f"{path}: its mesh ({trained.topology.num_vertices} vertices) is not the run's "
            f"({model.topology.num_vertices} vertices, or other faces)"
        )
    # the clusters and graphs (not lambda_max, which may differ in the last bits by machine)
    a, b = trained.hierarchy.to_arrays(), model.hierarchy.to_arrays()
    same = [k for k in b if k[0] == "c" or k.endswith(("_indptr", "_indices"))]
    if any(k not in a or not np.array_equal(a[k], b[k]) for k in same):
        raise ValueError(
            f"{path}: its mesh hierarchy (sizes {trained.hierarchy.sizes}) is not the run's "
            f"(sizes {model.hierarchy.sizes}, or other clusters)"
        )
    reference = next(model.parameters())
    state = {k: v.to(dtype=reference.dtype) if v.is_floating_point() else v
             for k, v in trained.state_dict().items()}  # fmt: skip
    if widen:
        state = widen_joint_state(state, model, get_joint_set(theirs["joint_set"]))
        record["widened_from"] = theirs["joint_set"]
    if deepen:
        state = deepen_posenet_state(state, model, their_blocks)
        record["deepened_from"] = their_blocks
    if tell:
        state = add_exactness_channel(state, model)
        record["exactness_added"] = True
    model.load_state_dict(state)
    return {"file": str(path), "sha256": _file_sha256(path), **record}


def _init_config(source: str | os.PathLike | None) -> dict[str, Any]:
    """The network config of the model a run starts from (``{}`` if unknown or unreadable).

    An unreadable or missing file is left to :func:`warm_start`, which says why.
    """
    from meshgraph.io import load_torch
    from meshgraph.models.pretrained import PRETRAINED, weights_dir

    if source is None:
        return {}
    name = os.fspath(source)
    path = Path(name)
    if name in PRETRAINED and not path.is_file():
        path = weights_dir() / PRETRAINED[name]["file"]
    try:  # the config only: the weights stay on disk (warm_start reads them once)
        ckpt = load_torch(path, what="Pose2Mesh model file", mmap=True)
    except (OSError, ValueError):
        return {}
    config = ckpt.get("config") if isinstance(ckpt, dict) else None
    return dict(config) if isinstance(config, dict) else {}


def _init_joint_set(source: str | os.PathLike | None, body: BodyModel) -> str | None:
    """The input joint set of the model a run starts from, if ``body`` provides it.

    A fine-tuning that names no joint set keeps its starting model's (``--init body`` takes
    the shipped body's Body-29); an unreadable or missing file is left to :func:`warm_start`.
    """
    from meshgraph.models.pretrained import PRETRAINED

    if source is None:
        return None
    name = os.fspath(source)
    if name in PRETRAINED and not Path(name).is_file():
        found = PRETRAINED[name]["joint_set"]
    else:
        found = _init_config(name).get("joint_set")
    return found if found in body.joint_set_names else None


def _resumed_isotropic_input(out: Path) -> bool | None:
    """The input normalisation of the run being resumed in ``out`` (``None``: no checkpoint).

    A run keeps the normalisation it began with, whatever its starting model file holds now
    (or whether it is still there); runs begun before the option: per-axis.
    """
    from meshgraph.io import load_torch

    path = out / "checkpoint.pt"
    if not path.is_file():
        return None
    try:
        state = load_torch(path, what="training checkpoint", mmap=True)  # its config only
    except (OSError, ValueError):
        return None  # the trainer says what is wrong with it
    model = state.get("model") if isinstance(state, dict) else None
    config = model.get("config") if isinstance(model, dict) else None
    return bool(config.get("isotropic_input", False)) if isinstance(config, dict) else None


def run_isotropic_input(cfg: RunConfig) -> bool:
    """Whether a run's network scores its 2D input with one spread for both axes.

    ``cfg.model["isotropic_input"]`` where given; else a fine-tuning keeps its starting
    model's normalisation (models saved before the option: per-axis), and a fresh run takes
    the isotropic one (:func:`~meshgraph.geometry.normalize_keypoints`; on the body data it
    lowered PoseNet's held-out errors by about 4 %, ``docs/pose2mesh.rst``).

    Args:
        cfg: The run.
    """
    if "isotropic_input" in cfg.model:
        return bool(cfg.model["isotropic_input"])
    if cfg.init_from is not None:
        return bool(_init_config(cfg.init_from).get("isotropic_input", False))
    return True


def _extends(run: str, source: str) -> bool:
    """Whether joint set ``run`` is ``source`` with more joints after it (COCO-19 in Body-29)."""
    new, old = get_joint_set(run), get_joint_set(source)
    return new.num_joints > old.num_joints and new.extends(old)


def add_exactness_channel(
    state: dict[str, torch.Tensor], model: Pose2Mesh
) -> dict[str, torch.Tensor]:
    """A state dict trained without the exactness channel made to fit ``model``'s.

    ``model`` has ``config.exactness_input``; the trained network had otherwise the same
    input channels. PoseNet's first ``Linear`` (the one layer that reads the channel) gets zero
    weights on it, every other weight stays: the network first answers exact and detected
    keypoints alike, exactly as the trained one did, and the channel's weights then learn from
    a training set with exact samples (``clean_fraction``).

    Args:
        state: The trained model's state dict.
        model: The run's network.

    Raises:
        ValueError: If ``model`` has no exactness channel, or the state's input layers do not
            have one channel fewer than ``model``'s.
    """
    if not model.config.exactness_input:
        raise ValueError("the run's model has no exactness channel (config.exactness_input)")
    j, c = model.joint_set.num_joints, model.posenet.in_channels  # c counts the new channel
    key = "posenet.inp.weight"  # (width, J * channels), joint-major
    w = state.get(key)
    if w is None or w.dim() != 2 or w.shape[1] != j * (c - 1):
        got = None if w is None else tuple(w.shape)
        raise ValueError(
            f"{key}: expected {j * (c - 1)} inputs ({j} joints, one channel fewer than the "
            f"run's {c}), got shape {got}"
        )
    grouped = w.reshape(w.shape[0], j, c - 1)
    widened = torch.cat([grouped, torch.zeros_like(grouped[..., :1])], dim=2)
    return {**state, key: widened.reshape(w.shape[0], j * c)}


def widen_joint_state(
    state: dict[str, torch.Tensor], model: Pose2Mesh, source: str | JointSet
) -> dict[str, torch.Tensor]:
    """A state dict for ``source``'s joints made to fit ``model``, whose joint set extends it.

    ``model``'s joint set must start with ``source``'s joints, in its order (Body-29 starts
    with COCO-19). Every tensor whose size differs only by the joint count along one dimension
    (PoseNet's first and last layers, MeshNet's lift to the coarse mesh) keeps its values for
    the old joints. The new joints' inputs get zero weights, so that PoseNet first answers
    exactly as before when they are missing; their outputs copy those of the old joint each
    hangs from by a bone (Body-29: the ankle or wrist), so that PoseNet first puts a heel or
    knuckle where its ankle or wrist is, and learns the offset. MeshNet's joint graph gains
    the new joints' edges, which changes its first answers (measured on a quick-preset body,
    the new joints missing: vertices 57 mm apart on average): fine-tuning adapts it.

    Raises:
        ValueError: If the joint sets do not extend, or a tensor differs in another way.
    """
    old = get_joint_set(source)
    new = model.joint_set
    if not _extends(new.name, old.name):
        raise ValueError(
            f"the {new.name} joint set does not extend {old.name}: its first "
            f"{old.num_joints} joints must be {old.name}'s, in order"
        )
    j_old, j_new = old.num_joints, new.num_joints
    parent = new.anchors(j_old)
    target = model.state_dict()
    out = dict(state)
    for key, value in state.items():
        want = target.get(key)
        if want is None or want.shape == value.shape:
            continue
        dims = [d for d in range(value.dim()) if value.shape[d] != want.shape[d]]
        d = dims[0] if len(dims) == 1 else -1
        if d < 0 or value.shape[d] % j_old or want.shape[d] != value.shape[d] // j_old * j_new:
            raise ValueError(
                f"{key}: shape {tuple(value.shape)} does not widen to {tuple(want.shape)} "
                f"from {j_old} to {j_new} joints"
            )
        per = value.shape[d] // j_old
        grown = value.new_zeros(want.shape)
        grown.narrow(d, 0, value.shape[d]).copy_(value)
        # a Linear's weight is (out, in): new inputs (dim 1) stay zero, new outputs (dim 0,
        # and the bias) copy their parent joint's
        if d == 0:
            for k, p in enumerate(parent):
                grown.narrow(0, (j_old + k) * per, per).copy_(value.narrow(0, p * per, per))
        out[key] = grown
    return out


def deepen_posenet_state(
    state: dict[str, torch.Tensor], model: Pose2Mesh, blocks: int
) -> dict[str, torch.Tensor]:
    """A state dict whose PoseNet has ``blocks`` residual blocks made to fit ``model``'s deeper one.

    The trained blocks keep their places (``posenet.blocks.0`` to ``blocks - 1``); each block
    ``model`` has beyond them takes ``model``'s own freshly initialised weights, except that
    its last ``Linear`` gets zero weights and bias. A residual block computes ``x +
    layers(x)``, so a new one starts as the identity and the deeper PoseNet first answers
    exactly as the trained one did; its last layer's gradient is not zero (its input is not),
    so fine-tuning grows it from there.

    Args:
        state: The trained model's state dict.
        model: The run's network (``config.posenet_blocks`` more than ``blocks``).
        blocks: The trained PoseNet's residual blocks.

    Raises:
        ValueError: If ``model``'s PoseNet is not deeper, or ``state`` does not hold exactly
            ``blocks`` PoseNet blocks.
    """
    new = model.config.posenet_blocks
    if not 1 <= blocks < new:
        raise ValueError(
            f"cannot deepen PoseNet from {blocks} to {new} residual blocks: the run's must be "
            "deeper"
        )
    prefix = "posenet.blocks."
    held = {int(k[len(prefix) :].split(".")[0]) for k in state if k.startswith(prefix)}
    if held != set(range(blocks)):
        raise ValueError(
            f"the trained state has PoseNet blocks {sorted(held)}, expected 0 to {blocks - 1}"
        )
    target = model.state_dict()
    dtype = state["posenet.inp.weight"].dtype  # the new tensors take the trained ones' dtype
    out = dict(state)
    for i in range(blocks, new):
        block = f"{prefix}{i}."
        layers = model.posenet.blocks[i].layers
        last = max(j for j, m in enumerate(layers) if isinstance(m, nn.Linear))
        for key, value in target.items():
            if key.startswith(block):
                value = value.to(dtype) if value.is_floating_point() else value
                zero = key.startswith(f"{block}layers.{last}.")
                out[key] = torch.zeros_like(value) if zero else value.clone()
    return out


def _figure(path: Path, batch: dict, pred: torch.Tensor, faces: np.ndarray, bones: list) -> None:
    """2D input, predicted mesh, ground truth and per-vertex error, all seen from the camera."""
    from meshgraph.viz import draw_mesh, pyplot, save_figure

    plt = pyplot()
    gt = batch["vertices"][0].numpy()
    pv = pred[0].numpy()
    err = np.linalg.norm(pv - gt, axis=1) * 1000
    # put both meshes at the ground-truth depth so that the perspective looks natural
    depth = np.array([0.0, 0.0, float(batch["root"][0, 2])])
    fig, axes = plt.subplots(1, 4, figsize=(14, 4))
    kp = batch["keypoints_2d_pixels"][0].numpy()
    ax = axes[0]
    for a, b in bones:
        ax.plot(kp[[a, b], 0], kp[[a, b], 1], "-", color="tab:blue", lw=1.2)
    ax.plot(kp[:, 0], kp[:, 1], ".", color="tab:red")
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("2D input (noisy, pixels)", fontsize=9)
    draw_mesh(axes[1], pv + depth, faces)
    axes[1].set_title("prediction", fontsize=9)
    draw_mesh(axes[2], gt + depth, faces)
    axes[2].set_title("ground truth", fontsize=9)
    coll = draw_mesh(axes[3], gt + depth, faces, values=err, vmin=0.0)
    axes[3].set_title(f"per-vertex error (mean {err.mean():.1f} mm)", fontsize=9)
    fig.colorbar(coll, ax=axes[3], shrink=0.8, label="mm")
    save_figure(fig, path, dpi=100)


def run(
    cfg: RunConfig,
    out_dir: str | os.PathLike,
    *,
    resume: bool = False,
    progress: bool = True,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train and evaluate one Pose2Mesh model; see the module docstring for the outputs.

    The output folder is locked while the run lasts (a second run into it is refused), and a
    folder that already holds a run is refused unless ``resume`` or ``overwrite`` is set.

    Args:
        cfg: The experiment.
        out_dir: The output folder.
        resume: Continue the run in ``out_dir`` from its ``checkpoint.pt``.
        progress: Show a progress bar.
        overwrite: Start afresh in a folder that holds another run (its files are replaced).

    Returns:
        The results (metrics with clean and noisy 2D, baseline, sizes, timings).

    Raises:
        FolderInUseError: If another live run holds ``out_dir``.
        FileExistsError: If ``out_dir`` holds a run and neither ``resume`` nor ``overwrite``
            is set.
    """
    import torch.distributed as dist

    from meshgraph.devices import reuse_cpu_memory

    reuse_cpu_memory()  # large batches: reuse freed memory instead of page-faulting anew
    rank0 = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
    with folder_lock(out_dir, enabled=rank0):
        return _run(cfg, Path(out_dir), resume=resume, progress=progress, overwrite=overwrite)


def _data_2d(cfg: RunConfig, joint_set: str) -> Any:
    """The run's 2D-only training samples (``cfg.data_2d``), or ``None``."""
    if cfg.data_2d is None:
        return None
    if joint_set != "coco":
        raise ValueError(f"2D-only data (COCO) needs COCO input joints, the run uses {joint_set}")
    from meshgraph.datasets import COCOKeypoints

    options = {"split": "train2017", **cfg.data_2d}
    if "root" not in options:
        raise ValueError("data_2d needs 'root', the COCO folder (holding annotations/)")
    data = COCOKeypoints(**options)
    print(f"2D-only training samples: {data!r}", flush=True)
    return data


_INIT_RECORD = "init_from.json"


def _init_weights(model: Pose2Mesh, source: str, out: Path, resume: bool) -> dict[str, Any]:
    """:func:`warm_start` for a fresh run; a resumed one keeps the record it started with.

    A fresh run writes the record to ``out/init_from.json``. Resuming from ``checkpoint.pt``
    reads it back instead of the source file, whose weights the checkpoint replaces anyway:
    the source may be gone or changed since, and the record stays the one the run began from.

    Raises:
        ValueError: If the run being resumed started from another source.
    """
    saved = out / _INIT_RECORD
    if resume and (out / "checkpoint.pt").is_file() and saved.is_file():
        try:
            kept = json.loads(saved.read_text())
            began, record = kept["source"], kept["record"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{saved}: unreadable record of the run's init_from ({exc})") from exc
        if began != source:
            raise ValueError(
                f"{out}: the run being resumed started from {began!r}, not {source!r} (--init)"
            )
        return dict(record)
    record = warm_start(model, source)
    text = json.dumps({"source": source, "record": record}, indent=2)
    atomic_write(saved, lambda fh: fh.write(text.encode()))
    return record


def _run(
    cfg: RunConfig, out: Path, *, resume: bool, progress: bool, overwrite: bool
) -> dict[str, Any]:
    from meshgraph.io import save_obj, save_ply

    if not resume and not overwrite:  # before minutes of set-up, not only in the trainer
        refuse_existing_run(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    body = build_body(cfg)
    joint_set = cfg.joint_set or _init_joint_set(cfg.init_from, body) or body.input_joint_set
    mesh_js = body.mesh_joint_set
    fields = {k: v for k, v in cfg.model.items() if k not in ("joint_set", "mesh_joint_set")}
    resumed = (
        _resumed_isotropic_input(out) if resume and "isotropic_input" not in cfg.model else None
    )
    fields["isotropic_input"] = run_isotropic_input(cfg) if resumed is None else resumed
    model_cfg = Pose2MeshConfig(joint_set=joint_set, mesh_joint_set=mesh_js, **fields)
    torch.manual_seed(cfg.seed)
    model = Pose2Mesh.from_body(body, model_cfg)
    if cfg.init_from is not None:
        init = _init_weights(model, cfg.init_from, out, resume)
    else:
        init = None
        if not resume:  # a run started afresh here (--overwrite) leaves no other's record
            (out / _INIT_RECORD).unlink(missing_ok=True)
    train_cfg = TrainConfig(seed=cfg.seed, **cfg.train)
    # the data are made on the training device: a GPU run never waits on the CPU for them
    data_kw = {"joint_set": joint_set, "device": cfg.device,
               "isotropic_input": model_cfg.isotropic_input}  # fmt: skip
    poses = default_pose_sampler(body, **cfg.poses) if cfg.poses else None
    detector = None if cfg.detector is None else default_detector_noise(joint_set, **cfg.detector)
    shapes = default_shape_sampler(body, **cfg.shapes) if cfg.shapes else None
    train = SyntheticPoseMeshDataset(body, cfg.train_samples, seed=cfg.seed, pose_sampler=poses,
                                     shape_sampler=shapes, detector=detector,
                                     clean_fraction=cfg.clean_fraction,
                                     drop_extra=cfg.drop_extra, **data_kw)  # fmt: skip
    tests = held_out_sets(body, cfg.test_samples, seed=cfg.seed, **data_kw)
    test_clean, test_noisy = tests["gt_2d"], tests["noisy_2d"]
    n_params = sum(p.numel() for p in model.parameters())
    print(f"{body.name}: {body.num_vertices} vertices, hierarchy {model.hierarchy.sizes}, "
          f"{n_params / 1e6:.2f} M parameters, {joint_set} input", flush=True)  # fmt: skip

    validation = _MadeOnce(test_clean)  # noise-free: the same batch after every epoch

    def eval_small(m: Pose2Mesh) -> dict[str, float]:
        res = evaluate(m, validation, num_samples=min(64, cfg.test_samples))  # type: ignore[arg-type]
        return {f"val_{k}": v for k, v in res.items()}

    data_2d = _data_2d(cfg, joint_set)
    if data_2d is not None:
        data_2d.isotropic_input = model_cfg.isotropic_input
    trainer = Trainer(model, train, train_cfg, out, device=cfg.device, progress=progress,
                      evaluate=eval_small, dataset_2d=data_2d)  # fmt: skip
    trainer.fit(resume=resume, overwrite=overwrite)
    model.eval()
    held_out = {key: evaluate(model, data) for key, data in tests.items()}
    clean = held_out["gt_2d"]
    baseline = mean_mesh_baseline(train, test_clean, num_test=cfg.test_samples)
    results: dict[str, Any] = {
        "body": body.name,
        "num_vertices": body.num_vertices,
        "joint_set": joint_set,
        "hierarchy_sizes": model.hierarchy.sizes,
        "layout": model_cfg.layout,
        "variant": model_cfg.variant,
        "parameters": n_params,
        "train_seconds": trainer.train_seconds,  # a resumed run's included
        "total_seconds": time.perf_counter() - t0,
        "steps": trainer.step,
        "complete": not trainer.stopped,  # False: stopped by max_steps (resumable)
        **({} if init is None else {"init_from": init}),
        **held_out,
        "mean_mesh_baseline": baseline,
        "baseline_over_model_mpvpe": baseline["mpvpe"] / max(clean["mpvpe"], 1e-9),
        "run": asdict(cfg),
        **_provenance(cfg.device),
    }
    text = json.dumps(results, indent=2, default=str)
    atomic_write(out / "results.json", lambda fh: fh.write(text.encode()))
    table = io.StringIO(newline="")
    writer = csv.writer(table)
    writer.writerow(["input", *clean.keys()])
    for key, (label, _, _) in HELD_OUT_SETS.items():
        writer.writerow([label, *(f"{v:.4f}" for v in held_out[key].values())])
    writer.writerow(["mean-mesh baseline", *(f"{baseline.get(k, float('nan')):.4f}"
                                             for k in clean)])  # fmt: skip
    atomic_write(out / "results.csv", lambda fh: fh.write(table.getvalue().encode()))
    # one predicted mesh and a figure
    batch = {k: v.cpu() for k, v in test_noisy.__getitems__([0]).items()}
    with torch.no_grad():
        pred = model(batch["keypoints_2d"].to(cfg.device), batch["visible"].to(cfg.device),
                     batch["exact"].to(cfg.device))  # fmt: skip
        pred = pred["vertices"].cpu()
    faces = body.faces.cpu().numpy()
    err = (pred[0] - batch["vertices"][0]).norm(dim=-1)
    heat = (err / err.max().clamp_min(1e-9)).numpy()
    save_obj(out / "prediction.obj", pred[0], faces)
    save_obj(out / "ground_truth.obj", batch["vertices"][0], faces)
    save_ply(out / "prediction.ply", pred[0], faces,
             colors=np.stack([heat, 0.2 * np.ones_like(heat), 1 - heat], 1))  # fmt: skip
    try:
        _figure(out / "prediction.png", batch, pred, faces, list(get_joint_set(joint_set).bones))
    except ImportError:
        pass
    print(format_table(results), flush=True)
    return results


def command_line(argv: list[str]) -> str:
    """The command as a user would type it again.

    ``meshgraph train ...`` for the console script, ``python -m meshgraph.cli train ...`` for
    the module, else the script's file name and its arguments (quoted where needed).
    """
    import shlex

    first = Path(argv[0]) if argv else Path("python")
    if first.name == "cli.py" and first.parent.name == "meshgraph":
        head = ["python", "-m", "meshgraph.cli"]
    else:
        head = [first.name]
    return shlex.join([*head, *argv[1:]])


def _provenance(device: str) -> dict[str, Any]:
    """How the run was made: the command, the source commit, the hardware and versions."""
    import platform
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    commit = "unknown (not a git checkout)"
    try:
        if not (root / ".git").exists():  # an installed package: no source tree to ask
            raise OSError("not a checkout")
        git = {"cwd": root, "capture_output": True, "text": True, "timeout": 10}
        head = subprocess.run(["git", "rev-parse", "HEAD"], check=True, **git).stdout.strip()
        status = ["git", "status", "--porcelain", "--untracked-files=no"]
        dirty = subprocess.run(status, **git).stdout
        commit = head + (" (with uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.SubprocessError):
        pass
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            names = [ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    hardware = f"{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    if device.startswith("cuda") and torch.cuda.is_available():
        hardware += f", {torch.cuda.get_device_name(torch.device(device))}"
    return {
        "command": command_line(sys.argv),
        "commit": commit,
        "hardware": hardware,
        "device": device,
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
    }


def format_table(results: dict[str, Any]) -> str:
    """The metrics table printed at the end of a run (millimetres)."""
    keys = list(results["gt_2d"])
    head = f"{'input':<22}" + "".join(f"{k:>14}" for k in keys)
    lines = [head, "-" * len(head)]
    for key, (label, _, _) in HELD_OUT_SETS.items():
        if key not in results:  # runs of earlier versions
            continue
        lines.append(f"{label:<22}" + "".join(f"{results[key][k]:>14.3f}" for k in keys))
    base = results["mean_mesh_baseline"]
    lines.append(f"{'mean-mesh baseline':<22}" + "".join(
        f"{base[k]:>14.3f}" if k in base else f"{'-':>14}" for k in keys))  # fmt: skip
    lines.append(f"MPVPE: baseline / model = {results['baseline_over_model_mpvpe']:.2f}x; "
                 f"{results['steps']} steps in {results['train_seconds']:.0f} s")  # fmt: skip
    return "\n".join(lines)


def preset(kind: str, name: str = "quick", **overrides: Any) -> RunConfig:
    """A copy of a preset with fields replaced (``model``/``train`` dicts are merged)."""
    base = PRESETS[kind][name]
    model = {**base.model, **overrides.pop("model", {})}
    train = {**base.train, **overrides.pop("train", {})}
    return replace(base, model=model, train=train, **overrides)
