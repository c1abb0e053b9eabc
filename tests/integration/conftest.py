"""Fixtures of the mail tests: a small province and a real server on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.clihelp import add_official, cli
from tests.integration.mailserver import RunningServer, served


@pytest.fixture
def province(data_dir: Path) -> Path:
    """Thanh tra tỉnh (agency mailbox ttr@) with two officials, nvan@ and ltbinh@, whose
    password is 12345678. (Some test modules define a province of their own.)"""
    assert (
        cli(data_dir, "agency", "add", "--name", "Thanh tra tỉnh", "--abbr", "ttr").exit_code == 0
    )
    assert add_official(data_dir, "Nguyễn Văn An").exit_code == 0
    assert add_official(data_dir, "Lê Thị Bình").exit_code == 0
    return data_dir


@pytest.fixture
def server(province: Path) -> Iterator[RunningServer]:
    """``govmail serve`` on ephemeral loopback ports over ``province``."""
    with served(province) as running:
        yield running
