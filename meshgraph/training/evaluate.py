"""Evaluation of Pose2Mesh on a held-out synthetic set, and the mean-mesh baseline.

Metrics are reported in millimetres (F-scores as fractions):

* ``mpjpe`` / ``pa_mpjpe``: joints regressed from the predicted mesh (the model's mesh joint
  set: Human3.6M for bodies, Hand-21 for hands) against the same regressor on the ground
  truth mesh, after root alignment / similarity Procrustes;
* ``posenet_mpjpe``: PoseNet's lifted joints of the input joint set;
* ``mpvpe`` / ``pa_mpvpe``: vertices, aligned at the regressed root joint / by Procrustes;
* ``f5`` / ``f15`` (hands, or when asked): F-scores at 5 and 15 mm after Procrustes.

:func:`held_out_sets` makes the three held-out sets every run is measured on (and ``meshgraph
evaluate`` measures again): ground-truth 2D, noisy 2D (the training noise), and detector-like
2D (the training noise plus :func:`~meshgraph.data.noise.default_detector_noise`: missing
joints, left/right swaps, per-joint offsets).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import closing
from typing import Any

import torch
from torch import Tensor

from meshgraph.bodies.base import BodyModel
from meshgraph.data.noise import default_detector_noise
from meshgraph.data.protocol import PoseMeshDataset, stack_samples
from meshgraph.data.synthetic import SyntheticPoseMeshDataset
from meshgraph.geometry import DEFAULT_BOX_ASPECT, regress_joints
from meshgraph.metrics import f_score, mpjpe, mpvpe, n_mpjpe, n_mpvpe, pa_mpjpe, pa_mpvpe
from meshgraph.models.pose2mesh import Pose2Mesh

__all__ = [
    "HELD_OUT_SEED",
    "HELD_OUT_SETS",
    "check_normalisation",
    "evaluate",
    "evaluate_benchmark",
    "evaluate_held_out",
    "format_benchmark",
    "held_out_sets",
    "mean_mesh",
    "mean_mesh_baseline",
]

#: Held-out data use this seed offset (never used for training).
HELD_OUT_SEED = 1_000_003

#: The held-out sets: key -> (label, the dataset's ``noise``, whether detector failures are
#: added, :func:`~meshgraph.data.noise.default_detector_noise` of the joint set).
HELD_OUT_SETS: dict[str, tuple[str, str, bool]] = {
    "gt_2d": ("ground-truth 2D", "none", False),
    "noisy_2d": ("noisy 2D", "auto", False),
    "detector_2d": ("detector-like 2D", "auto", True),
}


def held_out_sets(
    body: BodyModel,
    length: int,
    *,
    joint_set: str,
    seed: int = 0,
    device: str | torch.device | None = None,
    **dataset_options: Any,
) -> dict[str, SyntheticPoseMeshDataset]:
    """The held-out sets of :data:`HELD_OUT_SETS` (seed ``HELD_OUT_SEED + seed``).

    All three hold the same bodies, poses and cameras; they differ only in the 2D input.

    Args:
        body: The body model.
        length: Samples per set.
        joint_set: The input joint set.
        seed: The run's seed (the sets use ``HELD_OUT_SEED + seed``).
        device: Where batches are made.
        **dataset_options: Further :class:`SyntheticPoseMeshDataset` arguments (e.g. a
            ``pose_sampler``).
    """
    return {
        key: SyntheticPoseMeshDataset(
            body,
            length,
            joint_set=joint_set,
            seed=HELD_OUT_SEED + seed,
            noise=noise,
            detector=default_detector_noise(joint_set) if detector else None,
            device=device,
            **dataset_options,
        )
        for key, (_, noise, detector) in HELD_OUT_SETS.items()
    }


def check_normalisation(model: Pose2Mesh, dataset: Any, what: str = "the dataset") -> None:
    """Refuse a dataset whose 2D input is normalised otherwise than ``model`` expects.

    Args:
        model: The network (one without ``config.isotropic_input`` is taken as it is).
        dataset: A dataset with an ``isotropic_input`` attribute (the synthetic and keypoint
            datasets); one without it is taken as it is.
        what: How the message names the dataset.

    Raises:
        ValueError: If ``dataset.isotropic_input`` differs from
            ``model.config.isotropic_input``, or if both are set and ``model.config.aspect``
            is not the datasets' box aspect (:data:`~meshgraph.geometry.DEFAULT_BOX_ASPECT`:
            with one spread for both axes the box's aspect stretches y against x).
    """
    have = getattr(dataset, "isotropic_input", None)
    config = getattr(model, "config", None)
    want = getattr(config, "isotropic_input", None)
    if have is not None and want is not None and bool(have) != bool(want):
        name = {True: "one spread for both axes", False: "per-axis"}
        raise ValueError(
            f"the model expects 2D input normalised with {name[bool(want)]} scores "
            f"(config.isotropic_input={bool(want)}), {what} gives {name[bool(have)]} scores: set "
            f"its isotropic_input to {bool(want)}"
        )
    # The datasets normalise in normalize_keypoints' default box. Its enlargement cancels in
    # the scores, and so does its aspect in per-axis scores, but one spread for both axes
    # keeps the aspect's stretch of y against x.
    aspect = getattr(config, "aspect", None)
    if have and want and aspect is not None and not math.isclose(aspect, DEFAULT_BOX_ASPECT):
        raise ValueError(
            f"the model's 2D input box has aspect {aspect} (config.aspect), {what} normalises "
            f"in a box of aspect {DEFAULT_BOX_ASPECT}: with one spread for both axes "
            "(isotropic_input) the aspect changes the scores"
        )


def _batches(n: int, batch_size: int) -> Iterable[range]:
    for start in range(0, n, batch_size):
        yield range(start, min(start + batch_size, n))


def _predictions(
    model: Pose2Mesh, dataset: Any, n: int, batch_size: int, device: str | torch.device | None
) -> Iterator[tuple[dict[str, Tensor], dict[str, Tensor]]]:
    """``(batch, model output)`` for the first ``n`` samples, the model in eval mode meanwhile.

    Use it in a ``with closing(...)`` block: the model's training mode is restored when the
    loop ends, stops early or raises.
    """
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        for idx in _batches(n, batch_size):
            batch = stack_samples(dataset, idx)
            visible, exact = batch.get("visible"), batch.get("exact")
            # the exactness only where a dataset says it (models of the (keypoints, visible)
            # signature keep working on the others)
            told = {} if exact is None else {"exact": exact.to(device)}
            out = model(
                batch["keypoints_2d"].to(device),
                None if visible is None else visible.to(device),
                **told,
            )
            yield batch, out
    finally:
        model.train(was_training)


def _meshes(dataset: Any, idx: range) -> Tensor:
    """The ground-truth vertices of samples ``idx`` (synthetic sets: made without 2D noise)."""
    make = getattr(dataset, "generate", None)
    batch = make(list(idx)) if make is not None else stack_samples(dataset, idx)
    return batch["vertices"]


def _add(sums: dict[str, float], metrics: dict[str, Tensor]) -> None:
    """Add a batch's per-sample metrics to the running sums."""
    for k, v in metrics.items():
        sums[k] = sums.get(k, 0.0) + float(v.sum())


