"""The IMAP syntax library stays pure: no store, no directory, no sockets, no event loop."""

from __future__ import annotations

import ast
from pathlib import Path

import govmail.imap.proto

FORBIDDEN = ("govmail.store", "govmail.mailstore", "govmail.directory", "asyncio", "socket")


def imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def test_proto_imports_nothing_impure() -> None:
    package = Path(govmail.imap.proto.__file__).parent
    files = sorted(package.rglob("*.py"))
    assert files
    for path in files:
        for module in imported_modules(path.read_text(encoding="utf-8")):
            for forbidden in FORBIDDEN:
                assert module != forbidden and not module.startswith(forbidden + "."), (
                    f"{path.name} imports {module}"
                )
