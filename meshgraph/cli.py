"""The ``meshgraph`` command.

Subcommands:

* ``meshgraph coarsen MESH``: build a heavy-edge hierarchy of a mesh file, save it (``.npz``)
  and a picture of its levels (PNG), print the level sizes.
* ``meshgraph train --kind body|hand``: train and evaluate Pose2Mesh on synthetic data
  (``--preset quick`` in minutes on a CPU, ``--preset long`` at most 2 hours on a CPU,
  ``--preset full`` the full-mesh schedule for a GPU;
  ``--resume`` continues a killed run; under ``torchrun`` it trains on every process).
* ``meshgraph evaluate [MODEL.pt]``: metrics on the held-out synthetic sets (ground-truth,
  noisy and detector-like 2D; without a model: the shipped body model, or ``--hand``);
  ``--dataset NAME --root DIR``: a real benchmark's table row (:mod:`meshgraph.datasets`).
* ``meshgraph predict [MODEL.pt] KEYPOINTS.json|.npy``: a mesh (.obj, .ply) and a PNG from 2D
  keypoints in pixels (without a model: the shipped body model, or the hand with ``--hand``);
  COCO-17, OpenPose, BlazePose, mmpose/rtmlib and COCO-annotation files are converted
  (:mod:`meshgraph.keypoint_formats`), one mesh per person.
* ``meshgraph export-weights RUN --name body|hand``: a finished run's model as a shippable
  weight file (float16, with its provenance; :mod:`meshgraph.models.pretrained`).

Every failure ends as one line, ``meshgraph COMMAND: error: ...``, naming the file or the
option, with exit status 2; ``MESHGRAPH_DEBUG=1`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from meshgraph import __version__
from meshgraph.coarsening import LAYOUTS, MeshHierarchy
from meshgraph.io import load_mesh
from meshgraph.keypoint_formats import KEYPOINT_FORMATS
from meshgraph.mesh import MeshTopology

__all__ = ["main"]


def _coarsen(args: argparse.Namespace) -> int:
    import numpy as np

    verts, faces = load_mesh(args.mesh, merge_vertices=args.merge_vertices)
    repeated = 0 if args.merge_vertices is not None else len(verts) - len(np.unique(verts, axis=0))
    if repeated:
        print(
            f"note: {repeated} of the {len(verts)} vertices repeat another's position (faces "
            "stored apart, or split along seams), so the graph has cuts there; "
            "--merge-vertices welds them",
            file=sys.stderr,
        )
    mesh = MeshTopology(faces, num_vertices=len(verts))
    t = time.perf_counter()
    h = MeshHierarchy.build(
        mesh, args.levels, layout=args.layout, compat=args.compat, cache_dir=args.cache_dir
    )
    seconds = time.perf_counter() - t
    out = Path(args.out) if args.out else Path(args.mesh).with_suffix("")
    out.mkdir(parents=True, exist_ok=True)
    h.save(out / "hierarchy.npz")
    summary = {
        "mesh": str(args.mesh),
        "num_vertices": mesh.num_vertices,
        "num_faces": mesh.num_faces,
        "layout": h.layout,
        "compat": h.compat,
        "sizes": h.sizes,
        "real_sizes": h.real_sizes,
        "seconds": seconds,
    }
    if not args.no_plot:
        from meshgraph.viz import plot_hierarchy

        plot_hierarchy(h, verts, out / "levels.png")
    (out / "hierarchy.json").write_text(json.dumps(summary, indent=2))
    print(f"{mesh}")
    print(f"{h.num_levels} levels ({h.layout}) in {seconds:.3f} s")
    for level, (size, real) in enumerate(zip(h.sizes, h.real_sizes, strict=True)):
        fake = f"  ({size - real} fake)" if size != real else ""
        print(f"  level {level}: {size}{fake}")
    print(f"saved {out / 'hierarchy.npz'}, {out / 'hierarchy.json'}", end="")
    print("" if args.no_plot else f", {out / 'levels.png'}")
    return 0


def _init_distributed(device: str) -> bool:
    """Join the torchrun process group when launched by torchrun (``WORLD_SIZE > 1``)."""
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return True


def _train(args: argparse.Namespace) -> int:
    from meshgraph.training.pipeline import preset, run

    train: dict = {}
    for key in ("epochs", "posenet_epochs", "samples_per_epoch", "batch_size", "lr", "max_steps",
                "edge_loss_start"):  # fmt: skip
        value = getattr(args, key)
        if value is not None:
            train[key] = value
    for key in ("bf16", "compile"):
        if getattr(args, key):
            train[key] = True
    train.update(_loss_weights(args.loss_weight))
    model: dict = {"layout": args.layout, "variant": args.variant}
    if args.posenet_width is not None:
        model["posenet_width"] = args.posenet_width
    if args.posenet_blocks is not None:
        model["posenet_blocks"] = args.posenet_blocks
    if args.canonical_frame:
        model["canonical_frame"] = True
    if args.conv is not None:
        model["conv"] = args.conv
    if args.spiral_length is not None:
        if args.conv != "spiral":
            raise ValueError("--spiral-length needs --conv spiral")
        model["spiral_length"] = args.spiral_length
    if args.detector:
        model["visibility_input"] = True
    if args.exactness_input:
        model["exactness_input"] = True
    if args.isotropic_input is not None:
        model["isotropic_input"] = args.isotropic_input
    overrides: dict = {"model": model, "train": train, "device": args.device, "seed": args.seed}
    if args.body != "anny":
        overrides.update(body=args.body, model_path=args.model_path, anny_topology=None,
                         regressors=_regressors(args.regressor))  # fmt: skip
    elif args.topology is not None:
        overrides["anny_topology"] = None if args.topology == "full" else args.topology
    if args.joint_set is not None:
        overrides["joint_set"] = args.joint_set
    if args.test_samples is not None:
        overrides["test_samples"] = args.test_samples
    poses = _pose_options(args)
    if poses:
        overrides["poses"] = poses
    if args.height_sd is not None:
        overrides["shapes"] = {"height_sd": args.height_sd}
    if args.detector:
        overrides["detector"] = _detector_options(args.detector_option)
    elif args.detector_option:
        raise ValueError("--detector-option changes the detector failures: give --detector")
    if args.clean_fraction is not None:
        overrides["clean_fraction"] = args.clean_fraction
    if args.drop_extra is not None:
        overrides["drop_extra"] = args.drop_extra
    if args.init is not None:
        overrides["init_from"] = args.init
    if args.coco is not None:
        overrides["data_2d"] = {"root": str(args.coco), "split": args.coco_split}
        train["batch_size_2d"] = args.batch_2d
        if args.w_2d is not None:
            train["w_2d"] = args.w_2d
    elif args.w_2d is not None:
        raise ValueError("--w-2d weighs the --coco samples: give --coco DIR")
    _device_option(args.device)
    kind = args.kind or ("hand" if args.body == "mano" else "body")
    cfg = preset(kind, args.preset, **overrides)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    distributed = _init_distributed(args.device)
    try:
        out = args.out or f"outputs/pose2mesh_{kind}"
        run(cfg, out, resume=args.resume, progress=not args.no_progress, overwrite=args.overwrite)
        if distributed:  # no rank tears the group down while another still uses it
            import torch.distributed as dist

            dist.barrier()
    finally:
        if distributed:
            import torch.distributed as dist

            dist.destroy_process_group()
    return 0


def _device_option(device: str) -> None:
    """Refuse a ``--device`` this machine lacks before any work starts."""
    from meshgraph.devices import check_device

    try:
        check_device(device)
    except ValueError as err:
        raise ValueError(f"--device {device}: {err}") from None


def _name_values(
    items: list[str] | None, flag: str, form: str, names: object = None
) -> list[tuple[str, str]]:
    """Repeated ``NAME=VALUE`` options -> pairs; ``names``: the allowed names (any if None).

    A malformed item or an unknown name is an error that says ``flag takes form``.
    """
    pairs = []
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value or (names is not None and name not in names):
            raise ValueError(f"{flag} takes {form}, got {item!r}")
        pairs.append((name, value))
    return pairs


def _regressors(items: list[str] | None) -> dict[str, str]:
    """``NAME=PATH`` options -> a dict (SMPL-family joint regressors)."""
    form = "NAME=PATH (e.g. h36m=J_regressor_h36m.npy)"
    return dict(_name_values(items, "--regressor", form))


def _detector_options(items: list[str] | None) -> dict[str, float | int]:
    """``NAME=VALUE`` options -> :class:`~meshgraph.data.noise.DetectorNoise` field changes."""
    from meshgraph.data.noise import DetectorNoise

    fields = DetectorNoise.__dataclass_fields__
    form = f"NAME=VALUE with NAME one of {sorted(fields)}"
    out: dict[str, float | int] = {}
    for name, value in _name_values(items, "--detector-option", form, fields):
        try:
            out[name] = int(value) if name == "min_visible" else float(value)
        except ValueError:
            item = f"{name}={value}"
            raise ValueError(f"--detector-option {item!r}: {value!r} is not a number") from None
    DetectorNoise(**out)  # ranges: the message names the field
    return out


#: ``--loss-weight`` names -> :class:`~meshgraph.training.trainer.TrainConfig` fields.
_LOSS_WEIGHTS = {"vertex": "w_vertex", "normal": "w_normal", "edge": "w_edge",
                 "joint": "w_joint", "pose": "w_pose"}  # fmt: skip


def _loss_weights(items: list[str] | None) -> dict[str, float]:
    """``NAME=VALUE`` options -> loss-weight fields of the training configuration."""
    form = f"NAME=VALUE with NAME one of {sorted(_LOSS_WEIGHTS)}"
    out: dict[str, float] = {}
    for name, value in _name_values(items, "--loss-weight", form, _LOSS_WEIGHTS):
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(
                f"--loss-weight {name}={value}: {value!r} is not a non-negative finite number"
            )
        out[_LOSS_WEIGHTS[name]] = weight
    return out


def _pose_options(args: argparse.Namespace) -> dict[str, float]:
    """The ``--pose-blend/--pose-uniform/--pose-mirror`` that were given (sampler fields)."""
    poses = {k: getattr(args, f"pose_{k}") for k in ("blend", "uniform", "mirror")}
    return {k: v for k, v in poses.items() if v is not None}


def _add_pose_options(p: argparse.ArgumentParser, what: str) -> None:
    """``--pose-blend/--pose-uniform/--pose-mirror`` (``what``: whose poses they shape)."""
    p.add_argument(
        "--pose-blend",
        type=_finite_float,
        default=None,
        help=f"bodies: fraction of {what} poses between two canonical poses",
    )
    p.add_argument(
        "--pose-uniform",
        type=_finite_float,
        default=None,
        help=f"bodies: fraction of {what} poses uniform within the joint limits",
    )
    p.add_argument(
        "--pose-mirror",
        type=_finite_float,
        default=None,
        help=f"bodies: fraction of {what} poses mirrored, left and right swapped (0.5: a "
        "symmetric mixture)",
    )
    p.add_argument(
        "--height-sd",
        type=_finite_float,
        default=None,
        help=f"Anny: the height phenotype of {what} bodies normal around 0.5 with this "
        "standard deviation instead of uniform in [0, 1] (0.065: adult statures spread "
        "about 10 cm, as in a population; uniform: 31 cm)",
    )


def _body_for(
    model_cfg: object, model_path: str | None, regressors: dict[str, str] | None = None
) -> object:
    """Rebuild the body model a trained Pose2Mesh was made for (from its config's spec)."""
    from meshgraph.bodies.registry import create_body, parse_body_name

    spec = model_cfg.body_spec or parse_body_name(model_cfg.body)  # type: ignore[attr-defined]
    return create_body(spec, model_path=model_path, regressors=regressors or None)


def _shipped(args: argparse.Namespace, map_location: str = "cpu") -> object:
    """The shipped model that ``--hand`` and ``--left`` choose (the body without them)."""
    from meshgraph.models.pose2mesh import Pose2Mesh

    if args.left and not args.hand:
        raise ValueError("--left is for the hand: add --hand")
    side = "left" if args.left else None
    return Pose2Mesh.pretrained("hand" if args.hand else "body", side=side,
                                map_location=map_location, full_mesh=not args.small_mesh,
                                flip_test=args.flip_test)  # fmt: skip


def _evaluate(args: argparse.Namespace) -> int:
    from meshgraph.models.pose2mesh import Pose2Mesh
    from meshgraph.training.evaluate import HELD_OUT_SETS, evaluate_held_out

    _device_option(args.device)
    if args.exact and args.dataset is None:
        raise ValueError(
            "--exact goes with --dataset: the held-out sets say themselves which 2D is exact"
        )
    if args.model is None:
        model = _shipped(args, map_location=args.device)
    else:
        if args.hand or args.left:
            raise ValueError("--hand and --left pick the shipped hand model: give no MODEL.pt")
        model = Pose2Mesh.load(args.model, map_location=args.device)
        if args.small_mesh:
            model = model.without_output_map()
        if args.flip_test:
            model = model.flip_tested()
    poses = _pose_options(args)
    if args.dataset is not None:
        if poses or args.height_sd is not None:
            raise ValueError(
                "--pose-* and --height-sd shape the synthetic held-out sets, not --dataset"
            )
        if args.size_free or args.drop_extra is not None:
            flag = "--size-free" if args.size_free else "--drop-extra"
            raise ValueError(f"{flag} is for the synthetic held-out sets, not --dataset")
        return _evaluate_dataset(args, model)
    body = _body_for(model.config, args.model_path, _regressors(args.regressor))
    options = {}
    if poses:  # held-out poses from another mixture (the same seed: the same bodies, cameras)
        from meshgraph.data.synthetic import default_pose_sampler

        options["pose_sampler"] = default_pose_sampler(body, **poses)  # type: ignore[arg-type]
    if args.drop_extra is not None:  # the same samples, Body-29's extra joints missing
        options["drop_extra"] = args.drop_extra
    if args.height_sd is not None:  # the same bodies, poses and cameras, other statures
        from meshgraph.data.synthetic import default_shape_sampler

        options["shape_sampler"] = default_shape_sampler(body, height_sd=args.height_sd)  # type: ignore[arg-type]
    rows = evaluate_held_out(model, body, args.samples, seed=args.seed, device=args.device,  # type: ignore[arg-type]
                             size_free=args.size_free, **options)  # fmt: skip
    keys = list(next(iter(rows.values())))
    print(f"{'input':<18}" + "".join(f"{k:>14}" for k in keys))
    for key, res in rows.items():
        label = HELD_OUT_SETS[key][0]
        print(f"{label:<18}" + "".join(f"{res[k]:>14.3f}" for k in keys))
    if args.json:
        from meshgraph.io import atomic_write

        text = json.dumps(rows, indent=2)
        atomic_write(args.json, lambda fh: fh.write(text.encode()))
    return 0


def _evaluate_dataset(args: argparse.Namespace, model: object) -> int:
    """``meshgraph evaluate --dataset NAME --root DIR``: the benchmark's table row."""
    from meshgraph.datasets import load_dataset
    from meshgraph.training.evaluate import evaluate_benchmark, format_benchmark

    if args.root is None:
        raise ValueError("--dataset needs --root, the dataset's folder")
    if args.exact and str(args.keypoints) != "gt":
        raise ValueError(
            f"--exact says the 2D keypoints are the ground truth's: --keypoints {args.keypoints} "
            "are a detector's"
        )
    dataset = load_dataset(
        args.dataset,
        args.root,
        joint_set=model.joint_set.name,  # type: ignore[attr-defined]
        keypoints=args.keypoints,
        smpl_path=args.smpl_path,
        regressors=_regressors(args.dataset_regressor) or None,
        limit=args.limit,
    )
    dataset.isotropic_input = model.config.isotropic_input  # type: ignore[attr-defined]
    dataset.exact = args.exact
    _warn_if_exact_unread(args, model)
    print(f"{dataset!r}", file=sys.stderr)
    result = evaluate_benchmark(model, dataset, device=args.device)  # type: ignore[arg-type]
    name = "shipped " + ("hand" if args.hand else "body") if args.model is None else args.model.name
    print(format_benchmark(result, dataset, name))
    if args.json:
        from meshgraph.io import atomic_write

        text = json.dumps({"dataset": args.dataset, "keypoints": str(args.keypoints),
                           "metrics": result}, indent=2)  # fmt: skip
        atomic_write(args.json, lambda fh: fh.write(text.encode()))
    return 0


def _model_for(args: argparse.Namespace, path: str | None) -> object:
    """``predict``'s model: ``MODEL.pt`` when given, else the shipped one ``--hand`` picks."""
    from meshgraph.models.pose2mesh import Pose2Mesh

    if path is None:  # the weights that ship with meshgraph
        return _shipped(args, map_location=args.device)
    if args.hand or args.left:
        flag = "--hand" if args.hand else "--left"
        raise ValueError(f"{flag} picks the shipped hand model: give no MODEL.pt with it")
    model = Pose2Mesh.load(path, map_location=args.device)
    if args.small_mesh:
        model = model.without_output_map()
    return model.flip_tested() if args.flip_test else model


def _warn_if_exact_unread(args: argparse.Namespace, model: object) -> None:
    """Warn when ``--exact`` is given to a model that has no exactness channel to read it."""
    if args.exact and not model.config.exactness_input:  # type: ignore[attr-defined]
        import warnings

        warnings.warn(
            "the model was trained without --exactness-input: --exact changes nothing",
            stacklevel=2,
        )


def _predict(args: argparse.Namespace) -> int:
    from meshgraph.keypoint_formats import _read_sequence, read_keypoints

    _device_option(args.device)
    if args.image is not None:
        return _predict_images(args)
    if args.keypoints_file is not None:
        raise ValueError("--keypoints goes with --image; give a keypoint file as KEYPOINTS")
    if not args.inputs:
        raise ValueError(
            "give KEYPOINTS (a .json or .npy file, or a folder of them), or --image PATH"
        )
    if len(args.inputs) > 2:
        raise ValueError(f"expected [MODEL.pt] KEYPOINTS, got {len(args.inputs)} paths")
    model = _model_for(args, args.inputs[0] if len(args.inputs) == 2 else None)
    _warn_if_exact_unread(args, model)
    args.keypoints = args.inputs[-1]
    source = Path(args.keypoints)
    joint_set = model.joint_set.name  # type: ignore[attr-defined]
    frames = _read_sequence(source, joint_set, args.layout)  # a folder, a video file, ...
    if frames is not None:
        return _predict_frames(args, model, source, frames)
    kp = read_keypoints(source, joint_set, layout=args.layout)
    try:
        people, pred, skipped = _predict_people(model, kp, args)
    except TypeError as err:
        raise TypeError(f"{args.keypoints}: {err}") from None
    if kp.shape[0] == 1 and skipped:  # the file's one person: its reason is the error
        raise ValueError(f"{args.keypoints}: {skipped[0][1]}")
    import warnings

    for person, why in skipped:
        warnings.warn(f"{args.keypoints}: person {person} skipped: {why}", stacklevel=2)
    if not people:
        raise ValueError(f"{args.keypoints}: no person in the file can be predicted")
    out = Path(args.out) if args.out else source.with_suffix("")
    _save_people(out, model, pred, people, tagged=kp.shape[0] > 1)
    print(f"saved {out}/mesh*.obj, .ply, overlay*.png, camera.json")
    return 0


def _predict_frames(
    args: argparse.Namespace, model: object, source: Path, frames: list[tuple[str, object]]
) -> int:
    """``meshgraph predict`` on a folder of keypoint files or a video file: one folder per frame.

    The people of consecutive frames are predicted together, in batches of about 64.
    """
    from meshgraph.io import atomic_write

    out = Path(args.out) if args.out else source.parent / f"{source.stem}_meshes"
    record: list[dict] = []
    bar = _progress_bar(args, len(frames), "frame")
    try:
        start = 0
        while start < len(frames):
            stop, count = start, 0
            while stop < len(frames) and (count == 0 or count + len(frames[stop][1]) <= 64):  # type: ignore[arg-type]
                count += len(frames[stop][1])  # type: ignore[arg-type]
                stop += 1
            _predict_frame_group(args, model, frames[start:stop], out, record, bar)
            start = stop
    finally:
        if bar is not None:
            bar.close()
    text = json.dumps({"source": str(source), "frames": record}, indent=1)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "frames.json", lambda fh: fh.write(text.encode()))
    done = sum(1 for f in record if f["people"])
    skipped = sum(len(f["skipped"]) for f in record)
    empty = sum(1 for f in record if not f["people"] and not f["skipped"])
    print(f"saved meshes of {done} of {len(frames)} frames in {out}/ (FRAME/mesh*.obj, .ply, "
          "overlay*.png, camera.json; frames.json lists the people)")  # fmt: skip
    if empty or skipped:
        print(f"  {empty} frames without people; {skipped} people skipped (reasons in "
              "frames.json)", file=sys.stderr)  # fmt: skip
    return 0 if done else 2


