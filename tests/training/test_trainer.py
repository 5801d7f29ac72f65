"""Training: outputs, exact resume after a kill, reproducibility (needs anny)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

pytest.importorskip("anny")

from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.models import Pose2Mesh
from meshgraph.training import TrainConfig, Trainer

ROOT = Path(__file__).resolve().parents[2]
CFG = {"posenet_epochs": 1, "epochs": 2, "samples_per_epoch": 96, "batch_size": 16,
       "checkpoint_every": 2, "edge_loss_start": 1}  # fmt: skip


def _setup(hand, seed=0, **model_kw):
    torch.manual_seed(seed)
    ds = SyntheticPoseMeshDataset(hand, 5000, joint_set="hand", seed=1)
    model = Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand", num_levels=5,
                                posenet_width=32, coarse_channels=8, **model_kw)  # fmt: skip
    return model, ds


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_outputs_and_reproducibility(hand, tmp_path):
    model, ds = _setup(hand)
    hist = Trainer(model, ds, TrainConfig(**CFG), tmp_path / "a", progress=False).fit()
    assert [r["stage"] for r in hist] == [1, 2, 2]
    assert all(r["steps"] == 6 for r in hist)
    assert all(0 < r["seconds"] < 600 for r in hist)  # the epoch's wall time
    assert "loss_edge" not in hist[1] and "loss_edge" in hist[2]  # switched on in stage-2 epoch 1
    with open(tmp_path / "a" / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and float(rows[2]["loss_total"]) == pytest.approx(hist[2]["loss_total"])
    assert (tmp_path / "a" / "losses.png").stat().st_size > 0
    loaded = Pose2Mesh.load(tmp_path / "a" / "model.pt")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    # the same seed gives the same model
    model2, ds2 = _setup(hand)
    Trainer(model2, ds2, TrainConfig(**CFG), tmp_path / "b", progress=False).fit()
    for k, v in _weights(model).items():
        torch.testing.assert_close(model2.state_dict()[k], v, rtol=0, atol=0)


def test_killed_run_resumes_exactly(hand, tmp_path):
    """A run killed (SIGKILL) mid-epoch resumes from its last checkpoint and ends with the
    same steps and the same weights as an uninterrupted run."""
    model, ds = _setup(hand)
    full = Trainer(model, ds, TrainConfig(**CFG), tmp_path / "full", progress=False)
    full.fit()
    reference = _weights(model)

    script = textwrap.dedent(f"""
        import os, signal, torch
        from meshgraph.bodies import AnnyModel
        from meshgraph.data import SyntheticPoseMeshDataset
        from meshgraph.models import Pose2Mesh
        from meshgraph.training import TrainConfig, Trainer
        hand = AnnyModel("hand.R", regressor_cache_dir={str(tmp_path / "reg")!r})
        torch.manual_seed(0)
        ds = SyntheticPoseMeshDataset(hand, 5000, joint_set="hand", seed=1)
        model = Pose2Mesh.from_body(hand, joint_set="hand", mesh_joint_set="hand",
                                    num_levels=5, posenet_width=32, coarse_channels=8)
        def kill(trainer):
            if trainer.step == 11:  # stage 2, epoch 1, 5 of 6 steps done: mid-epoch
                os.kill(os.getpid(), signal.SIGKILL)
        Trainer(model, ds, TrainConfig(**{CFG!r}), {str(tmp_path / "killed")!r},
                progress=False, on_step=kill).fit()
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    ckpt = torch.load(tmp_path / "killed" / "checkpoint.pt", weights_only=True)
    assert (ckpt["epoch"], ckpt["step_in_epoch"]) == (1, 4)  # the last checkpoint before the kill
    assert not (tmp_path / "killed" / "model.pt").exists()

    model2, ds2 = _setup(hand, seed=123)  # other initial weights: all must come from the checkpoint
    resumed = Trainer(model2, ds2, TrainConfig(**CFG), tmp_path / "killed", progress=False)
    hist = resumed.fit(resume=True)
    assert resumed.step == full.step == 18
    assert [r["steps"] for r in hist] == [6, 6, 6]
    for k, v in reference.items():
        torch.testing.assert_close(model2.state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert (tmp_path / "killed" / "model.pt").exists()


def test_resume_refuses_another_schedule(hand, tmp_path):
    model, ds = _setup(hand)
    Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 3})), tmp_path, progress=False).fit()
    with pytest.raises(ValueError, match="another training configuration"):
        Trainer(model, ds, TrainConfig(**(CFG | {"lr": 0.5})), tmp_path, progress=False).fit(
            resume=True
        )
    # only max_steps changed: fine
    Trainer(model, ds, TrainConfig(**CFG), tmp_path, progress=False).fit(resume=True)


