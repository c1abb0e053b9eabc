"""Framing of the client's byte stream into IMAP commands, literals and raw lines; no I/O."""

from __future__ import annotations

import re

from govmail.imap.proto.model import BadRequest, Continue, Event, Line, Request
from govmail.imap.proto.parser import (
    COMMANDS,
    UID_COMMANDS,
    Literal,
    command_name,
    command_tag,
    parse_command,
)

# A literal announcement at the end of a line: ~{n} / {n} / {n+}. Only the tail of a line is
# searched (a 20-digit size plus the punctuation fits in 25 bytes).
_LITERAL_TAIL = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}")
_TAIL_WINDOW = 25

# After these the session changes how it reads (line mode for IDLE and AUTHENTICATE; TLS for
# STARTTLS, where anything already buffered must be refused), so framing pauses there.
_PAUSE_AFTER = frozenset({"IDLE", "AUTHENTICATE", "STARTTLS"})


class Receiver:
    """Turns bytes from the client into events: ``Request`` or ``BadRequest`` once a
    command is complete, ``Continue`` when the client waits for ``+`` before sending a
    literal, ``Line`` for a raw line while ``line_mode`` is set.

    Framing pauses after a ``Continue``, after IDLE, AUTHENTICATE and STARTTLS requests,
    and after ``max_pipelined`` events in one call. While paused, ``feed(data)`` only
    buffers ``data`` and returns ``[]``; the session handles the events it got (sets
    ``line_mode``, sends ``+`` or calls ``reject_literal()``, checks ``buffered`` after
    STARTTLS) and then calls ``feed(b"")`` to go on. So bytes that arrive before the
    session has acted on an event (DONE right behind IDLE) are framed the way it decides.

    Memory is bounded: a command's line text is at most ``max_line`` bytes and its literals
    at most ``max_literal`` bytes in all (``max_append_literal`` for APPEND, which covers
    every message of a MULTIAPPEND). Bytes fed while framing is paused stay buffered until
    the session goes on.
    """

    def __init__(
        self,
        *,
        max_line: int = 64 * 1024,
        max_literal: int = 64 * 1024,
        max_append_literal: int = 30 * 1024 * 1024,
        max_pipelined: int = 100,
    ) -> None:
        self.max_line = max_line
        self.max_literal = max_literal
        self.max_append_literal = max_append_literal
        self.max_pipelined = max_pipelined
        self.utf8_accept = False  # set after ENABLE UTF8=ACCEPT: mailbox names are UTF-8
        self.line_mode = False  # set by the session: the next lines come back as Line(data)
        # Set by the session after login: before it, APPEND is refused anyway, so its
        # literals get no more room than any other command's (no 25 MB buffers pre-auth).
        self.appends_allowed = False
        self._buf = bytearray()
        self._pos = 0  # where unread input starts in _buf
        self._scan = 0  # where the search for the next LF resumes (no rescanning)
        self._discarding = False  # dropping the rest of an overlong line
        self._paused = False  # until the session calls feed(b"")
        self._closed = False  # an unreadable literal: the stream is out of sync for good
        self._start_command()

    def _start_command(self) -> None:
        self._segments: list[bytes] = []
        self._literals: list[Literal] = []
        self._line_bytes = 0  # line text of this command so far (literals excluded)
        self._literal_bytes = 0  # announced literal octets of this command
        self._literal_need = -1  # size of the literal being read, -1 when reading lines
        self._literal_binary = False

    @property
    def buffered(self) -> int:
        """Bytes held: unread input plus the parts of an incomplete command. Non-zero right
        after STARTTLS means the client pipelined commands into the plaintext phase."""
        held = len(self._buf) - self._pos
        return held + sum(map(len, self._segments)) + sum(len(lit.data) for lit in self._literals)

    def feed(self, data: bytes) -> list[Event]:
        """Add ``data`` and return the events it completes (at most ``max_pipelined``);
        ``feed(b"")`` ends a pause."""
        if self._closed:
            return []
        self._buf += data
        if self._paused:
            if data:
                return []
            self._paused = False
        events: list[Event] = []
        while self._step(events):
            if len(events) >= self.max_pipelined:
                self._paused = True
                break
        if self._pos:
            # Deleting from the front of a bytearray is cheap in CPython (it moves a start
            # pointer), so an unread tail is not copied.
            del self._buf[: self._pos]
            self._scan -= self._pos
            self._pos = 0
        return events

    def reject_literal(self) -> None:
        """The session refused the command announced by the last ``Continue``: drop it;
        the next bytes start a new command."""
        self._start_command()

    # --- Framing steps: each returns True to keep going, False to pause or wait ---------

    def _step(self, events: list[Event]) -> bool:
        if self._closed:
            return False
        if self._literal_need >= 0:
            return self._read_literal()
        if self._discarding:
            return self._discard_line()
        newline = self._buf.find(b"\n", self._scan)
        allowance = self.max_line - self._line_bytes
        if newline < 0:
            self._scan = len(self._buf)
            # + 1: the line may yet end in CR LF, and the CR is not line text.
            if self._scan - self._pos > allowance + 1:
                events.append(BadRequest(self._tag(), "Line too long"))
                self._start_command()
                self._discarding = True
                return True
            return False
        end = newline - 1 if newline > self._pos and self._buf[newline - 1] == 0x0D else newline
        if end - self._pos > allowance:
            events.append(BadRequest(self._tag(), "Line too long"))
            self._start_command()
            self._pos = self._scan = newline + 1
            return True
        line = bytes(self._buf[self._pos : end])
        self._pos = self._scan = newline + 1
        if self.line_mode and not self._segments:
            events.append(Line(line))
            return True
        return self._command_line(line, events)

    def _read_literal(self) -> bool:
        need = self._literal_need
        if len(self._buf) - self._pos < need:
            return False
        with memoryview(self._buf) as view:  # one copy, and the view is released at once
            data = bytes(view[self._pos : self._pos + need])
        self._pos = self._scan = self._pos + need
        self._literals.append(Literal(data, self._literal_binary))
        self._literal_need = -1
        return True

    def _discard_line(self) -> bool:
        newline = self._buf.find(b"\n", self._scan)
        if newline < 0:
            self._pos = self._scan = len(self._buf)
            return False
        self._pos = self._scan = newline + 1
        self._discarding = False
        return True

    def _command_line(self, line: bytes, events: list[Event]) -> bool:
        """A line of a command: the whole command, or a part ending in a literal."""
        tail = _literal_tail(line)
        if tail is None:
            if not line and not self._segments:
                return True  # an empty line between commands is ignored, as Dovecot does
            event = parse_command([*self._segments, line], self._literals, utf8=self.utf8_accept)
            self._start_command()
            events.append(event)
            if isinstance(event, Request) and event.name in _PAUSE_AFTER:
                self._paused = True
            return not self._paused
        start, size, synchronising, binary = tail
        self._segments.append(line[:start])
        self._line_bytes += len(line)
        return self._literal_announced(size, synchronising, binary, events)

    def _literal_announced(
        self, size: int, synchronising: bool, binary: bool, events: list[Event]
    ) -> bool:
        """The command's line ended in ``{size}``: refuse it, invite it, or read it."""
        tag = self._tag()
        if self._literal_bytes + size > self._literal_limit():
            self._start_command()
            if synchronising:
                # The client waits for "+", so refusing keeps the stream in step.
                events.append(BadRequest(tag, "Literal too big", code="TOOBIG"))
                return True
            events.append(BadRequest(tag, "Literal too big", fatal=True))
            self._closed = True
            self._buf.clear()
            self._pos = self._scan = 0
            return False
        if synchronising and (refusal := self._refuse_early(tag)) is not None:
            # Answer before inviting the literal: the client has not sent it.
            self._start_command()
            events.append(refusal)
            return True
        self._literal_bytes += size
        self._literal_need = size
        self._literal_binary = binary
        if synchronising:
            events.append(Continue(tag, size))
            self._paused = True
            return False
        return True

    def _refuse_early(self, tag: str | None) -> BadRequest | None:
        """A refusal that needs no more of the command: no tag, or an unknown command."""
        if tag is None:
            return BadRequest(None, "Missing or invalid tag")
        name = command_name(self._segments[0])
        if name == "UID":
            words = self._segments[0].split(b" ", 3)
            known = len(words) > 2 and words[2].decode("latin-1").upper() in UID_COMMANDS
        else:
            known = name in COMMANDS
        return None if known else BadRequest(tag, "Unknown command")

    def _literal_limit(self) -> int:
        if self.appends_allowed and command_name(self._segments[0]) == "APPEND":
            return self.max_append_literal
        return self.max_literal

    def _tag(self) -> str | None:
        """The tag of the command being read (for error answers), if it has one yet."""
        if self._segments:
            return command_tag(self._segments[0])
        head = bytes(self._buf[self._pos : self._pos + 64]).split(b" ", 1)
        return command_tag(head[0]) if len(head) > 1 else None


def _literal_tail(line: bytes) -> tuple[int, int, bool, bool] | None:
    """(where the announcement starts, size, synchronising, literal8) when ``line`` ends
    with a literal announcement."""
    if not line.endswith(b"}"):
        return None
    brace = line.rfind(b"{", max(0, len(line) - _TAIL_WINDOW))
    if brace < 0:
        return None
    start = brace - 1 if brace > 0 and line[brace - 1] == 0x7E else brace
    match = _LITERAL_TAIL.fullmatch(line, start)
    if match is None:
        return None
    size = int(match.group(2))
    return start, size, not match.group(3), bool(match.group(1))