def _predict_frame_group(
    args: argparse.Namespace,
    model: object,
    frames: list[tuple[str, object]],
    out: Path,
    record: list[dict],
    bar: object = None,
) -> None:
    """Predict the people of a few frames as one batch, then save and record each frame.

    Each frame is noted in ``record`` and counted on the progress ``bar`` once saved.
    """
    import numpy as np

    sizes = [len(kp) for _, kp in frames]  # type: ignore[arg-type]
    owner = np.repeat(np.arange(len(frames)), sizes)
    batch = np.concatenate([kp for _, kp in frames]) if sum(sizes) else None
    people, pred, skipped = (
        _predict_people(model, batch, args) if batch is not None else ([], None, [])
    )
    first = np.cumsum(sizes) - sizes  # index of each frame's first person in the batch
    for f, (name, _) in enumerate(frames):
        rows = [b for b, i in enumerate(people) if owner[i] == f]
        entry = {
            "frame": name,
            "people": [people[b] - int(first[f]) for b in rows],
            "skipped": [{"person": i - int(first[f]), "why": why} for i, why in skipped
                        if owner[i] == f],
        }  # fmt: skip
        if rows:
            import torch

            index = torch.tensor(rows)
            sub = type(pred)(*(field[index.to(field.device)] for field in pred))  # type: ignore[arg-type]
            _save_people(out / name, model, sub, entry["people"], tagged=sizes[f] > 1)
        record.append(entry)
        if bar is not None:
            bar.update(1)  # type: ignore[attr-defined]