def test_bad_configuration(hand, tmp_path):
    model, ds = _setup(hand)
    with pytest.raises(ValueError, match="optimizer"):
        Trainer(model, ds, TrainConfig(optimizer="sgd"), tmp_path)
    body_ds = SyntheticPoseMeshDataset.__new__(SyntheticPoseMeshDataset)
    body_ds.joint_set = type(ds.joint_set)("coco", ("a", "b"), ())
    with pytest.raises(ValueError, match="takes hand joints"):
        Trainer(model, body_ds, TrainConfig(), tmp_path)
    assert os.path.isdir(tmp_path)
    with pytest.raises(ValueError, match="lr_schedule"):
        Trainer(model, ds, TrainConfig(lr_schedule="linear"), tmp_path)
    with pytest.raises(ValueError, match="the model is mirrored"):
        Trainer(model.mirrored(), ds, TrainConfig(), tmp_path)


def test_cosine_schedule_per_step(hand, tmp_path):
    """Each stage anneals from lr to lr * lr_decay along a half cosine, one value per step."""
    import math

    model, ds = _setup(hand)
    seen: list[tuple[int, float]] = []
    cfg = TrainConfig(**(CFG | {"lr_schedule": "cosine", "lr": 0.01, "lr_decay": 0.05,
                                "posenet_lr_scale": 0.1}))  # fmt: skip

    def record(t: Trainer) -> None:
        groups = t.optimizer.param_groups
        if t.stage == 2:  # PoseNet's group runs at a tenth of the rate
            assert groups[0]["lr"] == pytest.approx(0.1 * groups[1]["lr"], rel=1e-12)
            assert {id(p) for p in groups[0]["params"]} == {
                id(p) for p in t.model.posenet.parameters()
            }
        seen.append((t.stage, groups[-1]["lr"]))

    Trainer(model, ds, cfg, tmp_path, progress=False, on_step=record).fit()
    per_stage = {1: 6, 2: 12}  # steps: 1 epoch of 6, then 2 epochs of 6
    for stage, n in per_stage.items():
        lrs = [lr for s, lr in seen if s == stage]
        expected = [0.0005 + 0.0095 * 0.5 * (1 + math.cos(math.pi * i / n)) for i in range(n)]
        assert lrs == pytest.approx(expected, rel=1e-12)


def test_prefetching_changes_no_number(hand, tmp_path):
    """Batches made in a background thread during each step give the same run, bit for bit."""
    weights = {}
    for prefetch in (False, True):
        model, ds = _setup(hand)
        trainer = Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 8})),
                          tmp_path / str(prefetch), progress=False, prefetch=prefetch)  # fmt: skip
        trainer.fit()
        assert trainer.prefetch is prefetch and trainer._pool is None  # the thread is gone
        weights[prefetch] = _weights(model)
    for k, v in weights[False].items():
        torch.testing.assert_close(weights[True][k], v, rtol=0, atol=0, msg=k)
    default = Trainer(*_setup(hand), TrainConfig(**CFG), tmp_path / "c")  # on the CPU:
    assert not default.prefetching(1) and not default.prefetching(2)  # CPU: no data thread
    forced = Trainer(*_setup(hand), TrainConfig(**CFG), tmp_path / "d", prefetch=False)
    assert not forced.prefetching(1)


def test_batches_made_in_groups_change_no_number(hand, tmp_path):
    """Any batches_per_load gives the same run bit for bit, also resumed at an odd step."""
    cfg = TrainConfig(**CFG)  # 6 steps an epoch: groups of 4 end with a group of 2
    weights, calls = {}, {}
    for n in (1, 2, 4):
        model, ds = _setup(hand)
        sizes = []
        made = ds.__getitems__
        ds.__getitems__ = lambda idx, made=made, sizes=sizes: sizes.append(len(idx)) or made(idx)
        Trainer(model, ds, cfg, tmp_path / str(n), progress=False, batches_per_load=n).fit()
        weights[n], calls[n] = _weights(model), sizes
    assert calls[1] == [16] * 18
    assert calls[2] == [32] * 9
    assert calls[4] == [64, 32] * 3
    for n in (2, 4):
        for k, v in weights[1].items():
            torch.testing.assert_close(weights[n][k], v, rtol=0, atol=0, msg=f"{n}: {k}")
    # stopped after 3 steps (inside a group of 2), then resumed
    model, ds = _setup(hand)
    out = tmp_path / "resumed"
    Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 3})), out, progress=False).fit()
    model, ds = _setup(hand, seed=5)  # other initial weights: all come from the checkpoint
    when = TrainConfig(**(CFG | {"checkpoint_every": None}))  # not the schedule: accepted
    Trainer(model, ds, when, out, progress=False).fit(resume=True)
    for k, v in weights[1].items():
        torch.testing.assert_close(_weights(model)[k], v, rtol=0, atol=0, msg=k)


