"""The selected folder as one session knows it: message numbers, flags, and turning the
store's changes into the untagged EXPUNGE / FETCH / EXISTS responses the client is owed."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from govmail.imap.namespace import Place
from govmail.imap.proto.model import STAR, SequenceSet
from govmail.imap.proto.response import flag_list
from govmail.mailstore.flags import SYSTEM_FLAG_NAMES, Flags
from govmail.mailstore.messages import Changes, MessageState, Snapshot


class InvalidSequence(Exception):
    """A message number beyond the folder's count (the client answers BAD)."""


class SelectedFolder:
    """UIDs in message-number order, and the flags and modseq last told to the client."""

    def __init__(self, snapshot: Snapshot, place: Place, wire_name: str, *, readonly: bool) -> None:
        folder = snapshot.folder
        self.place = place
        self.wire_name = wire_name
        self.folder_id = folder.id
        self.mailbox_id = folder.mailbox_id
        self.uidvalidity = folder.uidvalidity
        self.uidnext = folder.uidnext
        self.modseq = folder.highest_modseq  # every change up to here is reflected
        self.readonly = readonly
        self.uids: list[int] = snapshot.uids
        # The modseq of each change this session made itself and already answered (STORE,
        # FETCH setting \Seen): the sync does not tell it back.
        self.own: dict[int, int] = {}
        self.keywords: list[str] = list(snapshot.keywords)
        self.dirty = False  # the store says something changed since ``modseq``
        self.generation = 0  # bumped by each change notice, so a sync knows if it saw all

    @property
    def exists(self) -> int:
        return len(self.uids)

    def seq(self, uid: int) -> int:
        """The message number of a UID in the view (0 if not there)."""
        i = bisect_left(self.uids, uid)
        return i + 1 if i < len(self.uids) and self.uids[i] == uid else 0

    def select_uids(self, sequence: SequenceSet, *, by_uid: bool) -> list[int]:
        """The UIDs a sequence set names, ascending. Message numbers beyond the count
        raise InvalidSequence (RFC 9051 §6.4.8: a BAD); UIDs that do not exist are
        simply not there."""
        uids = self.uids
        chosen: set[int] = set()
        if by_uid:
            largest = uids[-1] if uids else 0
            for low, high in sequence.ranges:
                low = largest if low == STAR else low
                high = largest if high == STAR else high
                if low > high:
                    low, high = high, low
                chosen.update(uids[bisect_left(uids, low) : bisect_right(uids, high)])
        else:
            count = len(uids)
            for low, high in sequence.ranges:
                low = count if low == STAR else low
                high = count if high == STAR else high
                if low > high:
                    low, high = high, low
                if high > count or low < 1:
                    raise InvalidSequence()
                chosen.update(uids[low - 1 : high])
        return sorted(chosen)

    def note_flags(self, states: list[MessageState]) -> None:
        """Record flags this session itself set (and already told the client)."""
        for state in states:
            self.own[state.uid] = state.modseq

    def remove(self, uids: list[int]) -> list[bytes]:
        """EXPUNGE responses for UIDs leaving the view, in the order that keeps each
        number right when it is read (every one refers to the numbering after the
        previous ones)."""
        out = []
        for uid in sorted(uids, reverse=True):
            n = self.seq(uid)
            if not n:
                continue
            del self.uids[n - 1]
            self.own.pop(uid, None)
            out.append(b"* %d EXPUNGE\r\n" % n)
        return out

    def apply(
        self, changes: Changes, *, allow_expunge: bool, condstore: bool
    ) -> list[bytes] | None:
        """The untagged responses that bring the client up to ``changes``; None if they
        include an expunge that may not be announced now (FETCH, STORE, SEARCH), in
        which case nothing is applied and the next sync point does it all."""
        gone = [uid for uid in changes.expunged if self.seq(uid)]
        if gone and not allow_expunge:
            return None
        out = self.remove(gone)
        last = self.uids[-1] if self.uids else 0
        added: list[MessageState] = []
        for state in changes.changed:
            uid = state.uid
            if uid > last:
                added.append(state)
                continue
            if not self.seq(uid):
                continue
            if state.modseq <= self.own.get(uid, 0):
                continue  # this session's own change, already answered
            if self._learn_keywords(state.flags):
                out.extend(self.flags_responses())
            extra = b" MODSEQ (%d)" % state.modseq if condstore else b""
            out.append(
                b"* %d FETCH (UID %d FLAGS %s%s)\r\n"
                % (self.seq(uid), uid, flag_list(state.flags.names()), extra)
            )
        if added:
            for state in sorted(added, key=lambda s: s.uid):
                self.uids.append(state.uid)
            out.extend(self.learn(added))
            out.append(b"* %d EXISTS\r\n" % len(self.uids))
        self.modseq = max(self.modseq, changes.highest_modseq)
        self.uidnext = max(self.uidnext, changes.uidnext)
        return out

    def _learn_keywords(self, flags: Flags) -> bool:
        """Add keywords not seen in this folder yet; whether there were any."""
        known = {k.lower() for k in self.keywords}
        new = [k for k in flags.keywords if k.lower() not in known]
        self.keywords.extend(new)
        return bool(new)

    def flags_responses(self) -> list[bytes]:
        """FLAGS and PERMANENTFLAGS, as SELECT gives them and as they are sent again when
        a new keyword appears (RFC 9051 §7.3.5)."""
        flags = [*SYSTEM_FLAG_NAMES, *self.keywords]
        permanent = b"()" if self.readonly else flag_list([*flags, "\\*"])
        return [
            b"* FLAGS %s\r\n" % flag_list(flags),
            b"* OK [PERMANENTFLAGS %s] Flags permitted.\r\n" % permanent,
        ]

    def learn(self, states: list[MessageState]) -> list[bytes]:
        """The FLAGS responses owed if these flags bring new keywords, else nothing."""
        new = False
        for state in states:
            new = self._learn_keywords(state.flags) or new
        return self.flags_responses() if new else []
