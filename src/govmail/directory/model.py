"""What the directory services return: plain records, the same for CLI, web and API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Agency:
    id: int
    name: str
    abbr: str
    address: str
    parent_address: str | None
    external: bool
    status: str
    mailbox_status: str
    parent_name: str | None = None
    depth: int = 0
    aliases: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Person:
    id: int
    full_name: str
    address: str
    agency_name: str
    agency_address: str
    position: str
    department: str
    status: str
    mailbox_status: str
    aliases: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CreatedPerson:
    """A new person and, if one was generated, the initial password shown once."""

    person: Person
    initial_password: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.person.as_dict(), "initial_password": self.initial_password}


@dataclass(frozen=True)
class SearchHit:
    kind: str  # "agency" or "personal"
    name: str
    address: str
    agency_name: str
    position: str
    department: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportSummary:
    agency: str = ""
    created: list[dict[str, Any]] = field(default_factory=list)
    auto_addressed: list[dict[str, Any]] = field(default_factory=list)
    already_present: list[int] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it deep-copies 20,000 records of a large import (1 s).
        return {
            "agency": self.agency,
            "created": self.created,
            "auto_addressed": self.auto_addressed,
            "already_present": self.already_present,
            "skipped": self.skipped,
        }