def test_posenet_stage_asks_for_no_mesh(hand, tmp_path):
    """Stage-1 batches are made without the mesh, stage-2 batches with it; the dataset's
    setting comes back after the run, also after a failed one."""
    model, ds = _setup(hand)
    seen = []
    made = ds.__getitems__
    ds.__getitems__ = lambda idx: seen.append((ds.with_mesh, sorted(out := made(idx)))) or out
    Trainer(model, ds, TrainConfig(**CFG), tmp_path / "a", progress=False).fit()
    stage1, stage2 = seen[:3], seen[3:]  # 6 steps an epoch in pairs: 3 calls per epoch
    assert len(seen) == 9 and all(not m for m, _ in stage1) and all(m for m, _ in stage2)
    assert all("vertices" not in keys and "joints_3d" in keys for _, keys in stage1)
    assert all("vertices" in keys and "mesh_joints_3d" in keys for _, keys in stage2)
    assert ds.with_mesh is True
    # a dataset set to make no mesh is refused before any step (stage 2 needs the vertices)
    ds.with_mesh = False
    with pytest.raises(ValueError, match="with_mesh=False"):
        Trainer(model, ds, TrainConfig(**CFG), tmp_path / "b", progress=False).fit()
    assert ds.with_mesh is False


def test_mid_epoch_checkpoints_by_steps_or_by_time(hand, tmp_path, monkeypatch):
    """checkpoint_every=N: every N-th step and every epoch's end; None: after the step at which
    CHECKPOINT_EVERY_S has passed since the last one, and at the end of the run."""
    from meshgraph.training import trainer as trainer_module

    def saves(cfg, name):
        trainer = Trainer(*_setup(hand), TrainConfig(**cfg), tmp_path / name, progress=False)
        where = []
        save = trainer._save_checkpoint
        trainer._save_checkpoint = lambda e, s, r=None: where.append((e, s)) or save(e, s, r)
        trainer.fit()
        return where

    every_2 = saves(CFG, "steps")  # 3 epochs of 6 steps
    assert every_2 == [(0, 2), (0, 4), (1, 0), (1, 2), (1, 4), (2, 0), (2, 2), (2, 4), (3, 0)]
    by_time = CFG | {"checkpoint_every": None}
    assert saves(by_time, "long") == [(3, 0)]  # 60 s never pass here: the end of the run
    monkeypatch.setattr(trainer_module, "CHECKPOINT_EVERY_S", 0.0)
    expected = [x for e in range(3) for x in [(e, s) for s in range(1, 6)] + [(e + 1, 0)]]
    assert saves(by_time, "zero") == expected  # after every step
    assert TrainConfig().checkpoint_every is None


def test_time_rule_run_stopped_at_an_epoch_end_resumes_exactly(hand, tmp_path):
    """With checkpoints by time, a run stopped at the end of an epoch (no checkpoint due there)
    still writes its position, and the resumed run ends with the uninterrupted weights."""
    cfg = CFG | {"checkpoint_every": None}
    model, ds = _setup(hand)
    Trainer(model, ds, TrainConfig(**cfg), tmp_path / "full", progress=False).fit()
    full = _weights(model)
    model, ds = _setup(hand)
    out = tmp_path / "stopped"
    Trainer(model, ds, TrainConfig(**(cfg | {"max_steps": 6})), out, progress=False).fit()
    model, ds = _setup(hand, seed=5)
    hist = Trainer(model, ds, TrainConfig(**cfg), out, progress=False).fit(resume=True)
    assert [r["epoch"] for r in hist] == [0, 1, 2]
    for k, v in full.items():
        torch.testing.assert_close(_weights(model)[k], v, rtol=0, atol=0, msg=k)


