"""Where the error of a trained Pose2Mesh comes from, on the held-out synthetic set.

Usage::

    python -m benchmarks.pose2mesh_errors outputs/pose2mesh_body/model.pt [--samples 512]
        [--model-path DIR] [--out FOLDER]
    python -m benchmarks.pose2mesh_errors body [--small-mesh]   # the shipped body (or hand)
    python -m benchmarks.pose2mesh_errors body --height-sd 0.065  # adult statures spread 10 cm
    python -m benchmarks.pose2mesh_errors body --input detector_2d  # meshgraph evaluate's rows

With ground-truth 2D input (the accuracy targets' setting; ``--input noisy_2d`` or
``detector_2d`` takes the same samples with the noisy or detector-like 2D of ``meshgraph
evaluate``'s rows, :func:`~meshgraph.training.evaluate.held_out_sets`, and then also reports
how far the 2D input lies from the truth) it reports:

* PoseNet's own 3D joints (the input joint set) against the same joints regressed from the
  predicted mesh: how much the mesh network adds to (or removes from) the lifting error;
* the mesh joints' error along the camera axes (x, y in the image plane, z the depth);
* the body's size, which one view cannot tell: N-MPJPE (:func:`meshgraph.metrics.n_mpjpe`,
  MPJPE after each prediction's least-squares scale) beside MPJPE, and the predicted size
  (RMS distance of the root-relative mesh joints from the root) over the true one;
* MPJPE and PA-MPJPE of the mesh joints per canonical pose, camera elevation and distance;
* each mesh joint's error after the Procrustes alignment of PA-MPJPE;
* for a body with a mirror-symmetric template: the same samples mirrored (the 2D input's x
  negated and left and right joints swapped; the answer mirrored back vertex for vertex):
  a model that learnt the left-right asymmetries of the training poses does worse on them;
* where on the surface the MPVPE comes from: every vertex belongs to the region of its
  nearest mesh joint on the body's template (for the body: hands and fingers fall to the
  wrists, feet to the ankles), and each region reports its share of the vertices, its mean
  vertex error and its share of the MPVPE, its joint's error, and its vertices' error once
  the region is moved by that (its own shape and orientation);
* how regular the predicted surface is: each edge's length over the true one.

Writes ``errors.json`` and ``errors.md`` (``errors-INPUT.*`` for another input) to ``--out``
(default: the model's folder, or ``outputs/errors-NAME`` for a shipped model).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch

from benchmarks._common import restores_torch_threads
from meshgraph.data.noise import default_detector_noise
from meshgraph.data.synthetic import SyntheticPoseMeshDataset, default_shape_sampler
from meshgraph.geometry import mirror_permutation as symmetric_pairs
from meshgraph.metrics import mpjpe, mpvpe, n_mpjpe, pa_mpjpe, procrustes_align
from meshgraph.models.pose2mesh import Pose2Mesh
from meshgraph.training.evaluate import HELD_OUT_SETS, check_normalisation

ELEVATION_BINS = ((-90.0, 0.0), (0.0, 15.0), (15.0, 30.0), (30.0, 90.0))


def _group(errors: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, float]:
    n = int(mask.sum())
    out: dict[str, float] = {"n": n}
    for k, v in errors.items():
        out[k] = float(v[mask].mean()) if n else math.nan
    return out


def mirror_permutation(
    template: torch.Tensor, world_rotation: torch.Tensor | None = None, tol: float = 1e-4
) -> torch.Tensor | None:
    """``(V,)`` index of each vertex's mirror image across the body's sagittal plane.

    :func:`meshgraph.geometry.mirror_permutation` in meshgraph's world frame (x the
    subject's left), ``None`` for a template that is not mirror-symmetric within ``tol``.

    Args:
        template: ``(V, 3)`` template vertices in the model's coordinates.
        world_rotation: ``(3, 3)`` rotation to meshgraph's world frame; identity if ``None``.
        tol: Largest distance (model units) from a mirrored vertex to its counterpart.
    """
    t = template.double()
    if world_rotation is not None:
        t = t @ world_rotation.double().T
    try:
        return symmetric_pairs(t, atol=tol)
    except ValueError:
        return None


def vertex_regions(dataset: SyntheticPoseMeshDataset) -> torch.Tensor:
    """``(V,)`` index of each template vertex's nearest mesh joint (on the rest template)."""
    template = dataset.model.template_vertices().double()
    joints = dataset.model.regress_joints(template[None], dataset.mesh_joint_set)[0].double()
    return torch.cdist(template, joints).argmin(dim=1)


