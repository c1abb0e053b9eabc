"""Realistic, entirely fictitious Vietnamese provincial directories for demos and benchmarks."""

from __future__ import annotations

import random
import tomllib
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from itertools import accumulate
from typing import Any

DEFAULT_SEED = 1480  # the regulation's number: Quyết định 1480/QĐ-UBND


@dataclass(frozen=True)
class SampleOfficial:
    full_name: str
    position: str
    department: str


@dataclass(frozen=True)
class SampleAgency:
    """An agency of the demo province; ``abbr`` is its own short abbreviation.

    A child agency's address is ``<abbr>_<parent_abbr>`` (R4); building it is the
    directory's job, not this module's.
    """

    name: str
    abbr: str
    parent_abbr: str | None
    officials: tuple[SampleOfficial, ...]


def generate_officials(n: int, seed: int = DEFAULT_SEED) -> list[SampleOfficial]:
    """Return ``n`` fictitious officials; the same ``(n, seed)`` always gives the same list.

    Names follow realistic weights, so same-name people are as common as in a real
    province (about 11,000–12,000 distinct R5 addresses for 20,000 officials).
    """
    if n < 0:
        raise ValueError(f"n must not be negative, got {n}")
    words = _word_lists()
    rng = random.Random(seed)
    return [
        SampleOfficial(
            full_name=_full_name(rng, words),
            position=words.positions.pick(rng),
            department=words.departments.pick(rng),
        )
        for _ in range(n)
    ]


def demo_province(seed: int = DEFAULT_SEED) -> list[SampleAgency]:
    """Return the demo province's agencies, parents before children, with their staff.

    About 300 officials over 12 provincial departments and 4 communes/wards with their
    sub-units. Besides the random staff, a few fixed namesakes guarantee same-address
    people within one agency and across agencies (see ``sample_names.toml``).
    """
    words = _word_lists()
    rng = random.Random(seed)
    namesakes: dict[str, list[str]] = {}
    for entry in words.demo_namesakes:
        namesakes.setdefault(entry["agency"], []).append(entry["full_name"])

    agencies: list[SampleAgency] = []
    for spec in words.demo_agencies:
        kind = words.demo_kinds[spec.kind]
        leaders = spec.leaders if spec.leaders is not None else kind.leaders
        departments = spec.departments if spec.departments is not None else kind.departments
        staff = [
            SampleOfficial(_full_name(rng, words), position, kind.leader_department)
            for position in leaders[: spec.officials]
        ]
        for _ in range(spec.officials - len(staff)):
            department = rng.choice(departments) if departments else ""
            staff.append(
                SampleOfficial(_full_name(rng, words), kind.positions.pick(rng), department)
            )
        for full_name in namesakes.pop(spec.address, []):
            department = rng.choice(departments) if departments else ""
            staff.append(SampleOfficial(full_name, kind.positions.pick(rng), department))
        agencies.append(SampleAgency(spec.name, spec.abbr, spec.parent, tuple(staff)))

    if namesakes:
        # A typo in the data file must not silently drop the demo's namesakes.
        raise ValueError(f"namesakes name unknown agencies: {sorted(namesakes)}")
    return agencies


# --- word lists -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Weighted:
    """Values with cumulative weights, for ``random.choices``."""

    values: tuple[str, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def from_table(cls, table: Mapping[str, Any]) -> _Weighted:
        values = tuple(_nfc(key) for key in table)
        return cls(values, tuple(accumulate(float(weight) for weight in table.values())))

    def pick(self, rng: random.Random) -> str:
        return rng.choices(self.values, cum_weights=self.cum_weights)[0]


@dataclass(frozen=True)
class _DemoKind:
    leaders: tuple[str, ...]
    leader_department: str
    departments: tuple[str, ...]
    positions: _Weighted


@dataclass(frozen=True)
class _DemoAgency:
    name: str
    abbr: str
    parent: str | None
    kind: str
    officials: int
    leaders: tuple[str, ...] | None
    departments: tuple[str, ...] | None

    @property
    def address(self) -> str:
        return self.abbr if self.parent is None else f"{self.abbr}_{self.parent}"


@dataclass(frozen=True)
class _WordLists:
    female_share: float
    surnames: _Weighted
    middle: Mapping[str, _Weighted]
    given: Mapping[str, _Weighted]
    positions: _Weighted
    departments: _Weighted
    demo_kinds: Mapping[str, _DemoKind]
    demo_agencies: tuple[_DemoAgency, ...]
    demo_namesakes: tuple[Mapping[str, str], ...]


def _full_name(rng: random.Random, words: _WordLists) -> str:
    gender = "female" if rng.random() < words.female_share else "male"
    surname = words.surnames.pick(rng)
    middle = words.middle[gender].pick(rng)
    # Some middle names are a mother's surname ("Lê Minh"); "Lê Lê Minh …" is no name.
    while middle.split(" ", 1)[0] == surname:
        middle = words.middle[gender].pick(rng)
    given = words.given[gender].pick(rng)
    # Nor is "Nguyễn Minh Minh": the given name never repeats a middle word.
    while given in middle.split(" "):
        given = words.given[gender].pick(rng)
    return f"{surname} {middle} {given}"


def _nfc(text: str) -> str:
    # The data file is NFC, but an editor may save it decomposed; names must be NFC.
    return unicodedata.normalize("NFC", text)


def _strings(items: Sequence[Any]) -> tuple[str, ...]:
    return tuple(_nfc(str(item)) for item in items)


@cache
def _word_lists() -> _WordLists:
    raw = files("govmail.data").joinpath("sample_names.toml").read_text(encoding="utf-8")
    data = tomllib.loads(raw)
    demo = data["demo"]
    kinds = {
        name: _DemoKind(
            leaders=_strings(kind["leaders"]),
            leader_department=_nfc(kind["leader_department"]),
            departments=_strings(kind["departments"]),
            positions=_Weighted.from_table(kind["positions"]),
        )
        for name, kind in demo["kinds"].items()
    }
    agencies = tuple(
        _DemoAgency(
            name=_nfc(spec["name"]),
            abbr=spec["abbr"],
            parent=spec.get("parent"),
            kind=spec["kind"],
            officials=int(spec["officials"]),
            leaders=_strings(spec["leaders"]) if "leaders" in spec else None,
            departments=_strings(spec["departments"]) if "departments" in spec else None,
        )
        for spec in demo["agencies"]
    )
    namesakes = tuple(
        {"full_name": _nfc(entry["full_name"]), "agency": str(entry["agency"])}
        for entry in demo["namesakes"]
    )
    return _WordLists(
        female_share=float(data["female_share"]),
        surnames=_Weighted.from_table(data["surnames"]),
        middle={gender: _Weighted.from_table(t) for gender, t in data["middle"].items()},
        given={gender: _Weighted.from_table(t) for gender, t in data["given"].items()},
        positions=_Weighted.from_table(data["positions"]),
        departments=_Weighted.from_table(data["departments"]),
        demo_kinds=kinds,
        demo_agencies=agencies,
        demo_namesakes=namesakes,
    )
