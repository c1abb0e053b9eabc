"""Run the real ``govmail`` command in-process against a data directory."""

from __future__ import annotations

from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from govmail.cli.app import app

_runner = CliRunner()


def cli(data_dir: Path, *args: str) -> Result:
    """``govmail ARGS --data DATA_DIR``; the options go last, as an operator may type them."""
    return _runner.invoke(app, [*args, "--data", str(data_dir)], catch_exceptions=False)


def add_official(data_dir: Path, name: str, agency: str = "ttr", *extra: str) -> Result:
    """``govmail person add`` with an agreed password, for tests that need someone there."""
    return cli(
        data_dir,
        "person",
        "add",
        "--agency",
        agency,
        "--name",
        name,
        "--password",
        "12345678",
        *extra,
    )
