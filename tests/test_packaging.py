"""The distribution's metadata: its name, and which extras pull in licence-restricted code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings, normalised (PEP 503)."""
    out = set()
    for req in requirements:
        name = re.match(r"[A-Za-z0-9._-]+", req).group(0)
        out.add(re.sub(r"[-_.]+", "-", name).lower())
    return out


def test_distribution_name_is_not_the_unrelated_pypi_project():
    # PyPI's "meshgraph" (1.0.0, 2022) is another project: installing it by that name would
    # give users the wrong package
    assert PROJECT["name"] != "meshgraph"
    assert PROJECT["name"] == "torch-meshgraph"


def test_default_and_body_installs_hold_no_noncommercial_code():
    extras = PROJECT["optional-dependencies"]
    assert "smplx" not in _names(PROJECT["dependencies"])
    assert "smplx" not in _names(extras["body"])
    assert {"anny", "trimesh"} <= _names(extras["body"])
    assert _names(extras["smpl"]) == {"smplx"}
    # only `smpl` and the everything-extra may bring smplx in
    for extra, reqs in extras.items():
        if extra not in ("smpl", "all"):
            text = " ".join(reqs)
            assert "smplx" not in text and "smpl]" not in text and "smpl," not in text, extra


def test_self_referencing_extras_use_the_distribution_name():
    name = PROJECT["name"]
    for extra in ("dev", "all"):
        refs = [r for r in PROJECT["optional-dependencies"][extra] if "[" in r]
        assert refs and all(r.startswith(f"{name}[") for r in refs), (extra, refs)


def test_readme_and_docs_install_the_distribution_name():
    name = PROJECT["name"]
    for path in (ROOT / "README.md", ROOT / "docs" / "installation.rst"):
        # the command lines (prose may name the unrelated project on purpose)
        lines = [ln for ln in path.read_text().splitlines() if re.match(r"\s*pip install\b", ln)]
        installs = [ln for ln in lines if re.search(r"pip install \S*meshgraph", ln)]
        assert installs, path
        for ln in installs:
            assert re.search(rf"pip install \"?{re.escape(name)}\b", ln), (path, ln)