def _means(sums: dict[str, float], n: int) -> dict[str, float]:
    """Per-sample means: millimetres for the errors (metres summed), F-scores as they are."""
    return {k: (v / n) * (1.0 if k.startswith("f") else 1000.0) for k, v in sums.items()}


@torch.no_grad()
def evaluate(
    model: Pose2Mesh,
    dataset: PoseMeshDataset,
    *,
    num_samples: int | None = None,
    batch_size: int = 64,
    f_scores: bool | None = None,
    device: str | torch.device | None = None,
    size_free: bool = False,
) -> dict[str, float]:
    """Mean metrics (mm) of ``model`` on the first ``num_samples`` samples of ``dataset``.

    Args:
        model: The trained network.
        dataset: A held-out dataset: any that follows the dataset protocol
            (:mod:`meshgraph.data.protocol`: samples with ``keypoints_2d``, ``joints_3d``,
            ``mesh_joints_3d``, ``vertices`` and optionally ``visible``). For the synthetic
            set: another seed than training (unseen poses, shapes and cameras); its noise
            setting decides whether the 2D input is clean or noisy.
        num_samples: Samples to use (default: all); at most ``len(dataset)``.
        batch_size: Evaluation batch size.
        f_scores: Compute F@5 mm and F@15 mm (default: for hands).
        device: Device (default: the model's).
        size_free: Also ``n_mpjpe`` and ``n_mpvpe``, the errors once each prediction takes
            its least-squares scale (:func:`~meshgraph.metrics.n_mpjpe`,
            :func:`~meshgraph.metrics.n_mpvpe`): what remains with the body's size known.

    Raises:
        ValueError: If ``num_samples`` or ``batch_size`` is not positive, or ``num_samples``
            exceeds the dataset, or the dataset's 2D input is normalised otherwise than the
            model expects (:func:`check_normalisation`).
    """
    if num_samples is not None and not 1 <= num_samples <= len(dataset):
        raise ValueError(
            f"num_samples must be in [1, {len(dataset)}] (the dataset's length), got {num_samples}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    check_normalisation(model, dataset)
    n = len(dataset) if num_samples is None else num_samples
    if f_scores is None:
        f_scores = getattr(dataset, "is_hand", model.part == "hand")
    root = model.mesh_joint_set.root
    sums: dict[str, float] = {}
    with closing(_predictions(model, dataset, n, batch_size, device)) as predictions:
        for batch, out in predictions:
            pv = out["vertices"].double().cpu()
            pj = out["mesh_joints_3d"].double().cpu()
            gv = batch["vertices"].double().cpu()  # batches may be made on another device
            gj = batch["mesh_joints_3d"].double().cpu()
            m = {
                "mpjpe": mpjpe(pj, gj, root=root),
                "pa_mpjpe": pa_mpjpe(pj, gj),
                "posenet_mpjpe": mpjpe(
                    out["joints_3d"].double().cpu(),
                    batch["joints_3d"].double().cpu(),
                    root=dataset.joint_set.root,
                ),
                "mpvpe": mpvpe(pv, gv, pj[:, root], gj[:, root]),
                "pa_mpvpe": pa_mpvpe(pv, gv),
            }
            if size_free:
                m["n_mpjpe"] = n_mpjpe(pj, gj, root=root)
                m["n_mpvpe"] = n_mpvpe(pv, gv, pj[:, root], gj[:, root])
            if f_scores:
                m["f5"] = f_score(pv, gv, 0.005)
                m["f15"] = f_score(pv, gv, 0.015)
            _add(sums, m)
    return _means(sums, n)


@torch.no_grad()
def evaluate_benchmark(
    model: Pose2Mesh,
    dataset: Any,
    *,
    batch_size: int = 64,
    device: str | torch.device | None = None,
) -> dict[str, float]:
    """A benchmark's metrics (mm; F-scores as fractions) of ``model`` on a real dataset.

    The mesh joints of the model's prediction (its regressor applied to its mesh) are compared
    with the dataset's ground-truth joints: both root-aligned, then restricted to the
    protocol's ``eval_joints`` (``mpjpe``), or Procrustes-aligned on them (``pa_mpjpe``). The
    vertex metrics (``mpvpe``, ``pa_mpvpe``, and for hands ``f5``/``f15``) are computed only
    where the dataset has meshes of the model's topology (e.g. SMPL's 6,890 vertices for a
    model trained on SMPL); otherwise they are absent from the result, never guessed.

    Args:
        model: The trained network.
        dataset: A :class:`~meshgraph.datasets.KeypointDataset` (or any protocol dataset with
            ``mesh_joints_3d``; a ``protocol`` attribute picks the scored joints).
        batch_size: Evaluation batch size.
        device: Device (default: the model's).

    Returns:
        The metrics, with ``"samples"`` (how many were scored).

    Raises:
        ValueError: If the model's input or mesh joint set is not the dataset's, the
            dataset has no 3D ground truth (COCO), or its 2D input is normalised otherwise
            than the model expects (:func:`check_normalisation`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    name = getattr(dataset, "name", type(dataset).__name__)
    check_normalisation(model, dataset, name)
    mesh_js = getattr(dataset, "mesh_joint_set", None)
    if getattr(dataset, "mesh_joints_3d", True) is None or mesh_js is None:
        raise ValueError(f"{name} has no 3D ground truth to score a model on (2D only)")
    if dataset.joint_set.name != model.joint_set.name:
        raise ValueError(
            f"the model takes {model.joint_set.name} keypoints but {name} gives "
            f"{dataset.joint_set.name}: load the dataset with joint_set="
            f"{model.joint_set.name!r} (--joint-set)"
        )
    if mesh_js.name != model.mesh_joint_set.name:
        raise ValueError(
            f"{name} scores {mesh_js.name} joints but the model regresses "
            f"{model.mesh_joint_set.name} joints from its mesh"
        )
    protocol = getattr(dataset, "protocol", None)
    eval_joints = None if protocol is None else protocol.eval_joints
    with_vertices = bool(getattr(dataset, "has_vertices", False)) and (
        getattr(dataset, "num_vertices", None) == model.num_vertices
    )
    has_joints_3d = getattr(dataset, "joints_3d", True) is not None
    hand = bool(getattr(dataset, "is_hand", model.part == "hand"))
    root = model.mesh_joint_set.root
    sums: dict[str, float] = {}
    n = len(dataset)
    with closing(_predictions(model, dataset, n, batch_size, device)) as predictions:
        for batch, out in predictions:
            pj = out["mesh_joints_3d"].double().cpu()
            gj = batch["mesh_joints_3d"].double().cpu()
            pr, gr = pj[:, root].clone(), gj[:, root].clone()
            pj, gj = pj - pr[:, None], gj - gr[:, None]
            if eval_joints is not None:
                pj, gj = pj[:, list(eval_joints)], gj[:, list(eval_joints)]
            m = {"mpjpe": mpjpe(pj, gj, root=None), "pa_mpjpe": pa_mpjpe(pj, gj)}
            if has_joints_3d and "joints_3d" in batch:
                m["posenet_mpjpe"] = mpjpe(
                    out["joints_3d"].double().cpu(),
                    batch["joints_3d"].double().cpu(),
                    root=dataset.joint_set.root,
                )
            if with_vertices:
                pv = out["vertices"].double().cpu() - pr[:, None]
                gv = batch["vertices"].double().cpu()  # root-relative already
                m["mpvpe"] = mpvpe(pv, gv)
                m["pa_mpvpe"] = pa_mpvpe(pv, gv)
                if hand:
                    m["f5"] = f_score(pv, gv, 0.005)
                    m["f15"] = f_score(pv, gv, 0.015)
            _add(sums, m)
    res = _means(sums, n)
    res["samples"] = float(n)
    return res


def format_benchmark(result: dict[str, float], dataset: Any, model_name: str = "model") -> str:
    """The paper's table row of :func:`evaluate_benchmark`'s result, as Markdown.

    The row has the protocol's metrics in order, ``n/a`` for a metric the model and dataset
    cannot give (e.g. MPVPE of an Anny model on SMPL meshes), then any further metrics.
    """
    protocol = getattr(dataset, "protocol", None)
    first = list(protocol.metrics) if protocol is not None else []
    keys = first + [k for k in result if k not in first and k != "samples"]
    labels = {"mpjpe": "MPJPE", "pa_mpjpe": "PA-MPJPE", "mpvpe": "MPVPE",
              "pa_mpvpe": "PA-MPVPE", "posenet_mpjpe": "PoseNet MPJPE",
              "f5": "F@5 mm", "f15": "F@15 mm"}  # fmt: skip

    def cell(k: str) -> str:
        if k not in result:
            return "n/a"
        return f"{result[k]:.3f}" if k.startswith("f") else f"{result[k]:.1f}"

    name = protocol.name if protocol is not None else getattr(dataset, "name", "dataset")
    head = "| model | dataset | samples | " + " | ".join(labels.get(k, k) for k in keys) + " |"
    rule = "|" + "---|" * (3 + len(keys))
    row = (f"| {model_name} | {name} | {int(result.get('samples', 0))} | "
           + " | ".join(cell(k) for k in keys) + " |")  # fmt: skip
    return "\n".join([head, rule, row])


@torch.no_grad()
def mean_mesh(dataset: PoseMeshDataset, num_samples: int = 512, batch_size: int = 64) -> Tensor:
    """The average root-relative (camera-axes) mesh of the first ``num_samples`` samples."""
    n = min(num_samples, len(dataset))
    total = None
    for idx in _batches(n, batch_size):
        v = _meshes(dataset, idx).double().sum(0)
        total = v if total is None else total + v
    assert total is not None
    return (total / n).float()


@torch.no_grad()
def mean_mesh_baseline(
    train: PoseMeshDataset,
    test: PoseMeshDataset,
    *,
    num_train: int = 512,
    num_test: int | None = None,
    batch_size: int = 64,
    regressor: Tensor | None = None,
    root: int | None = None,
) -> dict[str, float]:
    """MPVPE and PA-MPVPE (mm) of always predicting the average training mesh.

    Works on any datasets of the protocol whose samples carry ``vertices`` (the synthetic
    ones are made without their 2D noise, through their ``generate``). MPVPE aligns the
    template's root joint, regressed from it, to the sample's.

    Args:
        train: Where the average mesh comes from (its first ``num_train`` samples).
        test: What it is scored on (its first ``num_test`` samples; default: all).
        num_train: Training samples averaged.
        num_test: Test samples scored.
        batch_size: Samples per batch.
        regressor: ``(J', V)`` mesh joint regressor (default: ``test.mesh_regressor``).
        root: The root joint's row of ``regressor`` (default: ``test.mesh_joint_set.root``).

    Raises:
        ValueError: If neither ``regressor`` nor ``test.mesh_regressor`` exists, or the same
            for ``root``.
    """
    reg = regressor if regressor is not None else getattr(test, "mesh_regressor", None)
    if reg is None:
        raise ValueError(
            "mean_mesh_baseline needs the mesh joint regressor: pass regressor= (the test set "
            f"{type(test).__name__} has no mesh_regressor)"
        )
    if root is None:
        joint_set = getattr(test, "mesh_joint_set", None)
        if joint_set is None:
            raise ValueError(
                f"mean_mesh_baseline needs the root joint: pass root= (the test set "
                f"{type(test).__name__} has no mesh_joint_set)"
            )
        root = joint_set.root
    template = mean_mesh(train, num_train, batch_size).double()
    n = len(test) if num_test is None else min(num_test, len(test))
    sums = {"mpvpe": 0.0, "pa_mpvpe": 0.0}
    reg = reg.double()
    for idx in _batches(n, batch_size):
        gv = _meshes(test, idx).double()
        pred = template.expand_as(gv)
        gj = regress_joints(gv, reg, validate=False)
        pj = regress_joints(pred, reg, validate=False)
        sums["mpvpe"] += float(mpvpe(pred, gv, pj[:, root], gj[:, root]).sum())
        sums["pa_mpvpe"] += float(pa_mpvpe(pred, gv).sum())
    return {k: 1000.0 * v / n for k, v in sums.items()}


def evaluate_held_out(
    model: Pose2Mesh,
    body: BodyModel,
    num_samples: int = 256,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    size_free: bool = False,
    **dataset_options: Any,
) -> dict[str, dict[str, float]]:
    """:func:`evaluate` on each of :func:`held_out_sets` (keys of :data:`HELD_OUT_SETS`).

    What ``meshgraph train`` reports at the end of a run, ``meshgraph evaluate`` prints and a
    shipped model's provenance records. ``size_free`` adds N-MPJPE and N-MPVPE
    (:func:`evaluate`'s ``size_free``).
    """
    dataset_options.setdefault("isotropic_input", model.config.isotropic_input)
    sets = held_out_sets(body, num_samples, joint_set=model.joint_set.name, seed=seed,
                         device=device, **dataset_options)  # fmt: skip
    return {key: evaluate(model, data, size_free=size_free) for key, data in sets.items()}
