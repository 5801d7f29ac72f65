"""Shared pieces of the benchmark suite: meshes, workloads, honest CPU peak memory."""

from __future__ import annotations

import functools
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import torch

from meshgraph import MeshTopology
from meshgraph._optional import WITH_ANNY, WITH_TORCH_SPARSE
from meshgraph.generators import torus_mesh

ROOT = Path(__file__).resolve().parent.parent

#: Sizes of the Anny meshes; stand-ins of the same size are generated when anny is missing.
ANNY_SIZES = {"body": 13718, "hand": 1609}


_P = ParamSpec("_P")
_R = TypeVar("_R")


def restores_torch_threads(main: Callable[_P, _R]) -> Callable[_P, _R]:
    """Wrap a benchmark's ``main`` so that the thread count it sets ends with it.

    The benchmark commands set ``torch.set_num_threads`` from ``--threads``, which holds for
    the whole process: called in-process (by the tests), they would leave it changed for
    whatever runs next. The wrapper puts the caller's count back when ``main`` returns or
    raises.
    """

    @functools.wraps(main)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        threads = torch.get_num_threads()
        try:
            return main(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    wrapper.restores_torch_threads = True  # type: ignore[attr-defined]
    return wrapper


def write_results(out: Path, stem: str, record: object, text: str) -> None:
    """Write ``out/STEM.json`` (``record``) and ``out/STEM.md`` (``text``), then print ``text``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(record, indent=1) + "\n")
    (out / f"{stem}.md").write_text(text)
    print(text)


@functools.cache
def bench_mesh(name: str) -> MeshTopology:
    """The Anny body or hand mesh if anny is installed (and MESHGRAPH_BENCH_ANNY != 0).

    Otherwise a closed torus grid of about the same size: 38 x 361 = 13,718 vertices for the
    body, 40 x 40 = 1,600 for the hand.
    """
    if WITH_ANNY and os.environ.get("MESHGRAPH_BENCH_ANNY", "1") != "0":
        import anny

        kwargs = {} if name == "body" else {"rig": "anny-hand.R", "topology": "hand.R"}
        model = anny.Anny(**kwargs)
        return MeshTopology(model.faces, num_vertices=model.template_vertices.shape[0])
    if name == "body":
        return torus_mesh(38, 361)
    if name == "hand":
        return torus_mesh(40, 40)
    raise ValueError(f"unknown benchmark mesh {name!r}")


def mesh_source(name: str) -> str:
    mesh = bench_mesh(name)
    kind = "anny" if WITH_ANNY and os.environ.get("MESHGRAPH_BENCH_ANNY", "1") != "0" else "torus"
    return f"{kind}-{name} ({mesh.num_vertices} vertices)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def chebconv_workload(
    impl: str,
    mesh: MeshTopology,
    batch: int,
    channels: int,
    K: int = 3,
    backward: bool = True,
    device: str = "cpu",
) -> Callable[[], None]:
    """A callable running one forward (and backward) pass of a Chebyshev layer.

    ``impl`` is ``"meshgraph-<backend>"`` or ``"pyg"``. PyG gets the exact lambda_max so that
    both compute the same operator. ``"spiral"`` is :class:`~meshgraph.nn.SpiralConv` instead
    (length ``3 * K``, 9 for ``K = 3``: SpiralNet++'s mesh default), and ``"spiral-gather"``
    the same product as SpiralNet++ writes it (gather the spirals, then ``nn.Linear``).
    """
    dev = torch.device(device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch, mesh.num_vertices, channels, generator=gen).to(dev)
    if impl == "pyg":
        from torch_geometric.nn import ChebConv

        conv = ChebConv(channels, channels, K).to(dev)
        edge_index = mesh.edge_index.to(dev)
        lam = torch.tensor(mesh.lambda_max, device=dev)

        def run() -> torch.Tensor:
            return conv(x_in, edge_index, lambda_max=lam)
    elif impl in ("spiral", "spiral-gather"):
        from meshgraph.nn import SpiralConv

        conv = SpiralConv(channels, channels, mesh, length=3 * K).to(dev)
        flat = conv.indices.reshape(-1)

        def run() -> torch.Tensor:
            if impl == "spiral":
                return conv(x_in)
            gathered = x_in[:, flat].reshape(x_in.shape[0], x_in.shape[1], -1)
            return torch.nn.functional.linear(gathered, conv.weight, conv.bias)
    else:
        from meshgraph.nn import MeshChebConv

        backend = impl.split("-", 1)[1]
        conv = MeshChebConv(channels, channels, K, mesh, backend=backend).to(dev)

        def run() -> torch.Tensor:
            return conv(x_in)

    x_in = x.requires_grad_(backward)

    def step() -> None:
        if backward:
            out = run()
            out.backward(torch.ones_like(out))
            x_in.grad = None
            conv.zero_grad(set_to_none=True)
        else:
            with torch.no_grad():
                run()
        sync(dev)

    return step


def pose2mesh_model(
    mesh: MeshTopology,
    variant: str = "coarse_to_fine",
    layout: str = "compact",
    num_levels: int = 8,
) -> torch.nn.Module:
    """An untrained Pose2Mesh (COCO input, PoseNet width 1024) for ``mesh``.

    The mesh-joint regressor is a fixed random one: it does not change the cost.
    """
    from meshgraph.models import Pose2Mesh, Pose2MeshConfig

    gen = torch.Generator().manual_seed(0)
    reg = torch.rand(17, mesh.num_vertices, generator=gen)
    reg = reg / reg.sum(1, keepdim=True)
    cfg = Pose2MeshConfig(joint_set="coco", num_levels=num_levels, layout=layout, variant=variant)
    torch.manual_seed(0)
    return Pose2Mesh(cfg, mesh, reg)


def pose2mesh_workload(
    model: torch.nn.Module, batch: int, train: bool = False, device: str = "cpu"
) -> Callable[[], None]:
    """One inference (``train=False``) or one training step of a Pose2Mesh model.

    Inference: eval mode, no autograd. Training: train mode, the L1 vertex and joint losses
    against fixed targets, backward and an Adam step; at batch 1 the batch-norm layers keep
    their running statistics (one sample has no batch statistics), as when fine-tuning.
    """
    dev = torch.device(device)
    model = model.to(dev)
    gen = torch.Generator().manual_seed(0)
    nj = model.joint_set.num_joints
    x = torch.randn(batch, nj, 2, generator=gen).mul_(0.3).to(dev)
    if not train:
        model.eval()

        def infer() -> None:
            with torch.no_grad():
                model(x)
            sync(dev)

        return infer
    model.train()
    if batch == 1:  # batch norm cannot estimate statistics from one sample: keep them frozen
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.eval()
    target_v = torch.zeros(batch, model.num_vertices, 3, device=dev)
    target_j = torch.zeros(batch, nj, 3, device=dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        out = model(x)
        loss = (out["vertices"] - target_v).abs().mean() + (
            out["joints_3d"] - target_j
        ).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(dev)

    return step


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def measure_peak_growth_in_this_process(step: Callable[[], None], device: str) -> float:
    """Peak memory growth (MiB) of one call of ``step`` in this process.

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``. CPU: the
    kernel's resident-set high-water mark (VmHWM), reset through ``/proc/self/clear_refs``
    right before the call, minus the resident set before it. This counts every byte the
    process touches (torch tensors, their page-faulted pages, allocator slack), not an
    estimate from tensor sizes.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        step()
        return (torch.cuda.max_memory_allocated(dev) - base) / 2**20
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    base = _status_kib("VmRSS")
    step()
    return (_status_kib("VmHWM") - base) / 1024


def peak_memory_mib(spec: dict) -> float:
    """Run one workload in a fresh subprocess and return its peak memory growth in MiB.

    A fresh process per measurement keeps earlier runs (and their allocator caches) out.
    """
    code = (
        "import json, sys; from benchmarks._common import _peak_child; "
        "print(json.dumps(_peak_child(json.loads(sys.argv[1]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(spec)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def _peak_child(spec: dict) -> float:
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "chebconv":
        mesh = bench_mesh(spec.pop("mesh"))
        step = chebconv_workload(mesh=mesh, **spec)
    elif kind == "pose2mesh":  # an untrained model for a benchmark mesh
        mesh = bench_mesh(spec.pop("mesh"))
        model = pose2mesh_model(mesh, spec.pop("variant"), spec.pop("layout"))
        step = pose2mesh_workload(model, **spec)
    elif kind == "pose2mesh_file":  # a saved model (e.g. from the ablation)
        from meshgraph.models import Pose2Mesh

        model = Pose2Mesh.load(spec.pop("path"))
        step = pose2mesh_workload(model, **spec)
    else:
        raise ValueError(kind)
    return measure_peak_growth_in_this_process(step, spec.get("device", "cpu"))


def machine_info() -> dict:
    """Machine metadata stored with every result."""
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "optional_backends": {
            "torch_sparse": WITH_TORCH_SPARSE,
            "anny_meshes": WITH_ANNY and os.environ.get("MESHGRAPH_BENCH_ANNY", "1") != "0",
        },
    }
    try:
        import torch_geometric

        info["torch_geometric"] = torch_geometric.__version__
    except ImportError:  # pragma: no cover
        pass
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:  # pragma: no cover
        pass
    return info