def _take(visible: torch.Tensor | None, order: torch.Tensor) -> torch.Tensor | None:
    return None if visible is None else visible[:, order]


def _forward(
    model: torch.nn.Module,
    keypoints: torch.Tensor,
    visible: torch.Tensor | None,
    exact: torch.Tensor | None,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """The model's answer; the visibility goes along only where a joint is missing, the
    exactness only to a model that reads it (``config.exactness_input``)."""
    kwargs = {}
    if visible is not None and not bool(visible.all()):
        kwargs["visible"] = visible.to(device)
    if exact is not None and getattr(getattr(model, "config", None), "exactness_input", False):
        kwargs["exact"] = exact.to(device)
    return model(keypoints.to(device), **kwargs)


def _input_error(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """``(B, J)`` distance of each 2D input joint from its true place, in % of the true
    keypoints' height (NaN for missing joints)."""
    gt = batch["keypoints_2d_gt"].double()
    given = batch["keypoints_2d_pixels"].double()
    height = (gt[..., 1].amax(1) - gt[..., 1].amin(1)).view(-1, 1)
    error = (given - gt).norm(dim=-1) / height * 100
    visible = batch.get("visible")
    return error if visible is None else error.masked_fill(~visible.bool(), math.nan)


def _size(joints: torch.Tensor, root: int) -> torch.Tensor:
    """``(B,)`` RMS distance of the joints from the root joint."""
    return (joints - joints[:, root : root + 1]).pow(2).sum(-1).mean(1).sqrt()


@torch.no_grad()
def error_breakdown(
    model: Pose2Mesh, dataset: SyntheticPoseMeshDataset, num_samples: int = 512
) -> dict[str, Any]:
    """Error sources of ``model`` on the first ``num_samples`` samples of ``dataset`` (mm).

    Returns:
        ``{"n", "mesh", "posenet", "mesh_on_input_joints", "axis_mm", "size_ratio",
        "by_pose", "by_elevation", "by_distance", "pa_by_joint", "mpvpe", "by_region"}``;
        each metric dict has ``mpjpe`` and ``pa_mpjpe`` (``mesh`` and ``posenet`` also
        ``n_mpjpe``); ``size_ratio`` holds the 10th, 50th and 90th percentiles of predicted
        over true body size; ``pa_by_joint`` maps each mesh joint to its mean error after the
        Procrustes alignment; ``by_region`` maps each mesh joint to its region of the surface
        (:func:`vertex_regions`): ``vertices`` (count), ``vertex_share``, ``error`` (the
        region's mean vertex error, root-aligned as MPVPE), ``error_share`` (its part of
        ``mpvpe``), ``joint_error`` (the joint's own root-aligned error) and ``local_error``
        (the region's vertices after each prediction's region is moved by its joint's error:
        the region's shape and orientation); ``mirrored`` (``None`` for hands and asymmetric
        templates) holds ``mpjpe``, ``pa_mpjpe`` and ``mpvpe`` of the mirror-image samples;
        ``edge_ratio`` is the mean of ``|predicted / true edge length - 1|`` over the mesh's
        edges (how regular the predicted surface is).
    """
    check_normalisation(model, dataset)
    n = min(num_samples, len(dataset))
    model.eval()
    device = next(model.parameters()).device
    in_root, mesh_root = dataset.joint_set.root, dataset.mesh_joint_set.root
    reg = dataset.regressor.double()  # the input joint set, from the predicted mesh
    perm = None
    if dataset.joint_set.flip_pairs:  # bodies; a hand's mirror image is the other hand
        body = dataset.model
        perm = mirror_permutation(body.template_vertices(), body.world_rotation)
    in_flip = torch.as_tensor(dataset.joint_set.flip_permutation())
    mesh_flip = torch.as_tensor(dataset.mesh_joint_set.flip_permutation())
    regions = vertex_regions(dataset)
    edges = dataset.model.topology.edges.cpu()  # of the meshes compared: the dataset's
    parts: dict[str, list[torch.Tensor]] = {}
    for lo in range(0, n, 64):
        idx = list(range(lo, min(lo + 64, n)))
        batch = dataset.__getitems__(idx)
        visible = batch.get("visible")
        exact = batch.get("exact")
        out = _forward(model, batch["keypoints_2d"], visible, exact, device)
        pj, gj = out["mesh_joints_3d"].double().cpu(), batch["mesh_joints_3d"].double()
        pin, gin = out["joints_3d"].double().cpu(), batch["joints_3d"].double()
        pv, gv = out["vertices"].double().cpu(), batch["vertices"].double()
        mesh_in = torch.einsum("jv,bvc->bjc", reg, pv)
        r = pj[:, mesh_root : mesh_root + 1] - gj[:, mesh_root : mesh_root + 1]
        aligned = procrustes_align(pj, gj).aligned
        rows = {
            "input_error": _input_error(batch),  # (B, J), NaN where a joint is missing
            "mesh_mpjpe": mpjpe(pj, gj, root=mesh_root),
            "mesh_pa_mpjpe": pa_mpjpe(pj, gj),
            "mesh_n_mpjpe": n_mpjpe(pj, gj, root=mesh_root),
            "posenet_n_mpjpe": n_mpjpe(pin, gin, root=in_root),
            "posenet_mpjpe": mpjpe(pin, gin, root=in_root),
            "posenet_pa_mpjpe": pa_mpjpe(pin, gin),
            "mesh_in_mpjpe": mpjpe(mesh_in, gin, root=in_root),
            "mesh_in_pa_mpjpe": pa_mpjpe(mesh_in, gin),
            "axis": ((pj - gj) - r).abs().mean(1),  # (B, 3), root-relative
            "pa_joint": (aligned - gj).norm(dim=-1),  # (B, J)
            "vertex_error": (pv - gv - r).norm(dim=-1),  # (B, V), root-aligned as MPVPE
            # each vertex moved by its region joint's root-aligned error: what is left is the
            # region's own shape and orientation error
            "local_error": (pv - gv - r - (pj - gj - r)[:, regions]).norm(dim=-1),  # (B, V)
            "joint_error": (pj - gj - r).norm(dim=-1),  # (B, J), root-aligned
            # how regular the surface is: each edge's length over the true one, minus 1
            "edge_ratio": (
                (pv[:, edges[:, 0]] - pv[:, edges[:, 1]]).norm(dim=-1)
                / (gv[:, edges[:, 0]] - gv[:, edges[:, 1]]).norm(dim=-1)
                - 1
            )
            .abs()
            .mean(1),
            "size_ratio": _size(pj, mesh_root) / _size(gj, mesh_root),
            "elevation": torch.rad2deg(torch.asin(-batch["camera_rotation"][:, 2, 2].double())),
            "distance": batch["root"][:, 2].double(),
        }
        if perm is not None:  # the mirror image of every sample, answered and mirrored back
            kp = batch["keypoints_2d"] * batch["keypoints_2d"].new_tensor([-1.0, 1.0])
            back = _forward(model, kp[:, in_flip], _take(visible, in_flip), exact, device)
            f = torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
            mv = (back["vertices"].double().cpu() * f)[:, perm]
            mj = (back["mesh_joints_3d"].double().cpu() * f)[:, mesh_flip]
            rows["mirrored_mpjpe"] = mpjpe(mj, gj, root=mesh_root)
            rows["mirrored_pa_mpjpe"] = pa_mpjpe(mj, gj)
            rows["mirrored_mpvpe"] = mpvpe(mv, gv, mj[:, mesh_root], gj[:, mesh_root])
        for k, v in rows.items():
            parts.setdefault(k, []).append(v)
    cat = {k: torch.cat(v) for k, v in parts.items()}
    mm = {k: v * 1000 for k, v in cat.items() if k.endswith("mpjpe")}
    mesh = {"mpjpe": mm["mesh_mpjpe"], "pa_mpjpe": mm["mesh_pa_mpjpe"],
            "n_mpjpe": mm["mesh_n_mpjpe"]}  # fmt: skip
    ratio = cat["size_ratio"]
    quantiles = torch.quantile(ratio, torch.tensor([0.1, 0.5, 0.9], dtype=ratio.dtype)).tolist()
    posenet = {k: mm[f"posenet_{k}"] for k in ("mpjpe", "pa_mpjpe", "n_mpjpe")}
    everyone = torch.ones(n, dtype=torch.bool)
    names = dataset.canonical_names(range(n))
    by_pose = {}
    for pose in dict.fromkeys(names):
        by_pose[pose] = _group(mesh, torch.tensor([p == pose for p in names]))
    by_elevation = {}
    for lo, hi in ELEVATION_BINS:
        mask = (cat["elevation"] >= lo) & (cat["elevation"] < hi)
        by_elevation[f"{lo:g}..{hi:g} deg"] = _group(mesh, mask)
    d = cat["distance"]
    edges = torch.quantile(d, torch.tensor([1 / 3, 2 / 3], dtype=d.dtype)).tolist()
    by_distance = {}
    for lo, hi in zip([d.min().item(), *edges], [*edges, d.max().item() + 1e-9], strict=True):
        by_distance[f"{lo:.1f}..{hi:.1f} m"] = _group(mesh, (d >= lo) & (d < hi))
    names_j = dataset.mesh_joint_set.names
    pa_by_joint = dict(zip(names_j, (cat["pa_joint"].mean(0) * 1000).tolist(), strict=True))
    per_vertex = cat["vertex_error"].mean(0) * 1000  # (V,) mm
    per_vertex_local = cat["local_error"].mean(0) * 1000
    per_joint = cat["joint_error"].mean(0) * 1000
    total = float(per_vertex.sum())
    by_region = {}
    for j, name in enumerate(names_j):
        mask = regions == j
        count = int(mask.sum())
        if count:
            by_region[name] = {
                "vertices": count,
                "vertex_share": count / len(regions),
                "error": float(per_vertex[mask].mean()),
                "joint_error": float(per_joint[j]),
                "local_error": float(per_vertex_local[mask].mean()),
                "error_share": float(per_vertex[mask].sum()) / total if total else math.nan,
            }
    input_error = cat["input_error"]
    seen = ~torch.isnan(input_error)
    input_2d = {
        "error_pct": float(input_error[seen].mean()) if seen.any() else math.nan,
        "visible": float(seen.double().mean()),
    }
    mirrored = None
    if perm is not None:
        mirrored = {k: float(cat[f"mirrored_{k}"].mean() * 1000)
                    for k in ("mpjpe", "pa_mpjpe", "mpvpe")}  # fmt: skip
    return {
        "n": n,
        "input_2d": input_2d,
        "mesh": _group(mesh, everyone),
        "posenet": _group(posenet, everyone),
        "mesh_on_input_joints": _group(
            {"mpjpe": mm["mesh_in_mpjpe"], "pa_mpjpe": mm["mesh_in_pa_mpjpe"]}, everyone
        ),
        "axis_mm": dict(zip(("x", "y", "z"), (cat["axis"].mean(0) * 1000).tolist(), strict=True)),
        "size_ratio": dict(zip(("p10", "p50", "p90"), quantiles, strict=True)),
        "by_pose": by_pose,
        "by_elevation": by_elevation,
        "by_distance": by_distance,
        "pa_by_joint": pa_by_joint,
        "mpvpe": float(per_vertex.mean()),
        "edge_ratio": float(cat["edge_ratio"].mean()),
        "by_region": by_region,
        "mirrored": mirrored,
    }


def to_markdown(
    res: dict[str, Any], joint_set: str, mesh_joint_set: str, input_name: str = "ground-truth 2D"
) -> str:
    """The breakdown as Markdown tables (``input_name``: the held-out set's 2D input)."""
    lines = [f"Held-out samples: {res['n']}, {input_name} input, millimetres.", ""]
    given = res.get("input_2d")
    if given and given["error_pct"] > 0:
        lines += [
            f"The 2D input: its joints lie {given['error_pct']:.2f} % of the true keypoints' "
            f"height from their true places on average; {100 * given['visible']:.1f} % of "
            "the joints are given (visible).",
            "",
        ]
    lines += [
        "| joints | MPJPE | N-MPJPE | PA-MPJPE |",
        "|---|---|---|---|",
        f"| PoseNet, {joint_set} | {res['posenet']['mpjpe']:.1f} | "
        f"{res['posenet']['n_mpjpe']:.1f} | {res['posenet']['pa_mpjpe']:.1f} |",
        f"| regressed from the mesh, {joint_set} | {res['mesh_on_input_joints']['mpjpe']:.1f} | "
        f"- | {res['mesh_on_input_joints']['pa_mpjpe']:.1f} |",
        f"| regressed from the mesh, {mesh_joint_set} (the metric) | {res['mesh']['mpjpe']:.1f} "
        f"| {res['mesh']['n_mpjpe']:.1f} | {res['mesh']['pa_mpjpe']:.1f} |",
        "",
        "N-MPJPE: MPJPE after each prediction's least-squares scale (the body's size given). "
        "Predicted over true body size (RMS joint distance from the root), 10th / 50th / 90th "
        "percentile: " + " / ".join(f"{v:.3f}" for v in res["size_ratio"].values()) + ".",
        "",
        "Mesh joints, mean absolute root-relative error along the camera axes: "
        + ", ".join(f"{k} {v:.1f}" for k, v in res["axis_mm"].items())
        + " (z = depth).",
    ]
    for title, key in (("canonical pose", "by_pose"), ("camera elevation", "by_elevation"),
                       ("camera distance", "by_distance")):  # fmt: skip
        lines += ["", f"| {title} | n | MPJPE | PA-MPJPE |", "|---|---|---|---|"]
        for name, g in res[key].items():
            lines.append(f"| {name} | {g['n']} | {g['mpjpe']:.1f} | {g['pa_mpjpe']:.1f} |")
    if res.get("mirrored"):
        m = res["mirrored"]
        lines += [
            "",
            f"The same samples mirrored (left and right swapped): MPJPE {m['mpjpe']:.1f}, "
            f"PA-MPJPE {m['pa_mpjpe']:.1f}, MPVPE {m['mpvpe']:.1f} (as given: "
            f"{res['mesh']['mpjpe']:.1f}, {res['mesh']['pa_mpjpe']:.1f}, {res['mpvpe']:.1f}).",
        ]
    lines += ["", f"| {mesh_joint_set} joint | PA-MPJPE |", "|---|---|"]
    lines += [f"| {name} | {v:.1f} |" for name, v in res["pa_by_joint"].items()]
    lines += [
        "",
        f"MPVPE {res['mpvpe']:.1f}; each vertex in the region of its nearest {mesh_joint_set} "
        "joint on the template:",
        "",
        "| region | vertices | share of vertices | mean vertex error | share of MPVPE | "
        "joint error | vertex error after the joint's |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, g in sorted(res["by_region"].items(), key=lambda kv: -kv[1]["error_share"]):
        lines.append(f"| {name} | {g['vertices']} | {100 * g['vertex_share']:.1f} % | "
                     f"{g['error']:.1f} | {100 * g['error_share']:.1f} % | "
                     f"{g['joint_error']:.1f} | {g['local_error']:.1f} |")  # fmt: skip
    lines += [
        "",
        f"Edges: predicted over true length differs from 1 by {100 * res['edge_ratio']:.1f} % "
        "on average.",
        "",
        "Joint error: the region's joint, root-aligned. The last column moves each "
        "prediction's region by its joint's error first: what is left is the region's own "
        "shape and orientation.",
    ]
    return "\n".join(lines) + "\n"


@restores_torch_threads
def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    from meshgraph.cli import _body_for
    from meshgraph.training.pipeline import HELD_OUT_SEED

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model", help="a model file, or body / hand for the shipped weights")
    p.add_argument(
        "--small-mesh",
        action="store_true",
        help="a model with an output map: measure its own (simplified) mesh",
    )
    p.add_argument("--samples", type=int, default=512)
    p.add_argument("--seed", type=int, default=0, help="the training seed of the model")
    p.add_argument("--model-path", default=None, help="SMPL-family model files")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--height-sd",
        type=float,
        default=None,
        help="Anny: held-out height phenotypes normal around 0.5 with this standard deviation "
        "(as meshgraph evaluate --height-sd)",
    )
    p.add_argument(
        "--input",
        choices=list(HELD_OUT_SETS),
        default="gt_2d",
        help="the held-out set's 2D input (as meshgraph evaluate's rows); default: ground truth",
    )
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    shipped = args.model in ("body", "hand")
    if shipped:
        model = Pose2Mesh.pretrained(args.model, full_mesh=not args.small_mesh)
    else:
        model = Pose2Mesh.load(args.model)
        if args.small_mesh:
            model = model.without_output_map()
    body = _body_for(model.config, args.model_path)
    shapes = None
    if args.height_sd is not None:
        shapes = default_shape_sampler(body, height_sd=args.height_sd)  # type: ignore[arg-type]
    label, noise, detector = HELD_OUT_SETS[args.input]
    js = model.joint_set.name
    data = SyntheticPoseMeshDataset(body, args.samples, joint_set=js,  # type: ignore[arg-type]
                                    seed=HELD_OUT_SEED + args.seed, noise=noise,
                                    detector=default_detector_noise(js) if detector else None,
                                    shape_sampler=shapes,
                                    isotropic_input=model.config.isotropic_input)  # fmt: skip
    res = error_breakdown(model, data, args.samples)
    table = to_markdown(res, js, model.mesh_joint_set.name, label)
    default = Path("outputs", f"errors-{args.model}") if shipped else Path(args.model).parent
    out = Path(args.out) if args.out else default
    out.mkdir(parents=True, exist_ok=True)
    stem = "errors" if args.input == "gt_2d" else f"errors-{args.input}"
    (out / f"{stem}.json").write_text(json.dumps(res, indent=2))
    (out / f"{stem}.md").write_text(table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
