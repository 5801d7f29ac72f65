"""Hostile files and faults around training: checkpoints, caches, body files, output folders.

Needs anny (and smplx for the SMPL-family probes).
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("anny")

from meshgraph.cli import main
from meshgraph.data import SyntheticPoseMeshDataset
from meshgraph.io import UnsafeFileError
from meshgraph.models import Pose2Mesh
from meshgraph.training import TrainConfig, Trainer
from tests.test_hostile_files import Payload, _object_array, _one_line_error
from tests.training.test_trainer import _setup

ROOT = Path(__file__).resolve().parents[2]
CFG = {"posenet_epochs": 1, "epochs": 1, "samples_per_epoch": 32, "batch_size": 16,
       "checkpoint_every": 1, "edge_loss_start": 1}  # fmt: skip
TINY = ["--posenet-epochs", "1", "--epochs", "1", "--samples-per-epoch", "32", "--batch-size",
        "16", "--test-samples", "16", "--posenet-width", "32", "--no-progress"]  # fmt: skip


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# ------------------------------------------------------------------ checkpoints
def test_payload_in_a_checkpoint_is_refused_on_resume(hand, tmp_path, capsys):
    marker = tmp_path / "pwned"
    model, ds = _setup(hand)
    out = tmp_path / "run"
    Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 1})), out, progress=False).fit()
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    state["history"] = [Payload(marker)]
    torch.save(state, out / "checkpoint.pt")
    with pytest.raises(UnsafeFileError, match=r"checkpoint\.pt.*refused"):
        Trainer(model, ds, TrainConfig(**CFG), out, progress=False).fit(resume=True)
    assert not marker.exists()
    # through the command: one line, exit 2, and still no code ran
    assert main(["train", "--kind", "hand", "--out", str(out), "--resume", *TINY]) == 2
    _one_line_error(capsys, "checkpoint.pt", "refused")
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["empty", "truncated", "not a checkpoint"])
def test_damaged_checkpoint_is_a_clear_error(hand, tmp_path, damage):
    model, ds = _setup(hand)
    out = tmp_path / "run"
    Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 1})), out, progress=False).fit()
    path = out / "checkpoint.pt"
    data = path.read_bytes()
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:
        torch.save({"weights": torch.zeros(2)}, path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match=r"checkpoint\.pt"):
        Trainer(model, ds, TrainConfig(**CFG), out, progress=False).fit(resume=True)
    assert path.read_bytes() == before  # nothing overwritten


def test_resume_with_another_thread_count_warns(hand, tmp_path):
    model, ds = _setup(hand)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 1})), tmp_path, progress=False).fit()
        torch.set_num_threads(2)
        with pytest.warns(RuntimeWarning, match="resuming with 2 threads.*written with 1"):
            Trainer(model, ds, TrainConfig(**CFG), tmp_path, progress=False).fit(resume=True)
        with warnings.catch_warnings():  # the checkpoint now says 2, as does this run
            warnings.simplefilter("error")
            Trainer(model, ds, TrainConfig(**CFG), tmp_path, progress=False).fit(resume=True)
    finally:
        torch.set_num_threads(threads)


# ------------------------------------------------------------------ lost work
def test_max_steps_still_writes_the_model(hand, tmp_path):
    model, ds = _setup(hand)
    trainer = Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 3})), tmp_path, progress=False)
    trainer.fit()
    assert trainer.stopped and trainer.step == 3
    saved = Pose2Mesh.load(tmp_path / "model.pt")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(saved.state_dict()[k], v, rtol=0, atol=0, msg=k)


def test_max_steps_run_through_the_cli_writes_model_and_says_incomplete(tmp_path):
    import json

    out = tmp_path / "run"
    assert main(["train", "--kind", "hand", "--out", str(out), "--max-steps", "2", *TINY]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 2 and results["complete"] is False
    assert Pose2Mesh.load(out / "model.pt").config.body == "anny-hand.R"


def test_the_cli_trains_with_spirals(tmp_path, capsys):
    from meshgraph.nn import SpiralConv

    out = tmp_path / "run"
    args = ["train", "--kind", "hand", "--out", str(out), "--max-steps", "2", *TINY]
    assert main([*args, "--conv", "spiral", "--spiral-length", "6"]) == 0
    model = Pose2Mesh.load(out / "model.pt")
    assert (model.config.conv, model.config.spiral_length) == ("spiral", 6)
    assert any(isinstance(m, SpiralConv) for m in model.meshnet.modules())
    assert main([*args, "--spiral-length", "6", "--overwrite"]) == 2
    _one_line_error(capsys, "--spiral-length needs --conv spiral")


def test_a_fresh_run_never_overwrites_another(hand, tmp_path, capsys):
    model, ds = _setup(hand)
    out = tmp_path / "run"
    Trainer(model, ds, TrainConfig(**(CFG | {"max_steps": 2})), out, progress=False).fit()
    before = _snapshot(out)
    with pytest.raises(FileExistsError, match="already holds a training run"):
        Trainer(model, ds, TrainConfig(**CFG), out, progress=False).fit()
    assert main(["train", "--kind", "hand", "--out", str(out), *TINY]) == 2
    _one_line_error(capsys, "already holds a training run", "--resume", "--overwrite")
    assert _snapshot(out) == before
    # --overwrite (overwrite=True) starts afresh on purpose
    Trainer(model, ds, TrainConfig(**CFG), out, progress=False).fit(overwrite=True)
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 4


def test_a_folder_held_by_a_live_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    code = (
        "import time\n"
        "from meshgraph.io import folder_lock\n"
        f"with folder_lock({str(out)!r}):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["train", "--kind", "hand", "--out", str(out), *TINY]) == 2
        _one_line_error(capsys, "in use by another meshgraph run", f"pid {holder.pid}")
        assert sorted(p.name for p in out.iterdir()) == [".meshgraph.lock"]
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


# ------------------------------------------------------------------ caches
def test_unwritable_dataset_cache_warns_and_generates(hand, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    ref = SyntheticPoseMeshDataset(hand, 40, joint_set="hand", seed=3)
    with pytest.warns(RuntimeWarning, match="could not write the dataset cache"):
        cached = SyntheticPoseMeshDataset(hand, 40, joint_set="hand", seed=3,
                                          cache_dir=blocker / "cache", shard_size=16,
                                          progress=False)  # fmt: skip
    a, b = ref.__getitems__([0, 17, 39]), cached.__getitems__([0, 17, 39])
    for k in ("vertices", "joints_3d", "keypoints_2d"):  # the same samples (batched apart)
        torch.testing.assert_close(b[k], a[k], msg=k)


def test_payload_in_a_dataset_shard_is_rebuilt_without_running(hand, tmp_path):
    marker = tmp_path / "pwned"
    kwargs = {"joint_set": "hand", "seed": 3, "cache_dir": tmp_path / "c", "shard_size": 16,
              "progress": False}  # fmt: skip
    ds = SyntheticPoseMeshDataset(hand, 20, **kwargs)
    ref = ds.__getitems__([1, 18])
    shard = sorted((tmp_path / "c").glob("synthetic-*.pt"))[0]
    data = torch.load(shard, weights_only=True)
    data["extra"] = Payload(marker)
    torch.save(data, shard)
    with pytest.warns(RuntimeWarning, match="unusable.*refused"):
        again = SyntheticPoseMeshDataset(hand, 20, **kwargs)
    torch.testing.assert_close(again.__getitems__([1, 18])["vertices"], ref["vertices"])
    assert not marker.exists()


def test_payload_in_the_anny_regressor_cache_is_refit(tmp_path):
    from meshgraph.bodies import AnnyModel

    marker = tmp_path / "pwned"
    first = AnnyModel("hand.R", regressor_cache_dir=tmp_path / "reg").joint_regressor("hand")
    (entry,) = (tmp_path / "reg").glob("regressor-*.npz")
    np.savez(entry.with_suffix(""), regressor=_object_array(marker))
    again = AnnyModel("hand.R", regressor_cache_dir=tmp_path / "reg").joint_regressor("hand")
    torch.testing.assert_close(again, first)
    assert not marker.exists()


# ------------------------------------------------------------------ licensed body files
@pytest.mark.parametrize("kind", ["smpl", "smplh", "mano"])
def test_payload_in_smpl_family_files_is_refused(tmp_path, kind):
    pytest.importorskip("smplx")
    from meshgraph.bodies.smpl import SMPLModel
    from tests import humanoid

    marker = tmp_path / "pwned"
    path = humanoid.write(tmp_path / "models", kind)
    SMPLModel(kind, path)  # the clean stand-in loads
    data = humanoid.build(kind)
    if path.suffix == ".npz":
        np.savez(path, **data, extra=_object_array(marker))
    else:
        data["extra"] = Payload(marker)
        path.write_bytes(pickle.dumps(data))
    with pytest.raises(UnsafeFileError, match=rf"{path.name}.*refused"):
        SMPLModel(kind, path)
    assert not marker.exists()
    # a released regressor file with a payload
    np.save(tmp_path / "reg.npy", _object_array(marker), allow_pickle=True)
    joint_set = "hand" if kind == "mano" else "h36m"
    with pytest.raises(UnsafeFileError, match=r"reg\.npy"):
        SMPLModel(kind, humanoid.write(tmp_path / "clean", kind),
                  regressors={joint_set: tmp_path / "reg.npy"})  # fmt: skip
    assert not marker.exists()


def test_dataset_and_evaluate_refuse_non_integers_and_empty_sets(hand):
    from meshgraph.training import evaluate

    ds = SyntheticPoseMeshDataset(hand, 10, joint_set="hand", seed=0)
    with pytest.raises(TypeError, match="indices must be integers"):
        ds.__getitems__([2.5])
    with pytest.raises(TypeError, match="seed must be an integer"):
        SyntheticPoseMeshDataset(hand, 10, joint_set="hand", seed=1.5)
    a = ds.__getitems__([np.int64(3), torch.tensor(4)])["vertices"]  # integer types are fine
    torch.testing.assert_close(a, ds.__getitems__([3, 4])["vertices"])
    model, _ = _setup(hand)
    for bad in (0, 11):
        with pytest.raises(ValueError, match=r"num_samples must be in \[1, 10\]"):
            evaluate(model, ds, num_samples=bad)
