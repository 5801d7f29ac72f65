"""Trained Pose2Mesh weights that ship inside the package, and the tool that makes them.

``Pose2Mesh.pretrained("body")`` (COCO-19 input, Anny's body) and
``Pose2Mesh.pretrained("hand")`` (Hand-21 input, Anny's right hand) load the files of
:data:`PRETRAINED` from ``meshgraph/weights/``. A shipped file is an ordinary
:meth:`~meshgraph.models.Pose2Mesh.save` checkpoint with its floating weights stored as
float16 (half the size; they are cast back to float32 on loading) and a ``pretrained``
record: its name and its provenance (the command and commit that trained it, the seed, the
data configuration, the training time and hardware, and its metrics on the held-out sets).
:func:`export_pretrained` writes one from a finished ``meshgraph train`` run.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from meshgraph.io import atomic_write, load_torch

__all__ = ["PRETRAINED", "export_pretrained", "load_pretrained", "pretrained_info", "weights_dir"]

#: The shipped models: file name, input joint set, and the body model they were trained on.
PRETRAINED: dict[str, dict[str, str]] = {
    "body": {"file": "pose2mesh-body.pt", "joint_set": "coco", "body": "anny"},
    "hand": {"file": "pose2mesh-hand.pt", "joint_set": "hand", "body": "anny-hand.R"},
}

#: Keys a provenance record must hold (see :func:`export_pretrained`).
PROVENANCE_KEYS = ("command", "commit", "seed", "data", "train_seconds", "hardware", "metrics")


def weights_dir() -> Path:
    """The folder of the shipped weight files (``meshgraph/weights`` in the installed package)."""
    return Path(__file__).resolve().parent.parent / "weights"


def _entry(name: str) -> dict[str, str]:
    if not isinstance(name, str) or name not in PRETRAINED:
        raise ValueError(f"no pretrained model {name!r}: choose one of {sorted(PRETRAINED)}")
    return PRETRAINED[name]


def _body_matches(recorded: str | None, expected: str) -> bool:
    """Anny's body under any topology (``anny``, ``anny-notoes_collapse10pc``), or the hand."""
    if recorded is None:
        return False
    if expected == "anny":
        return recorded == "anny" or (recorded.startswith("anny-") and "hand" not in recorded)
    return recorded == expected or recorded.startswith(expected + "-")


def _read(name: str, directory: str | os.PathLike | None, map_location: Any) -> dict[str, Any]:
    entry = _entry(name)
    path = Path(directory) if directory is not None else weights_dir()
    path = path / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the pretrained {name} weights are missing (this installation of meshgraph "
            f"ships none for {name!r}); train a model with `meshgraph train --kind {name}` and "
            "load it with Pose2Mesh.load"
        )
    ckpt = load_torch(path, what=f"pretrained {name} weight file", map_location=map_location)
    info = ckpt.get("pretrained") if isinstance(ckpt, dict) else None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: not a pretrained meshgraph weight file (no provenance record)")
    if info.get("name") != name:
        raise ValueError(f"{path} holds the {info.get('name')!r} model, not {name!r}")
    config = ckpt.get("config") if isinstance(ckpt.get("config"), dict) else {}
    if config.get("joint_set") != entry["joint_set"]:
        raise ValueError(
            f"{path}: the {name} model should take {entry['joint_set']!r} joints, this one "
            f"takes {config.get('joint_set')!r}"
        )
    if not _body_matches(config.get("body"), entry["body"]):
        raise ValueError(
            f"{path}: the {name} model should be trained on {entry['body']!r}, this one was "
            f"trained on {config.get('body')!r}"
        )
    return {"path": path, "ckpt": ckpt, "info": info}


_SIDES = {"R": "R", "right": "R", "L": "L", "left": "L"}


