"""Maps between two topologies of one body model, fitted on posed bodies.

:func:`fit_topology_map` poses the same bodies in both topologies (Anny's 1,229-vertex body
and its full 13,718-vertex mesh, say) and fits a :class:`~meshgraph.nn.vertex_map.VertexMap`
from one to the other. A Pose2Mesh network trained on the small mesh then answers on the
large one (:meth:`Pose2Mesh.with_output_map <meshgraph.models.Pose2Mesh.with_output_map>`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from meshgraph.bodies.base import BodyModel
from meshgraph.data.random import CounterRandom
from meshgraph.data.synthetic import default_pose_sampler, default_shape_sampler
from meshgraph.nn.vertex_map import VertexMap

__all__ = ["fit_topology_map", "posed_pairs"]


def _check_same_rig(source: BodyModel, target: BodyModel) -> None:
    for attr in ("bone_labels", "phenotype_labels"):
        a, b = getattr(source, attr, None), getattr(target, attr, None)
        if a != b:
            raise ValueError(
                f"{source.name} and {target.name} are not one body in two topologies: their "
                f"{attr} differ"
            )


@torch.no_grad()
def posed_pairs(
    source: BodyModel,
    target: BodyModel,
    num_samples: int,
    *,
    seed: int = 0,
    batch_size: int = 128,
    **pose_options: Any,
) -> tuple[Tensor, Tensor]:
    """``(N, V_source, 3)`` and ``(N, V_target, 3)`` meshes of the same random bodies.

    Poses come from :func:`~meshgraph.data.synthetic.default_pose_sampler` (``pose_options``
    are its options, e.g. ``blend`` and ``uniform``) and shapes from
    :func:`~meshgraph.data.synthetic.default_shape_sampler`, drawn with counter-based random
    numbers (:class:`~meshgraph.data.random.CounterRandom`): body ``i`` depends on ``seed``
    and ``i`` only, whatever ``num_samples`` and ``batch_size``.

    Raises:
        ValueError: If the two models do not share one rig and phenotypes (or SMPL betas),
            or ``num_samples`` or ``batch_size`` is not positive.
    """
    _check_same_rig(source, target)
    if num_samples < 1 or batch_size < 1:
        raise ValueError(
            f"num_samples and batch_size must be positive, got {num_samples} and {batch_size}"
        )
    poses = default_pose_sampler(source, **pose_options)
    shapes = default_shape_sampler(source)
    src, tgt = [], []
    for start in range(0, num_samples, batch_size):
        b = min(batch_size, num_samples - start)
        source_random = CounterRandom(seed, range(start, start + b), 0)
        pose, shape = poses.sample(b, source_random), shapes.sample(b, source_random)
        src.append(source(pose.to(source.dtype), shape.to(source.dtype)).float())
        tgt.append(target(pose.to(target.dtype), shape.to(target.dtype)).float())
    return torch.cat(src), torch.cat(tgt)


def fit_topology_map(
    source: BodyModel,
    target: BodyModel,
    *,
    num_samples: int = 512,
    k: int = 8,
    ridge: float = 1e-3,
    seed: int = 0,
    **pose_options: Any,
) -> VertexMap:
    """A :class:`~meshgraph.nn.vertex_map.VertexMap` from ``source``'s mesh to ``target``'s.

    The two models must be one body in two topologies (same rig, same shape parameters):
    Anny under two topology names, say. The map is fitted with
    :meth:`VertexMap.fit <meshgraph.nn.vertex_map.VertexMap.fit>` on
    :func:`posed_pairs` (``num_samples`` bodies from ``seed``).

    Raises:
        ValueError: As :func:`posed_pairs` and :meth:`VertexMap.fit`.
    """
    src, tgt = posed_pairs(source, target, num_samples, seed=seed, **pose_options)
    return VertexMap.fit(
        src, tgt, source.template_vertices(), target.template_vertices(), k=k, ridge=ridge
    )
