"""The README's usage example must run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_usage_block_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MESHGRAPH_CACHE_DIR", str(tmp_path))
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    assert capsys.readouterr().out.strip() == "[2562, 1378, 756, 401]"
    assert tuple(namespace["y"].shape) == (8, 1378, 32)
    assert tuple(namespace["z"].shape) == (8, 2562, 32)
    assert (namespace["back"] == namespace["x"]).all()
    assert list(tmp_path.glob("hierarchy-*.npz"))


def test_readme_names_exactly_two_commands():
    text = README.read_text()
    section = text.split("## Two commands for a fresh machine", 1)[1].split("\n## ", 1)[0]
    bash_blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert [b.strip() for b in bash_blocks] == ["make demo", "make test"]


def test_readme_bodies_block_runs(anny_body, monkeypatch):
    import meshgraph.bodies

    # reuse the session's model instead of building a second one
    monkeypatch.setattr(meshgraph.bodies, "AnnyModel", lambda kind: anny_body)
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    namespace: dict = {}
    exec(compile(blocks[1], str(README), "exec"), namespace)
    assert tuple(namespace["batch"]["keypoints_2d"].shape) == (64, 19, 2)
    assert tuple(namespace["batch"]["vertices"].shape) == (64, 13718, 3)
    assert namespace["graph"].num_vertices == 19


def test_readme_shipped_models_block_and_commands_run(tmp_path, monkeypatch):
    """The shipped-weights example and the predict commands next to it, as written."""
    import json
    import shlex

    import torch

    from meshgraph.cli import main

    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    block = next(b for b in blocks if "Pose2Mesh.pretrained" in b)
    root = README.parent
    kp = json.loads((root / "examples/data/body_keypoints.json").read_text())["keypoints"]
    namespace: dict = {"keypoints": kp}
    exec(compile(block, str(README), "exec"), namespace)
    pred = namespace["pred"]
    assert pred.vertices.shape == (1, namespace["body"].num_vertices, 3)
    assert namespace["left"].config.mirror and not namespace["hand"].config.mirror
    # the example's keypoints are a held-out body: the mesh is a person-sized thing
    extent = pred.vertices[0].amax(0) - pred.vertices[0].amin(0)
    assert 1.2 < float(extent.max()) < 2.3, extent
    assert torch.isfinite(pred.camera).all()
    # the bash lines that run `meshgraph predict` on the example keypoints
    monkeypatch.chdir(root)
    commands = [line.split("#")[0] for b in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
                for line in b.splitlines() if "examples/data/" in line]  # fmt: skip
    assert len(commands) == 2
    for command in commands:
        argv = shlex.split(command)[1:]
        out = tmp_path / argv[argv.index("--out") + 1]
        argv[argv.index("--out") + 1] = str(out)
        assert main(argv) == 0, command
        assert (out / "mesh.obj").stat().st_size > 0
