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
