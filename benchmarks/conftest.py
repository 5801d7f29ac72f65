"""pytest-benchmark configuration: devices, machine metadata."""

from __future__ import annotations

import pytest
import torch

from benchmarks._common import machine_info as _machine_info


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--devices",
        default="auto",
        help="comma-separated devices to benchmark (default: cpu, plus cuda when available)",
    )


def _devices(config: pytest.Config) -> list[str]:
    value = config.getoption("--devices")
    if value == "auto":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return [d.strip() for d in value.split(",") if d.strip()]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "device" in metafunc.fixturenames:
        metafunc.parametrize("device", _devices(metafunc.config))


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    machine_info.update(_machine_info())