def _predict_people(
    model: object, kp: object, args: argparse.Namespace
) -> tuple[list[int], object, list[tuple[int, str]]]:
    """Predict a batch of people; when the model cannot take one of them, each one alone.

    Returns the people predicted (their rows in ``kp``), their predictions as one batch
    (``None`` when there are none) and ``(row, reason)`` for each person skipped.
    """
    import torch

    try:
        pred = model.predict(kp, confidence_threshold=args.threshold, exact=args.exact)  # type: ignore[attr-defined]
        return list(range(len(kp))), pred, []  # type: ignore[arg-type]
    except ValueError as err:
        if len(kp) == 1:  # type: ignore[arg-type]
            return [], None, [(0, str(err).removeprefix("sample 0: "))]
    people, preds, skipped = [], [], []
    for person in range(len(kp)):  # type: ignore[arg-type]
        try:
            pred = model.predict(kp[person], confidence_threshold=args.threshold, exact=args.exact)  # type: ignore[attr-defined,index]
        except ValueError as err:
            skipped.append((person, str(err).removeprefix("sample 0: ")))  # its one sample
        else:
            people.append(person)
            preds.append(pred)
    if not people:
        return [], None, skipped
    return (
        people,
        type(preds[0])(*(torch.cat(field) for field in zip(*preds, strict=True))),
        skipped,
    )


