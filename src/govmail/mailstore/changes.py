"""Telling sessions that a mailbox changed: delivery, another session's STORE or EXPUNGE.

In one process this is a table of callbacks per mailbox, called on the event loop right
after the change committed. Sessions then read what changed from the store (modseq and
expunge tombstones), so a missed notification only delays, never loses, an update.
(Several ``serve`` nodes on PostgreSQL will carry these over LISTEN/NOTIFY.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

Listener = Callable[[int], None]


class ChangeNotifier:
    """Callbacks per mailbox id; ``publish`` calls each with the mailbox id."""

    def __init__(self) -> None:
        self._listeners: dict[int, set[Listener]] = {}

    def subscribe(self, mailbox_id: int, listener: Listener) -> None:
        self._listeners.setdefault(mailbox_id, set()).add(listener)

    def unsubscribe(self, mailbox_id: int, listener: Listener) -> None:
        listeners = self._listeners.get(mailbox_id)
        if listeners is not None:
            listeners.discard(listener)
            if not listeners:
                del self._listeners[mailbox_id]

    def publish(self, mailbox_ids: Iterable[int]) -> None:
        for box in set(mailbox_ids):
            for listener in list(self._listeners.get(box, ())):
                listener(box)

    def listening(self, mailbox_id: int) -> int:
        """How many listeners a mailbox has (for tests and metrics)."""
        return len(self._listeners.get(mailbox_id, ()))