def load_pretrained(
    name: str = "body",
    *,
    side: str | None = None,
    directory: str | os.PathLike | None = None,
    map_location: Any = "cpu",
) -> Any:
    """The shipped Pose2Mesh model ``name`` (``"body"`` or ``"hand"``), in eval mode.

    Its provenance record is the model's ``provenance`` attribute.

    Args:
        name: Which model.
        side: Hands: ``"right"``/``"R"`` (the default, the shipped weights) or
            ``"left"``/``"L"``: the right hand's weights mirrored, exactly
            (:meth:`~meshgraph.models.Pose2Mesh.mirrored`).
        directory: Where the weight files lie (default: :func:`weights_dir`).
        map_location: As for :meth:`~meshgraph.models.Pose2Mesh.load`.

    Raises:
        ValueError: For an unknown name or side, a side for the body, or a file that holds
            another model (another name, joint set or body model), no provenance record, or
            unusable weights.
        FileNotFoundError: If the file is missing.
    """
    from meshgraph.models.pose2mesh import Pose2Mesh

    _entry(name)
    if side is not None and name != "hand":
        raise ValueError(f"side={side!r}: only the hand has sides, not the {name}")
    if side is not None and side not in _SIDES:
        raise ValueError(f"side={side!r} is not a side: 'right' ('R') or 'left' ('L')")

    read = _read(name, directory, map_location)
    ckpt, path = read["ckpt"], read["path"]
    state = ckpt.get("state_dict")
    if isinstance(state, dict):  # float16 storage -> float32
        ckpt = dict(ckpt)
        ckpt["state_dict"] = {
            k: v.float() if isinstance(v, torch.Tensor) and v.dtype == torch.float16 else v
            for k, v in state.items()
        }
    try:
        model = Pose2Mesh.from_checkpoint(ckpt)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise ValueError(f"{path}: not a usable Pose2Mesh model ({err})") from None
    if side is not None and _SIDES[side] == "L":
        model = model.mirrored()
    model.provenance = read["info"]
    return model.eval()


def pretrained_info(name: str = "body", *, directory: str | os.PathLike | None = None) -> dict:
    """The provenance record of the shipped model ``name`` (see :func:`export_pretrained`)."""
    return _read(name, directory, "cpu")["info"]


def export_pretrained(
    run_dir: str | os.PathLike, name: str, out: str | os.PathLike, *, evaluate: bool = True
) -> Path:
    """Write the model of a finished ``meshgraph train`` run as a shippable weight file.

    Reads ``model.pt`` and ``results.json`` from ``run_dir`` and writes ``out`` (atomically):
    the checkpoint with float16 weights (the mesh regressor stays float32) and the
    ``pretrained`` record: ``name``, ``storage``, and the provenance of
    :data:`PROVENANCE_KEYS`, taken from ``results.json`` (``command``, ``commit``, ``seed``,
    ``data`` (the run configuration), ``train_seconds``, ``hardware``) and ``metrics``.

    The metrics are measured on the float16 weights as they ship, with
    :func:`~meshgraph.training.evaluate.evaluate_held_out` on the run's held-out sets (its
    ``test_samples`` and ``seed``): exactly what ``meshgraph evaluate [--hand] --samples N
    --seed S`` prints for the shipped model (``metrics_command`` records that command). The
    mean-mesh baseline comes from the run. With ``evaluate=False`` (tests) the run's own
    float32 metrics are recorded instead.

    Raises:
        ValueError: For an unknown name, a run of another kind, an incomplete run (stopped
            early or no provenance) or a model that is not the one ``name`` promises.
        FileNotFoundError: If ``model.pt`` or ``results.json`` is missing.
    """
    entry = _entry(name)
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

    ckpt["state_dict"] = {k: half(k, v) for k, v in ckpt["state_dict"].items()}
    run = results["run"]
    metrics = {k: results[k] for k in ("gt_2d", "noisy_2d", "detector_2d") if k in results}
    samples, seed = int(run.get("test_samples", 256)), int(run.get("seed", 0))
    metrics_command = None
    if evaluate:
        metrics = _measure(ckpt, run, samples, seed)
        hand = " --hand" if name == "hand" else ""
        metrics_command = f"meshgraph evaluate{hand} --samples {samples} --seed {seed}"
    if "mean_mesh_baseline" in results:
        metrics["mean_mesh_baseline"] = results["mean_mesh_baseline"]
    ckpt["pretrained"] = {
        "name": name,
        "storage": "float16",
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
    return atomic_write(out, lambda fh: torch.save(ckpt, fh))


def _measure(ckpt: dict[str, Any], run: dict[str, Any], samples: int, seed: int) -> dict:
    """The held-out tables of the float16 checkpoint, as ``meshgraph evaluate`` makes them."""
    from meshgraph.models.pose2mesh import Pose2Mesh
    from meshgraph.training.evaluate import evaluate_held_out
    from meshgraph.training.pipeline import RunConfig, build_body

    loaded = dict(ckpt)
    loaded["state_dict"] = {
        k: v.float() if isinstance(v, torch.Tensor) and v.dtype == torch.float16 else v
        for k, v in ckpt["state_dict"].items()
    }
    model = Pose2Mesh.from_checkpoint(loaded).eval()
    known = {f for f in RunConfig.__dataclass_fields__}
    cfg = RunConfig(**{k: v for k, v in run.items() if k in known})
    body = build_body(cfg)
    return evaluate_held_out(model, body, samples, seed=seed)
