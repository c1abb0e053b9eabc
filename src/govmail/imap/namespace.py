"""Where a folder name on the wire lives: the user's own mailbox, or an agency mailbox
delegated to them (R22), shown in the shared namespace as ``Shared/<agency>/<folder>``.

Thunderbird and Outlook both show a server's shared namespace as a folder tree under the
account ("Shared" → "stttt" → "INBOX", "Sent", ...), with no extra set-up, and mbsync
and phones see plain folder names; so the prefix is a plain English word, as Dovecot's
documented example uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

SHARED = "Shared"
SEPARATOR = "/"


@dataclass(frozen=True)
class Place:
    """A resolved name: the mailbox and the folder name inside it. ``shared`` is the
    agency mailbox's local part when it is a delegated one."""

    mailbox_id: int
    folder: str
    shared: str | None = None


class Namespace:
    """One session's view: its own mailbox and the agency mailboxes it may read."""

    def __init__(self, own_mailbox: int, delegated: dict[str, int]) -> None:
        self.own = own_mailbox
        self.delegated = delegated  # agency local part → mailbox id

    def resolve(self, name: str) -> Place | None:
        """The place a wire name refers to; None for the shared containers themselves
        (``Shared``, ``Shared/stttt``) and for unknown agency names."""
        if name.upper() == "INBOX":
            return Place(self.own, "INBOX")
        if name[:6].upper() == "INBOX/":  # INBOX's children share its case-insensitivity
            return Place(self.own, "INBOX/" + name[6:])
        if name == SHARED or name.startswith(SHARED + SEPARATOR):
            parts = name.split(SEPARATOR, 2)
            if len(parts) < 3 or parts[1] not in self.delegated or not parts[2]:
                return None
            folder = "INBOX" if parts[2].upper() == "INBOX" else parts[2]
            return Place(self.delegated[parts[1]], folder, parts[1])
        return Place(self.own, name)

    def wire_name(self, place: Place) -> str:
        if place.shared is None:
            return place.folder
        return f"{SHARED}{SEPARATOR}{place.shared}{SEPARATOR}{place.folder}"


@lru_cache(maxsize=256)
def _pattern(reference: str, pattern: str) -> re.Pattern[str]:
    """LIST's wildcards: ``*`` matches anything, ``%`` anything but the separator."""
    out = []
    for char in reference + pattern:
        if char == "*":
            out.append(".*")
        elif char == "%":
            out.append("[^/]*")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.S)


def list_matches(reference: str, pattern: str, name: str) -> bool:
    """Whether ``name`` matches LIST's ``reference`` + ``pattern`` (INBOX in any case)."""
    if name == "INBOX":
        full = reference + pattern
        if _pattern("", full.upper() if full[:5].upper() == "INBOX" else full).fullmatch(name):
            return True
    return _pattern(reference, pattern).fullmatch(name) is not None