def test_batches_per_load_is_checked(hand, tmp_path):
    with pytest.raises(ValueError, match="batches_per_load must be at least 1, got 0"):
        Trainer(*_setup(hand), TrainConfig(**CFG), tmp_path, batches_per_load=0)
    with pytest.raises(TypeError, match="batches_per_load must be an int"):
        Trainer(*_setup(hand), TrainConfig(**CFG), tmp_path, batches_per_load=2.0)


def test_default_prefetching_changes_no_number(hand, tmp_path):
    """The CPU default makes no data thread; a thread that stops at stage 2 changes no number."""

    class StageOneThread(Trainer):  # a thread while PoseNet trains alone, none in stage 2
        def prefetching(self, stage: int) -> bool:
            return stage == 1

    weights = {}
    threads: list[tuple[str, int, bool]] = []
    for name, cls in (("default", Trainer), ("stage1", StageOneThread)):
        model, ds = _setup(hand)
        cfg = TrainConfig(**(CFG | {"max_steps": 9}))  # 6 stage-1 steps, 3 of stage 2

        def record(t: Trainer, n: str = name) -> None:
            threads.append((n, t.stage, t._pool is not None))

        cls(model, ds, cfg, tmp_path / name, progress=False, on_step=record).fit()
        weights[name] = _weights(model)
    assert set(threads[:9]) == {("default", 1, False), ("default", 2, False)}
    # the thread ends when prefetching stops: its OpenMP team would slow the CPU step down
    assert set(threads[9:]) == {("stage1", 1, True), ("stage1", 2, False)}
    for k, v in weights["default"].items():
        torch.testing.assert_close(weights["stage1"][k], v, rtol=0, atol=0, msg=k)


def test_fused_adam_takes_the_steps_of_the_reference_adam():
    """The trainer's Adam uses the fused kernel; its steps equal torch's default Adam's."""
    from meshgraph.training.trainer import _optimizer

    torch.manual_seed(0)
    params = [torch.randn(40, 30), torch.randn(30)]
    ours = [p.clone().requires_grad_() for p in params]
    ref = [p.clone().requires_grad_() for p in params]
    opt = _optimizer(torch.optim.Adam, [{"params": ours}], 1e-2)
    assert opt.defaults["fused"] is True
    ref_opt = torch.optim.Adam(ref, lr=1e-2, foreach=False)
    for step in range(5):
        grads = [torch.randn_like(p) * (step + 1) for p in params]
        for p, q, g in zip(ours, ref, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref_opt.step()
    for p, q in zip(ours, ref, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)
        assert not torch.equal(p, params[0] if p.dim() == 2 else params[1])  # it moved
    # RMSprop has no fused kernel: the plain one
    assert not _optimizer(torch.optim.RMSprop, [{"params": ref}], 1e-2).defaults.get("fused")


def test_bf16_autocast_trains_in_float32_weights(hand, tmp_path):
    """bf16: the forward pass in bfloat16, weights and losses in float32, close to float32."""
    runs, losses = {}, {}
    start = _weights(_setup(hand)[0])
    for bf16 in (False, True):
        model, ds = _setup(hand)
        cfg = TrainConfig(**(CFG | {"max_steps": 8, "bf16": bf16}))
        history = Trainer(model, ds, cfg, tmp_path / str(bf16), progress=False).fit()
        losses[bf16] = history[0]["loss_total"]  # stage 1, the first epoch
        assert all(p.dtype == torch.float32 for p in model.parameters())
        assert all(torch.isfinite(p).all() for p in model.parameters())
        runs[bf16] = (model, _weights(model))

    def update(weights: dict) -> torch.Tensor:
        return torch.cat([(weights[k] - v).flatten() for k, v in start.items()
                          if v.is_floating_point() and "running" not in k])  # fmt: skip

    fp32, bf16 = update(runs[False][1]), update(runs[True][1])
    assert not torch.equal(fp32, bf16)  # bfloat16 rounding reached the weights
    # ... but they took the same steps: the updates point the same way, the losses agree
    assert torch.nn.functional.cosine_similarity(fp32, bf16, dim=0) > 0.9
    assert losses[True] == pytest.approx(losses[False], rel=0.05)
    # a run is resumed only with the same precision; a checkpoint without the field ran fp32
    with pytest.raises(ValueError, match="another training configuration"):
        Trainer(runs[True][0], _setup(hand)[1], TrainConfig(**(CFG | {"bf16": False})),
                tmp_path / "True", progress=False).fit(resume=True)  # fmt: skip
    ckpt = tmp_path / "False" / "checkpoint.pt"
    state = torch.load(ckpt, weights_only=True)
    del state["config"]["bf16"]
    torch.save(state, ckpt)
    Trainer(runs[False][0], _setup(hand)[1], TrainConfig(**(CFG | {"max_steps": 9})),
            tmp_path / "False", progress=False).fit(resume=True)  # fmt: skip


# Dynamo's tracing raises torch's own warnings (autograd.Function instantiated, .grad of
# non-leaf tensors read); as errors, they abort the trace
@pytest.mark.filterwarnings("ignore")
def test_compiled_forward_trains_like_eager(hand, tmp_path):
    """compile=True: both stages run compiled forward passes that compute the eager ones.

    Without dropout (compiled code draws its masks from another generator). The weights are
    not compared: a linear bias before BatchNorm has a zero gradient up to rounding, which
    Adam normalises into full steps either way.
    """
    losses, trainers = {}, {}
    for compile_ in (False, True):
        model, ds = _setup(hand, posenet_dropout=0.0)
        cfg = TrainConfig(**(CFG | {"max_steps": 8, "compile": compile_}))
        trainer = Trainer(model, ds, cfg, tmp_path / str(compile_), progress=False)
        losses[compile_] = trainer.fit()[0]["loss_total"]  # the stage-1 epoch
        assert (trainer._forward is not trainer.net) is compile_
        trainers[compile_] = trainer
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)
    compiled = trainers[True]
    assert compiled.stage == 2  # the whole model, compiled
    compiled.model.eval()
    x = compiled.dataset.__getitems__(list(range(4)))["keypoints_2d"]
    with torch.no_grad():
        out, ref = compiled._forward(x), compiled.net(x)
    for k, v in ref.items():
        torch.testing.assert_close(out[k], v, rtol=1e-4, atol=1e-5, msg=k)