def _save_people(
    out: Path, model: object, pred: object, people: list[int], *, tagged: bool
) -> None:
    """Write each predicted person's mesh (.obj, .ply), pixels, overlay and ``camera.json``."""
    import numpy as np

    from meshgraph.io import atomic_write, save_obj, save_ply

    out.mkdir(parents=True, exist_ok=True)
    faces = model.faces.cpu().numpy()  # type: ignore[attr-defined]
    for b, person in enumerate(people):
        tag = f"_{person:03d}" if tagged else ""
        verts = pred.vertices[b].cpu().numpy()  # type: ignore[attr-defined]
        save_obj(out / f"mesh{tag}.obj", verts, faces)
        save_ply(out / f"mesh{tag}.ply", verts, faces)
        cam = pred.camera[b].cpu().numpy()  # type: ignore[attr-defined]
        uv = cam[0] * verts[:, :2] + cam[1:]
        np.save(out / f"mesh{tag}_pixels.npy", uv)
        try:
            _overlay(out / f"overlay{tag}.png", pred.keypoints_2d[b].cpu().numpy(), uv,  # type: ignore[attr-defined]
                     list(model.joint_set.bones))  # type: ignore[attr-defined]  # fmt: skip
        except ImportError:
            pass
    camera = {"weak_perspective": pred.camera.cpu().tolist(), "people": people,  # type: ignore[attr-defined]
              "note": "pixel = s * X[:2] + (tx, ty)"}  # fmt: skip
    text = json.dumps(camera, indent=2)
    atomic_write(out / "camera.json", lambda fh: fh.write(text.encode()))


