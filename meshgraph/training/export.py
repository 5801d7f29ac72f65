"""Shippable weight files from finished training runs (``meshgraph export-weights``).

:func:`export_pretrained` turns a ``meshgraph train`` run into a file that
:meth:`Pose2Mesh.pretrained <meshgraph.models.Pose2Mesh.pretrained>` loads
(:mod:`meshgraph.models.pretrained`): float16 weights and a provenance record whose metrics
are measured on those weights. It sits in the training layer because it evaluates the model
on the run's held-out sets; the models layer only reads such files.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from meshgraph.io import atomic_write, load_torch
from meshgraph.models.pretrained import _body_matches, _entry, int8_rows

__all__ = ["export_pretrained"]


def export_pretrained(
    run_dir: str | os.PathLike,
    name: str,
    out: str | os.PathLike,
    *,
    evaluate: bool = True,
    full_mesh: bool = False,
    map_samples: int = 512,
    eval_seed: int | None = None,
    int8_min_size: int | None = None,
) -> Path:
    """Write the model of a finished ``meshgraph train`` run as a shippable weight file.

    Reads ``model.pt`` and ``results.json`` from ``run_dir`` and writes ``out`` (atomically):
    the checkpoint with float16 weights (the mesh regressor stays float32) and the
    ``pretrained`` record: ``name``, ``storage``, and the provenance of
    :data:`~meshgraph.models.pretrained.PROVENANCE_KEYS`, taken from ``results.json``
    (``command``, ``commit``, ``seed``, ``data`` (the run configuration), ``train_seconds``,
    ``hardware``) and ``metrics``.

    The metrics are measured on the float16 weights as they ship, with
    :func:`~meshgraph.training.evaluate.evaluate_held_out` on the run's held-out sets (its
    ``test_samples`` and ``seed``): exactly what ``meshgraph evaluate [--hand] --samples N
    --seed S`` prints for the shipped model (``metrics_command`` records that command).
    ``eval_seed`` measures the held-out sets of another seed instead of the run's (``meshgraph
    evaluate --seed``; every seed's held-out sets are unseen in training), so that models
    trained with different seeds are compared on the same samples. The mean-mesh baseline
    comes from the run. With ``evaluate=False`` (tests) the run's own
    float32 metrics are recorded instead.

    With ``full_mesh`` the run's network (trained on a simplified topology, such as Anny's
    1,229-vertex body) answers on the body's full mesh: a
    :class:`~meshgraph.nn.vertex_map.VertexMap` is fitted from its mesh to the full one on
    ``map_samples`` posed bodies of the run's pose distribution and seed
    (:func:`~meshgraph.data.transfer.fit_topology_map`, k=8) and attached with
    :meth:`~meshgraph.models.Pose2Mesh.with_output_map`; the held-out metrics are then
    measured on the full mesh, and the record's ``output_map`` says how the map was made.

    ``int8_min_size`` stores every weight matrix of at least that many entries as int8 rows
    (:func:`~meshgraph.models.pretrained.int8_rows`, in the checkpoint's ``int8_rows``; a
    quarter of float32's bytes, half of float16's): the metrics are then those of the int8
    weights, and ``storage`` names the matrices.

    A run that started from another model's weights (``meshgraph train --init``) adds
    ``init_from`` to the record (JSON: that file's SHA-256 and the command, commit and
    training seconds that made it, recursively); ``train_seconds`` is the last run's alone.

    Raises:
        ValueError: For an unknown name, a run of another kind, an incomplete run (stopped
            early or no provenance) or a model that is not the one ``name`` promises.
        FileNotFoundError: If ``model.pt`` or ``results.json`` is missing.
    """
    entry = _entry(name)
    if int8_min_size is not None and (
        isinstance(int8_min_size, bool) or not isinstance(int8_min_size, int) or int8_min_size < 1
    ):
        raise ValueError(f"int8_min_size must be a positive integer, got {int8_min_size!r}")
    run_dir = Path(run_dir)
    results_path = run_dir / "results.json"
    if not results_path.is_file():
        raise FileNotFoundError(f"{results_path}: no results of a finished run")
    results = json.loads(results_path.read_text())
    if not results.get("complete", False):
        raise ValueError(f"{run_dir}: the run stopped before its schedule ended (resume it)")
    missing = [k for k in ("command", "commit", "hardware", "run") if k not in results]
    if missing:
        raise ValueError(f"{results_path} lacks {', '.join(missing)}: re-run with this version")
    ckpt = load_torch(run_dir / "model.pt", what="Pose2Mesh model file")
    config = ckpt.get("config", {}) if isinstance(ckpt, dict) else {}
    if config.get("joint_set") != entry["joint_set"] or not _body_matches(
        config.get("body"), entry["body"]
    ):
        raise ValueError(
            f"{run_dir}: a {config.get('body')!r} model with {config.get('joint_set')!r} input "
            f"is not the {name} model ({entry['body']!r}, {entry['joint_set']!r})"
        )

    def half(key: str, value: Any) -> Any:
        floating = isinstance(value, torch.Tensor) and value.is_floating_point()
        return value.half() if floating and key != "mesh_regressor" else value

    run = results["run"]
    map_record = None
    if full_mesh:
        ckpt, map_record = _with_full_mesh(ckpt, run, map_samples)
    if int8_min_size is not None:
        big = [
            k
            for k, v in ckpt["state_dict"].items()
            if k != "mesh_regressor" and v.is_floating_point() and v.dim() == 2
            and v.numel() >= int8_min_size
        ]  # fmt: skip
        ckpt["int8_rows"] = {k: int8_rows(ckpt["state_dict"][k]) for k in big}
        ckpt["state_dict"] = {k: v for k, v in ckpt["state_dict"].items() if k not in big}
    ckpt["state_dict"] = {k: half(k, v) for k, v in ckpt["state_dict"].items()}
    if "output_map" in ckpt:  # rows are renormalised on loading: float16 costs micrometres
        ckpt["output_map"] = {**ckpt["output_map"], "weight": ckpt["output_map"]["weight"].half()}
    metrics = {k: results[k] for k in ("gt_2d", "noisy_2d", "detector_2d") if k in results}
    samples, seed = int(run.get("test_samples", 256)), int(run.get("seed", 0))
    if eval_seed is not None:
        if isinstance(eval_seed, bool) or not isinstance(eval_seed, int) or eval_seed < 0:
            raise ValueError(f"eval_seed must be a non-negative integer, got {eval_seed!r}")
        if not evaluate:
            raise ValueError("eval_seed chooses the held-out sets to measure: evaluate=True")
        seed = eval_seed
    metrics_command = None
    if evaluate:
        # another seed's held-out sets need the baseline measured on them too
        metrics = _measure(ckpt, run, samples, seed, baseline=seed != int(run.get("seed", 0)))
        hand = " --hand" if name == "hand" else ""
        metrics_command = f"meshgraph evaluate{hand} --samples {samples} --seed {seed}"
    if "mean_mesh_baseline" in results and "mean_mesh_baseline" not in metrics:
        metrics["mean_mesh_baseline"] = results["mean_mesh_baseline"]
    ckpt["pretrained"] = {
        "name": name,
        "storage": "float16"
        + (f"; int8 rows: {', '.join(ckpt['int8_rows'])}" if ckpt.get("int8_rows") else ""),
        # runs of earlier versions wrote `python -m meshgraph.cli` as the module's file name
        "command": re.sub(r"^cli\.py(?= |$)", "python -m meshgraph.cli", results["command"]),
        "commit": results["commit"],
        "seed": run.get("seed"),
        "data": json.dumps(run, sort_keys=True),
        "train_seconds": float(results["train_seconds"]),
        "hardware": results["hardware"],
        "metrics": json.dumps(metrics, sort_keys=True),
        "metrics_command": metrics_command or "the run's own evaluation (float32 weights)",
    }
    if map_record is not None:
        ckpt["pretrained"]["output_map"] = map_record
    if "init_from" in results:  # a fine-tuned run: what it started from, and how that was made
        ckpt["pretrained"]["init_from"] = json.dumps(results["init_from"], sort_keys=True)
    return atomic_write(out, lambda fh: torch.save(ckpt, fh))


def _run_config(run: dict[str, Any]) -> Any:
    from meshgraph.training.pipeline import RunConfig  # (it imports the trainer)

    known = {f for f in RunConfig.__dataclass_fields__}
    return RunConfig(**{k: v for k, v in run.items() if k in known})


def _with_full_mesh(
    ckpt: dict[str, Any], run: dict[str, Any], samples: int
) -> tuple[dict[str, Any], str]:
    """The run's checkpoint answering on its body's full mesh, and how the map was made."""
    from meshgraph.bodies.registry import create_body
    from meshgraph.data.transfer import fit_topology_map
    from meshgraph.models.pose2mesh import Pose2Mesh
    from meshgraph.training.pipeline import build_body

    cfg = _run_config(run)
    working = build_body(cfg)
    spec = dict(working.spec)
    if spec.get("topology") is None:
        raise ValueError("full_mesh: the run already trained on its body's full mesh")
    target = create_body({**spec, "topology": None})
    seed = int(run.get("seed", 0))
    vmap = fit_topology_map(working, target, num_samples=samples, seed=seed, **cfg.poses)
    model = Pose2Mesh.from_checkpoint(ckpt).with_output_map(
        vmap, target.faces, body=target.name, body_spec=target.spec
    )
    out = model.checkpoint()
    out.update({k: v for k, v in ckpt.items() if k not in out})
    record = (
        f"fit_topology_map({working.name} -> {target.name}, num_samples={samples}, "
        f"k={vmap.k}, ridge=1e-3, seed={seed}, pose options {dict(cfg.poses)})"
    )
    return out, record


def _measure(
    ckpt: dict[str, Any], run: dict[str, Any], samples: int, seed: int, *, baseline: bool = False
) -> dict:
    """The held-out tables of the float16 checkpoint, as ``meshgraph evaluate`` makes them.

    A model with an output map (or ``baseline``) gets the mean-mesh baseline measured here,
    on the held-out sets of ``seed`` (the mean of 512 training-like samples of that seed).
    """
    from meshgraph.models.pose2mesh import Pose2Mesh
    from meshgraph.training.evaluate import evaluate_held_out
    from meshgraph.training.pipeline import build_body  # (it imports the trainer)

    loaded = dict(ckpt)
    loaded["state_dict"] = {
        k: v.float() if isinstance(v, torch.Tensor) and v.dtype == torch.float16 else v
        for k, v in ckpt["state_dict"].items()
    }
    model = Pose2Mesh.from_checkpoint(loaded).eval()
    cfg = _run_config(run)
    if model.output_map is None and not baseline:
        return evaluate_held_out(model, build_body(cfg), samples, seed=seed)
    # the held-out sets of the mesh it answers in, and the baseline on that mesh
    from meshgraph.bodies.registry import create_body
    from meshgraph.data.synthetic import (
        SyntheticPoseMeshDataset,
        default_pose_sampler,
        default_shape_sampler,
    )
    from meshgraph.training.evaluate import held_out_sets, mean_mesh_baseline

    body = build_body(cfg) if model.output_map is None else create_body(model.config.body_spec)
    metrics = evaluate_held_out(model, body, samples, seed=seed)
    js = model.joint_set.name
    poses = default_pose_sampler(body, **cfg.poses) if cfg.poses else None
    shapes = default_shape_sampler(body, **cfg.shapes) if cfg.shapes else None
    train = SyntheticPoseMeshDataset(body, 512, joint_set=js, seed=seed, pose_sampler=poses,
                                     shape_sampler=shapes)  # fmt: skip
    test = held_out_sets(body, samples, joint_set=js, seed=seed)["gt_2d"]
    metrics["mean_mesh_baseline"] = mean_mesh_baseline(train, test)
    return metrics