def test_loss_figure_is_redrawn_sparingly_and_at_the_end(hand, tmp_path, monkeypatch):
    """losses.png: the first epoch, then at most every PLOT_EVERY_S, and the last epoch."""
    import meshgraph.training.trainer as trainer_module

    monkeypatch.setattr(trainer_module, "PLOT_EVERY_S", 3600.0)
    drawn: list[int] = []
    real = Trainer._plot

    def counting(self):
        drawn.append(len(self.history))
        real(self)

    monkeypatch.setattr(Trainer, "_plot", counting)
    model, ds = _setup(hand)
    Trainer(model, ds, TrainConfig(**CFG), tmp_path, progress=False).fit()  # 3 epochs
    assert drawn == [1, 3]
    assert (tmp_path / "losses.png").stat().st_size > 0


def _hand_2d(ds, n=40, start=100):
    """2D-only samples: the pixels of some of the synthetic hands, with their detections."""
    from meshgraph.datasets.base import KeypointDataset

    batch = ds.__getitems__(list(range(start, start + n)))
    visible = batch.get("visible", torch.ones(batch["keypoints_2d"].shape[:2], dtype=torch.bool))
    return KeypointDataset(name="hands 2D", joint_set="hand",
                           pixels=batch["keypoints_2d_pixels"].numpy(),
                           visible=visible.numpy())  # fmt: skip


def test_2d_only_samples_train_and_resume_exactly(hand, tmp_path):
    """2D-only samples join every step (a reprojection term in both stages); a run stopped
    mid-epoch resumes to the uninterrupted weights, and the term is what trains: PoseNet
    trained on it alone lowers it."""
    cfg = CFG | {"batch_size_2d": 8, "w_2d": 0.5}
    model, ds = _setup(hand)
    d2 = _hand_2d(ds)
    trainer = Trainer(model, ds, TrainConfig(**cfg), tmp_path / "full", progress=False,
                      dataset_2d=d2)  # fmt: skip
    hist = trainer.fit()
    assert all(r["loss_2d"] > 0 for r in hist)
    assert hist[0]["loss_total"] == pytest.approx(hist[0]["loss_pose"] + 0.5 * hist[0]["loss_2d"])
    full = _weights(model)
    # every 2D sample is visited within an epoch's steps (40 samples, 8 a step, 6 steps)
    trainer._epoch = 1
    seen = torch.cat([trainer._indices_2d(s) for s in range(5)])
    assert sorted(seen.tolist()) == list(range(40))
    model, ds = _setup(hand)
    out = tmp_path / "stopped"
    Trainer(model, ds, TrainConfig(**(cfg | {"max_steps": 9})), out, progress=False,
            dataset_2d=_hand_2d(ds)).fit()  # fmt: skip
    model, ds = _setup(hand, seed=5)
    Trainer(model, ds, TrainConfig(**cfg), out, progress=False, dataset_2d=_hand_2d(ds)).fit(
        resume=True
    )
    for k, v in full.items():
        torch.testing.assert_close(_weights(model)[k], v, rtol=0, atol=0, msg=k)
    # the reprojection term alone trains PoseNet towards the 2D data
    model, ds = _setup(hand)
    only_2d = CFG | {"posenet_epochs": 4, "epochs": 0, "w_pose": 0.0, "batch_size_2d": 16,
                     "lr": 1e-2}  # fmt: skip
    hist = Trainer(model, ds, TrainConfig(**only_2d), tmp_path / "only", progress=False,
                   dataset_2d=d2).fit()  # fmt: skip
    # (0.80 is what random 3D joints cost on these samples, 0.15 their true 3D joints)
    assert hist[-1]["loss_2d"] < 0.85 * hist[0]["loss_2d"], [r["loss_2d"] for r in hist]