def _predict_images(args: argparse.Namespace) -> int:
    """``meshgraph predict --image PATH``: detect, predict and save, per image."""
    from meshgraph.detect import (
        KeypointDetector,
        image_files,
        predict_image,
        save_image_prediction,
    )
    from meshgraph.keypoint_formats import read_keypoints

    if len(args.inputs) > 1:
        raise ValueError(f"with --image, give at most a MODEL.pt, got {len(args.inputs)} paths")
    if args.left:
        raise ValueError("--left: with --image the detector tells which hand it is")
    if args.exact and args.keypoints_file is None:
        raise ValueError(
            "--exact goes with a keypoint file (--keypoints): a photo's detected keypoints "
            "are not exact"
        )
    model = _model_for(args, args.inputs[0] if args.inputs else None)
    _warn_if_exact_unread(args, model)
    image = Path(args.image)
    if image.is_dir():
        paths = image_files(image)
        if not paths:
            raise ValueError(f"{image}: the folder holds no image (.png, .jpg, ...)")
        out = Path(args.out) if args.out else image.parent / f"{image.name}_meshes"
    elif image.is_file():
        paths = [image]
        out = Path(args.out) if args.out else image.with_name(f"{image.stem}_mesh")
    else:
        raise FileNotFoundError(f"no image file or folder at {image}")
    keypoints = None
    if args.keypoints_file is not None:
        if len(paths) != 1:
            raise ValueError("--keypoints holds one image's keypoints: give one --image file")
        kp = read_keypoints(Path(args.keypoints_file), model.joint_set.name, layout=args.layout)
        if kp.shape[0] != 1:
            raise ValueError(f"{args.keypoints_file}: holds {kp.shape[0]} people; one expected")
        keypoints = kp[0]
    detector = KeypointDetector.for_model(model) if keypoints is None else None
    failed: list[str] = []
    bar = _progress_bar(args, len(paths), "image")
    try:
        for path in paths:
            try:
                result = predict_image(model, path, detector=detector, keypoints=keypoints,
                                       confidence_threshold=args.threshold,
                                       exact=args.exact)  # fmt: skip
                save_image_prediction(result, out, stem=path.stem)
            except (ValueError, OSError) as err:
                if len(paths) == 1:
                    raise
                failed.append(f"{path.name}: {_one_line(err)}")
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if detector is not None:
            detector.close()
    done = len(paths) - len(failed)
    print(f"saved {done} of {len(paths)} meshes in {out}/ (STEM.obj/.ply, STEM_image.obj, "
          "STEM_overlay.png, STEM.json)")  # fmt: skip
    for line in failed:
        print(f"  failed: {line}", file=sys.stderr)
    return 2 if failed else 0


