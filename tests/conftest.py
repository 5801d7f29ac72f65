"""Shared fixtures: device and dtype from the command line, fixed seeds."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from hypothesis import settings

# CI explores the same examples every run (a failure there is reproducible); locally,
# hypothesis draws new ones each time.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="torch device to test on (cpu, cuda, ...)")
    parser.addoption("--dtype", default="float32", help="default floating dtype for tests")


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.config.getoption("--device"))


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return getattr(torch, request.config.getoption("--dtype"))


@pytest.fixture(autouse=True)
def _fixed_seeds() -> None:
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - seeds legacy global state that third-party code uses
    torch.manual_seed(0)


# Anny models are built once per test session (the first construction on a machine also
# builds Anny's own cache, about a minute per model).
@pytest.fixture(scope="session")
def anny_body(tmp_path_factory):
    pytest.importorskip("anny")
    from meshgraph.bodies import AnnyModel

    return AnnyModel("body", regressor_cache_dir=tmp_path_factory.mktemp("regressors"))


@pytest.fixture(scope="session")
def anny_hand(tmp_path_factory):
    pytest.importorskip("anny")
    from meshgraph.bodies import AnnyModel

    return AnnyModel("hand.R", regressor_cache_dir=tmp_path_factory.mktemp("regressors"))


@pytest.fixture
def body(anny_body):
    """The session's Anny body (short name for the tests of bodies and data)."""
    return anny_body


@pytest.fixture
def hand(anny_hand):
    """The session's right Anny hand."""
    return anny_hand