def test_2d_only_samples_are_checked(hand, tmp_path):
    model, ds = _setup(hand)
    with pytest.raises(ValueError, match=r"needs both a dataset_2d and config\.batch_size_2d"):
        Trainer(model, ds, TrainConfig(batch_size_2d=4), tmp_path)
    with pytest.raises(ValueError, match=r"needs both a dataset_2d and config\.batch_size_2d"):
        Trainer(model, ds, TrainConfig(), tmp_path, dataset_2d=_hand_2d(ds, 4))
    from meshgraph.datasets.base import KeypointDataset

    body_2d = KeypointDataset(name="bodies", joint_set="coco",
                              pixels=torch.rand(3, 19, 2).numpy() * 100,
                              visible=torch.ones(3, 19, dtype=torch.bool).numpy())  # fmt: skip
    with pytest.raises(ValueError, match="takes hand joints, dataset_2d gives coco"):
        Trainer(model, ds, TrainConfig(batch_size_2d=4), tmp_path, dataset_2d=body_2d)
    with pytest.raises(ValueError, match="batch_size_2d must be a non-negative integer"):
        TrainConfig(batch_size_2d=-1)
    with pytest.raises(ValueError, match="w_2d must be a non-negative finite number"):
        TrainConfig(w_2d=float("nan"))


def test_train_seconds_add_up_over_a_resume(hand, tmp_path, monkeypatch):
    """A resumed run's training time is the whole schedule's, not the last process's."""
    import time
    from types import SimpleNamespace

    import meshgraph.training.trainer as trainer_module

    clock = [1000.0]  # a fake clock: 10 s a training step, nothing else takes time
    fake = SimpleNamespace(perf_counter=lambda: clock[0], monotonic=time.monotonic)
    monkeypatch.setattr(trainer_module, "time", fake)

    def tick(_trainer):
        clock[0] += 10.0

    out = tmp_path / "run"
    model, ds = _setup(hand)
    first = Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 4})), out, progress=False)
    first.on_step = tick
    first.fit()
    assert first.train_seconds == pytest.approx(40.0)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["train_seconds"] == 40.0
    clock[0] += 3600.0  # the run lay stopped for an hour: not training time
    model, ds = _setup(hand)
    second = Trainer(model, ds, TrainConfig(**CFG), out, progress=False)
    second.on_step = tick
    second.fit(resume=True)
    assert second.step == 18 and second.train_seconds == pytest.approx(180.0)

    # a checkpoint from before the field existed: the logged epochs' seconds instead
    stopped = tmp_path / "old"
    model, ds = _setup(hand)
    third = Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 8})), stopped, progress=False)
    third.on_step = tick
    third.fit()  # epoch 0 (6 steps, 60 s) logged, 2 steps of epoch 1 not
    state = torch.load(stopped / "checkpoint.pt", weights_only=True)
    assert state["history"][0]["seconds"] == 60.0 and state.pop("train_seconds") == 80.0
    torch.save(state, stopped / "checkpoint.pt")
    model, ds = _setup(hand)
    fourth = Trainer(model, ds, TrainConfig(**CFG), stopped, progress=False)
    fourth.on_step = tick
    fourth.fit(resume=True)
    assert fourth.train_seconds == pytest.approx(60.0 + 100.0)  # the 10 steps it ran