def _progress_bar(args: argparse.Namespace, total: int, unit: str) -> object:
    """A tqdm bar on stderr over ``total`` items of ``unit``.

    ``None`` for a single item, with ``--no-progress`` or without tqdm.
    """
    if total <= 1 or args.no_progress:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is optional
        return None
    return tqdm(total=total, desc=f"{unit}s", unit=unit, file=sys.stderr)


def _overlay(path: Path, kp: object, uv: object, bones: list) -> None:
    from meshgraph.viz import draw_keypoints, pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(uv[:, 0], uv[:, 1], ",", color="lightsteelblue", alpha=0.6)  # type: ignore[index]
    draw_keypoints(ax, kp, bones, bone_color="tab:blue")  # type: ignore[arg-type]
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title("input keypoints and the predicted mesh (weak perspective)", fontsize=8)
    save_figure(fig, path, dpi=100)


def _int_at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _probability(text: str) -> float:
    value = _finite_float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text}")
    return value


def _add_model_options(p: argparse.ArgumentParser) -> None:
    """``--small-mesh`` and ``--flip-test``, for the commands that use a model."""
    p.add_argument(
        "--small-mesh",
        action="store_true",
        help="a model with an output map (the shipped body): its network's own mesh (the "
        "body: 1,229 vertices) instead of the full one",
    )
    p.add_argument(
        "--flip-test",
        action="store_true",
        help="bodies: average each answer with the answer to the mirrored keypoints (two "
        "passes; Pose2Mesh.flip_tested)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``meshgraph`` command."""
    from meshgraph.datasets import BENCHMARKS

    parser = argparse.ArgumentParser(prog="meshgraph", description="meshgraph tools")
    parser.add_argument("--version", action="version", version=f"meshgraph {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("coarsen", help="build a heavy-edge hierarchy of a mesh file")
    p.add_argument("mesh", type=Path, help="mesh file (.obj; .ply/.stl/... with trimesh; .npz)")
    p.add_argument(
        "--levels", type=_int_at_least(1), default=8, help="number of levels, the mesh included"
    )
    p.add_argument("--layout", choices=LAYOUTS, default="compact")
    p.add_argument("--compat", choices=["pose2mesh"], default=None)
    p.add_argument("--out", help="output folder (default: next to the mesh)")
    p.add_argument("--cache-dir", default=None, help="reuse hierarchies from this folder")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG (no matplotlib needed)")
    p.add_argument(
        "--merge-vertices",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="weld vertices at one position (default: .stl files only; load_mesh)",
    )
    p.set_defaults(func=_coarsen)

    p = sub.add_parser("train", help="train and evaluate Pose2Mesh on synthetic data")
    p.add_argument("--kind", choices=["body", "hand"], default=None,
                   help="body or hand (default: hand for --body mano, else body)")  # fmt: skip
    p.add_argument("--preset", choices=["quick", "long", "full"], default="quick")
    from meshgraph.bodies.registry import registered_bodies

    p.add_argument("--body", choices=registered_bodies(), default="anny",
                   help="a registered body family (meshgraph.bodies.register_body)")  # fmt: skip
    p.add_argument("--model-path", default=None, help="licensed SMPL/SMPL-H/MANO file or folder")
    p.add_argument("--regressor", action="append", metavar="NAME=PATH",
                   help="SMPL family: a joint regressor .npy replacing the built-in one, e.g. "
                   "h36m=J_regressor_h36m_correct.npy (repeatable)")  # fmt: skip
    p.add_argument("--topology", default=None, help="Anny topology ('full' for the full mesh)")
    p.add_argument("--joint-set", choices=["coco", "body29", "h36m", "hand"], default=None)
    p.add_argument("--layout", choices=LAYOUTS, default="compact")
    p.add_argument(
        "--variant", choices=["coarse_to_fine", "direct", "fc"], default="coarse_to_fine"
    )
    p.add_argument("--posenet-width", type=_int_at_least(1), default=None)
    p.add_argument(
        "--posenet-blocks",
        type=_int_at_least(1),
        default=None,
        help="PoseNet residual blocks (default 2, the paper's; a fine-tuning from a model with "
        "fewer starts the new ones as identities)",
    )
    p.add_argument(
        "--conv",
        choices=("cheb", "spiral"),
        default=None,
        help="mesh convolution: Chebyshev (the paper's, default) or SpiralNet++'s spiral",
    )
    p.add_argument(
        "--spiral-length", type=_int_at_least(1), default=None, help="--conv spiral: length"
    )
    p.add_argument(
        "--canonical-frame",
        action="store_true",
        help="MeshNet works in the body frame of the 3D joints (not in the paper)",
    )
    p.add_argument(
        "--isotropic-input",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score the 2D input with one spread for both axes, keeping the pose's width over "
        "its height (default for a fresh run), or per axis as the paper (--no-isotropic-input)"
        "; default for --init: the starting model's",
    )
    p.add_argument(
        "--exactness-input",
        action="store_true",
        help="the networks are told whether each sample's 2D keypoints are exact or detected "
        "(one more input channel; train with --clean-fraction so that both occur; predict "
        "--exact)",
    )
    _add_pose_options(p, "training")
    p.add_argument(
        "--detector",
        action="store_true",
        help="train on detector failures too (missing joints, left/right swaps, offsets: "
        "DetectorNoise), with the joints' visibility as an input",
    )
    p.add_argument(
        "--detector-option",
        action="append",
        metavar="NAME=VALUE",
        help="with --detector: change a DetectorNoise field of the training set from its "
        "default, e.g. offset=0.02 or drop_limb=0.1 (repeatable; the held-out sets keep "
        "the defaults)",
    )
    p.add_argument(
        "--clean-fraction",
        type=_probability,
        default=None,
        metavar="P",
        help="chance that a training sample keeps its exact 2D keypoints, untouched by the "
        "noise and the detector failures (default 0; the held-out sets are unchanged)",
    )
    p.add_argument(
        "--drop-extra",
        type=_probability,
        default=None,
        metavar="P",
        help="Body-29: chance that a training sample's joints beyond COCO-19 (heels, toes, "
        "knuckles, thumbs) are all missing, as from a COCO-17 detector (default 0)",
    )
    p.add_argument(
        "--coco",
        type=Path,
        default=None,
        metavar="DIR",
        help="also train on COCO's 2D keypoints (DIR/annotations/person_keypoints_SPLIT.json) "
        "with a reprojection loss",
    )
    p.add_argument("--coco-split", default="train2017", help="--coco: the annotation split")
    p.add_argument(
        "--batch-2d",
        type=_int_at_least(1),
        default=16,
        help="--coco: COCO samples added to every step (default 16)",
    )
    p.add_argument(
        "--w-2d", type=_finite_float, default=None, help="--coco: reprojection loss weight"
    )
    p.add_argument("--epochs", type=_int_at_least(0), default=None, help="stage-2 epochs")
    p.add_argument("--posenet-epochs", type=_int_at_least(0), default=None, help="stage-1 epochs")
    p.add_argument("--samples-per-epoch", type=_int_at_least(1), default=None)
    p.add_argument(
        "--edge-loss-start",
        type=_int_at_least(0),
        default=None,
        help="stage-2 epoch from which the edge-length loss is on (the preset's by default; "
        "0 when fine-tuning a model trained with it, --init)",
    )
    p.add_argument(
        "--loss-weight",
        action="append",
        metavar="NAME=VALUE",
        help="change a loss weight from the preset's, NAME one of vertex, normal, edge, joint "
        "(the mesh's regressed joints), pose (PoseNet's joints), e.g. joint=3 (repeatable)",
    )
    p.add_argument("--batch-size", type=_int_at_least(1), default=None)
    p.add_argument("--lr", type=_positive_float, default=None)
    p.add_argument(
        "--max-steps", type=_int_at_least(1), default=None, help="stop after this many steps"
    )
    p.add_argument("--test-samples", type=_int_at_least(1), default=None)
    p.add_argument("--seed", type=_int_at_least(0), default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=_int_at_least(1), default=None, help="CPU threads (torch)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast in the forward pass")
    p.add_argument("--compile", action="store_true", help="torch.compile the forward pass")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (for log files)")
    p.add_argument("--out", default=None, help="output folder (default outputs/pose2mesh_KIND)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument(
        "--init",
        metavar="MODEL",
        default=None,
        help="start from a trained model's weights (fine-tuning): a model.pt of a run with the "
        "same network options, or 'body'/'hand' for the shipped weights; the schedule is "
        "this command's (--posenet-epochs 0 skips stage 1)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an OUT that holds another run (replacing its files)",
    )
    p.set_defaults(func=_train)

    p = sub.add_parser("evaluate", help="metrics of a trained model on held-out synthetic data")
    p.add_argument(
        "model",
        type=Path,
        nargs="?",
        default=None,
        help="a saved model (default: the shipped body model, or the hand with --hand)",
    )
    p.add_argument("--hand", action="store_true", help="without MODEL: the shipped hand model")
    p.add_argument(
        "--left", action="store_true", help="with --hand: the left hand (the right one mirrored)"
    )
    _add_model_options(p)
    p.add_argument("--samples", type=_int_at_least(1), default=256)
    p.add_argument("--seed", type=_int_at_least(0), default=0)
    p.add_argument("--model-path", default=None, help="body model files for SMPL-family models")
    p.add_argument(
        "--regressor",
        action="append",
        metavar="NAME=PATH",
        help="the joint regressors the model was trained with (repeatable)",
    )
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--drop-extra",
        type=_probability,
        default=None,
        metavar="P",
        help="Body-29 models: the share of held-out samples whose joints beyond COCO-19 are "
        "missing (1: every sample, as from a COCO-17 detector; the same samples otherwise)",
    )
    p.add_argument(
        "--size-free",
        action="store_true",
        help="also N-MPJPE and N-MPVPE: the errors once each prediction takes its "
        "least-squares scale (the body's size known)",
    )
    p.add_argument("--json", default=None, help="also write the metrics here")
    _add_pose_options(p, "held-out")
    p.add_argument(
        "--dataset",
        default=None,
        choices=sorted(k for k in BENCHMARKS if k != "coco"),  # COCO has no 3D
        help="a real benchmark instead of the synthetic sets (with --root): prints its row",
    )
    p.add_argument("--root", type=Path, default=None, help="--dataset: the dataset's folder")
    p.add_argument(
        "--keypoints",
        default="gt",
        help="--dataset: 2D input: gt, detected (3DPW's released detections) or a file",
    )
    p.add_argument(
        "--exact",
        action="store_true",
        help="--dataset with --keypoints gt: tell a model trained with --exactness-input that "
        "the 2D keypoints are exact (the ground truth's projection)",
    )
    p.add_argument(
        "--smpl-path",
        default=None,
        help="--dataset: the licensed SMPL files (3DPW's ground truth; Human3.6M meshes)",
    )
    p.add_argument(
        "--dataset-regressor",
        action="append",
        metavar="NAME=PATH",
        help="--dataset: SMPL joint regressors of the ground truth, e.g. "
        "h36m=J_regressor_h36m_correct.npy (repeatable)",
    )
    p.add_argument(
        "--limit", type=_int_at_least(1), default=None, help="--dataset: the first N samples"
    )
    p.set_defaults(func=_evaluate)

    p = sub.add_parser("predict", help="mesh from 2D keypoints (.json or .npy, pixels) or a photo")
    p.add_argument(
        "inputs",
        nargs="*",
        metavar="[MODEL.pt] KEYPOINTS",
        help="a trained model (default: the shipped body model, or the hand with --hand), then "
        "the keypoints in pixels (.json or .npy): meshgraph's (J, 2|3) list, COCO annotations, "
        "mmpose/rtmlib predictions or OpenPose output; every person in the file gets a mesh. "
        "A folder of such files (a video's frames, e.g. OpenPose's --write_json), an mmpose "
        "video file or a file of several images (AlphaPose's results, COCO annotations): one "
        "output folder per frame or image, and frames.json",
    )
    p.add_argument(
        "--image",
        default=None,
        metavar="PATH",
        help="a photo or a folder of photos instead of KEYPOINTS: detect one person (one hand "
        'with --hand) per image with mediapipe (pip install "torch-meshgraph[detect]") and '
        "predict its mesh",
    )
    p.add_argument(
        "--keypoints",
        dest="keypoints_file",
        default=None,
        metavar="FILE",
        help="with --image FILE: use these keypoints instead of detecting them",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar for folders")
    p.add_argument(
        "--layout",
        default=None,
        choices=sorted(KEYPOINT_FORMATS),
        help="the body keypoints' layout (default: told from the joint count; see "
        "meshgraph.keypoint_formats)",
    )
    p.add_argument("--hand", action="store_true", help="the shipped hand model (Hand-21 input)")
    p.add_argument(
        "--left", action="store_true", help="with --hand: a left hand (the right one mirrored)"
    )
    _add_model_options(p)
    p.add_argument("--threshold", type=_finite_float, default=0.1, help="confidence threshold")
    p.add_argument(
        "--exact",
        action="store_true",
        help="the keypoints are exact (projected from motion capture or a mesh), not a "
        "detector's: for models trained with --exactness-input",
    )
    p.add_argument(
        "--device",
        default="cpu",
        help="where the model runs (cpu, cuda, cuda:1, mps); the files are written the same",
    )
    p.add_argument("--out", default=None)
    p.set_defaults(func=_predict)

    p = sub.add_parser("export-weights", help="a finished run's model as shippable weights")
    p.add_argument("run", type=Path, help="the output folder of a finished `meshgraph train`")
    p.add_argument("--name", required=True, choices=("body", "hand"))
    p.add_argument(
        "--out", type=Path, default=None, help="the file (default: meshgraph/weights/NAME)"
    )
    p.add_argument(
        "--full-mesh",
        action="store_true",
        help="answer on the body's full mesh through a fitted vertex map (a run on a "
        "simplified topology)",
    )
    p.add_argument(
        "--eval-seed",
        type=int,
        default=None,
        help="measure the held-out sets of this seed (meshgraph evaluate --seed) instead of "
        "the run's: models trained with other seeds compared on the same samples",
    )
    p.add_argument(
        "--int8-min-size",
        type=int,
        default=None,
        help="store every weight matrix of at least this many entries as int8 rows (a "
        "scale per row): half of float16's bytes; the metrics are measured on them",
    )
    p.set_defaults(func=_export_weights)
    return parser


def _export_weights(args: argparse.Namespace) -> int:
    from meshgraph.models.pretrained import PRETRAINED, weights_dir
    from meshgraph.training.export import export_pretrained

    out = args.out or weights_dir() / PRETRAINED[args.name]["file"]
    path = export_pretrained(
        args.run,
        args.name,
        out,
        full_mesh=args.full_mesh,
        eval_seed=args.eval_seed,
        int8_min_size=args.int8_min_size,
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``meshgraph`` command; returns the exit status.

    Every failure ends as one line on stderr, ``meshgraph COMMAND: error: ...``, naming the
    file or the option at fault, with exit status 2 (130 when interrupted); warnings (an
    unwritable cache, say) are one line each, ``meshgraph COMMAND: warning: ...``. Set
    ``MESHGRAPH_DEBUG=1`` to get full tracebacks and warnings instead.
    """
    import os
    import warnings

    parser = build_parser()
    args = parser.parse_args(argv)

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        print(f"meshgraph {args.command}: warning: {_one_line(message)}", file=sys.stderr)

    if args.command in ("evaluate", "predict"):  # train: pipeline.run does it
        from meshgraph.devices import reuse_cpu_memory

        reuse_cpu_memory()  # large batches: reuse freed memory instead of page-faulting anew
    try:
        with warnings.catch_warnings():
            if not os.environ.get("MESHGRAPH_DEBUG"):  # the command shows warnings its way
                warnings.simplefilter("default")
                warnings.showwarning = one_line_warning
            return args.func(args)
    except KeyboardInterrupt:
        print(f"meshgraph {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if os.environ.get("MESHGRAPH_DEBUG"):
            raise
        print(f"meshgraph {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2


def _one_line(err: BaseException) -> str:
    """An exception as one line; the type is named where the message alone would be unclear."""
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, OSError) and err.filename is not None and str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    known = (OSError, ValueError, TypeError, ImportError, KeyError, RuntimeError)
    if not isinstance(err, known) or isinstance(err, KeyError):
        text = f"{type(err).__name__}: {text}"
    if len(text) > 400:
        text = text[:397] + "..."
    return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
