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
