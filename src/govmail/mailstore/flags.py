"""Message flags as the store keeps them: system flags as bits, keywords as text."""

from __future__ import annotations

from collections.abc import Iterable

SEEN, ANSWERED, FLAGGED, DELETED, DRAFT = 1, 2, 4, 8, 16
# Wire names of the system flags (RFC 9051 §2.3.2); \Recent is not kept (see imap/).
SYSTEM_FLAGS: dict[str, int] = {
    "\\seen": SEEN,
    "\\answered": ANSWERED,
    "\\flagged": FLAGGED,
    "\\deleted": DELETED,
    "\\draft": DRAFT,
}
_NAMES = {
    SEEN: "\\Seen",
    ANSWERED: "\\Answered",
    FLAGGED: "\\Flagged",
    DELETED: "\\Deleted",
    DRAFT: "\\Draft",
}
# In the order SELECT's FLAGS lists them (Dovecot's).
SYSTEM_FLAG_NAMES = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
MAX_KEYWORDS = 64  # per message: a client cannot grow a row without bound


class Flags:
    """A message's flags: ``bits`` (system flags) and ``keywords`` (in the order they were
    first set, compared case-insensitively as Dovecot does)."""

    __slots__ = ("bits", "keywords")

    def __init__(self, bits: int = 0, keywords: tuple[str, ...] = ()) -> None:
        self.bits = bits
        self.keywords = keywords

    @classmethod
    def parse(cls, names: Iterable[str]) -> Flags:
        """From wire names (``\\Seen``, ``$Forwarded``); unknown backslash flags (such as
        ``\\Recent``) are dropped."""
        bits = 0
        keywords: dict[str, str] = {}
        for name in names:
            if name.startswith("\\"):
                bits |= SYSTEM_FLAGS.get(name.lower(), 0)
            else:
                keywords.setdefault(name.lower(), name)
        return cls(bits, tuple(keywords.values()))

    @classmethod
    def from_row(cls, bits: int, keywords: str | None) -> Flags:
        return cls(bits, tuple(keywords.split()) if keywords else ())

    @property
    def keywords_text(self) -> str | None:
        return " ".join(self.keywords) or None

    def names(self) -> list[str]:
        """Wire names: system flags first, then keywords."""
        out = [name for bit, name in _NAMES.items() if self.bits & bit]
        out.extend(self.keywords)
        return out

    def apply(self, mode: str, change: Flags) -> Flags:
        """The flags after STORE ``+`` (add), ``-`` (remove) or ``""`` (replace)."""
        if mode == "+":
            have = {k.lower() for k in self.keywords}
            added = tuple(k for k in change.keywords if k.lower() not in have)
            return Flags(self.bits | change.bits, (self.keywords + added)[:MAX_KEYWORDS])
        if mode == "-":
            drop = {k.lower() for k in change.keywords}
            return Flags(
                self.bits & ~change.bits, tuple(k for k in self.keywords if k.lower() not in drop)
            )
        return Flags(change.bits, change.keywords[:MAX_KEYWORDS])

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Flags) and self.bits == other.bits and self.keywords == other.keywords
        )

    def __hash__(self) -> int:
        return hash((self.bits, self.keywords))

    def __repr__(self) -> str:
        return f"Flags({self.names()!r})"
