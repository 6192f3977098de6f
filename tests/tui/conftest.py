"""Fixture run folders for the TUI tests (deterministic: fixed times, values and names)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_fixtures import write_eval_run, write_rl_run, write_sft_run


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # async tests run with anyio's pytest plugin (anyio comes with httpx)


@pytest.fixture
def rl_run(tmp_path: Path) -> Path:
    return write_rl_run(tmp_path / "rl-demo")


@pytest.fixture
def sft_run(tmp_path: Path) -> Path:
    return write_sft_run(tmp_path / "sft-demo")


@pytest.fixture
def eval_run(tmp_path: Path) -> Path:
    return write_eval_run(tmp_path / "eval-demo")
