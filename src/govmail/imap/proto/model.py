"""The values the IMAP parser produces: one request type per command.

Strings are ``str`` (mailbox names already decoded from modified UTF-7 unless the client
enabled UTF8=ACCEPT, in which case they arrive as UTF-8); message literals are ``bytes``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

STAR = 0  # ``*`` in a sequence set: the largest number in use (never a valid number itself)


@dataclass(frozen=True)
class SequenceSet:
    """A sequence set such as ``1:4,7,9:*``: each range is (low, high) as written, with
    STAR for ``*``; ``saved`` is the SEARCHRES ``$`` (ranges then empty)."""

    ranges: tuple[tuple[int, int], ...]
    saved: bool = False

    def resolve(self, largest: int) -> tuple[tuple[int, int], ...]:
        """The ranges with ``*`` replaced by ``largest`` and each ordered low..high."""
        out = []
        for low, high in self.ranges:
            low = largest if low == STAR else low
            high = largest if high == STAR else high
            out.append((low, high) if low <= high else (high, low))
        return tuple(out)

    def contains(self, number: int, largest: int) -> bool:
        return any(low <= number <= high for low, high in self.resolve(largest))

    def iter_within(self, numbers: list[int]) -> Iterator[int]:
        """The members of sorted ``numbers`` that the set names, in ascending order, once
        each (``*`` is the last of ``numbers``)."""
        if not numbers:
            return
        ranges = self.resolve(numbers[-1])
        for n in numbers:
            if any(low <= n <= high for low, high in ranges):
                yield n


# --- FETCH -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    """A BODY[...] / BINARY[...] section: ``part`` numbers (empty: the whole message) and
    ``text``: None (the whole part), "HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT",
    "TEXT" or "MIME"; ``fields`` upper-cased for the HEADER.FIELDS forms."""

    part: tuple[int, ...] = ()
    text: str | None = None
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchItem:
    """One FETCH data item. ``name`` is one of FLAGS, UID, INTERNALDATE, RFC822.SIZE,
    ENVELOPE, BODY (no section: the non-extensible structure), BODYSTRUCTURE, MODSEQ,
    RFC822, RFC822.HEADER, RFC822.TEXT, BODY[] (``section`` set), BINARY (``section``
    set), BINARY.SIZE (``section`` set), SAVEDATE, EMAILID/THREADID are not supported.
    ``partial`` is (offset, count) from ``<offset.count>``; ``peek`` for BODY.PEEK and
    BINARY.PEEK."""

    name: str
    section: Section | None = None
    peek: bool = False
    partial: tuple[int, int] | None = None


@dataclass(frozen=True)
class Fetch:
    sequence: SequenceSet
    items: tuple[FetchItem, ...]
    changed_since: int | None = None  # CONDSTORE (CHANGEDSINCE n)
    vanished: bool = False  # QRESYNC (VANISHED), parsed but the server may refuse it
    macro: str | None = None  # ALL, FAST or FULL when given as a macro (already expanded)


# --- SEARCH ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchKey:
    """One search criterion. ``name`` and ``value`` by kind:

    - ALL: None. FLAG: a system flag such as "\\Seen" (SEEN/ANSWERED/... are turned into
      FLAG; UNSEEN etc. into NOT FLAG). KEYWORD: the keyword. RECENT: None (NEW is
      AND(RECENT, NOT FLAG \\Seen), OLD is NOT RECENT).
    - BCC, BODY, CC, FROM, SUBJECT, TEXT, TO: the string. HEADER: (field name, string).
    - BEFORE, ON, SINCE, SENTBEFORE, SENTON, SENTSINCE: a ``date``.
    - LARGER, SMALLER: an int. MODSEQ: an int (the entry name/type are dropped).
    - SEQUENCE: a SequenceSet of message numbers. UID: a SequenceSet of UIDs.
    - NOT: a SearchKey. AND: a tuple of SearchKeys (a parenthesised list or the top
      level). OR: a pair of SearchKeys.
    - OLDER, YOUNGER (RFC 5032, WITHIN): seconds as an int.
    """

    name: str
    value: (
        str | int | date | tuple[str, str] | SequenceSet | SearchKey | tuple[SearchKey, ...] | None
    ) = None


@dataclass(frozen=True)
class Search:
    key: SearchKey  # always an AND at the top
    charset: str | None = None  # as given, upper-cased (US-ASCII, UTF-8, ...)
    # ESEARCH (RFC 4731) RETURN options, upper-cased: MIN MAX ALL COUNT SAVE; None when the
    # client did not say RETURN (plain "* SEARCH" answer); () means RETURN () = ALL.
    result_options: tuple[str, ...] | None = None


# --- Other commands ----------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    sequence: SequenceSet
    mode: str  # "+", "-" or "" (replace)
    silent: bool
    # as given, system flags with their backslash in canonical case (\\seen -> \\Seen)
    flags: tuple[str, ...]
    unchanged_since: int | None = None  # CONDSTORE


@dataclass(frozen=True)
class CopyMove:
    sequence: SequenceSet
    mailbox: str


@dataclass(frozen=True)
class AppendMessage:
    flags: tuple[str, ...]
    internal_date: datetime | None  # timezone-aware
    message: bytes
    binary: bool = False  # the literal was literal8 (~{n})


@dataclass(frozen=True)
class Append:
    mailbox: str
    messages: tuple[AppendMessage, ...]  # MULTIAPPEND gives several


@dataclass(frozen=True)
class MailboxArg:
    """SELECT, EXAMINE, CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE, GETQUOTAROOT, MYRIGHTS,
    GETACL: one mailbox name; ``options`` upper-cased: CONDSTORE for SELECT/EXAMINE,
    ("USE", "\\Sent"...) pairs flattened for CREATE are in ``special_use``."""

    mailbox: str
    condstore: bool = False
    special_use: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rename:
    old: str
    new: str


@dataclass(frozen=True)
class ListArgs:
    """LIST / LSUB. ``select`` (LIST-EXTENDED selection options) and ``returns`` are
    upper-cased; ``status_items`` comes from RETURN (STATUS (...)). ``patterns`` has one
    entry unless the client gave a parenthesised list."""

    reference: str
    patterns: tuple[str, ...]
    select: tuple[str, ...] = ()
    returns: tuple[str, ...] = ()
    status_items: tuple[str, ...] = ()
    extended: bool = False  # the client used any LIST-EXTENDED syntax
    lsub: bool = False


@dataclass(frozen=True)
class StatusArgs:
    mailbox: str
    # upper-cased: MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE HIGHESTMODSEQ DELETED
    items: tuple[str, ...]


@dataclass(frozen=True)
class Login:
    username: str
    password: str


@dataclass(frozen=True)
class Authenticate:
    mechanism: str  # upper-cased
    initial_response: bytes | None = None  # SASL-IR, decoded from base64 ("=" gives b"")


@dataclass(frozen=True)
class Words:
    """Commands whose arguments are a list of atoms: ENABLE (capabilities, upper-cased),
    GETQUOTA (the root, one word)."""

    words: tuple[str, ...]


@dataclass(frozen=True)
class IdParams:
    """ID: the client's field/value pairs, or None for ``ID NIL``."""

    params: tuple[tuple[str, str | None], ...] | None


Arguments = (
    Fetch | Search | Store | CopyMove | Append | MailboxArg | Rename | ListArgs | StatusArgs
    | Login | Authenticate | Words | IdParams | SequenceSet | None
)  # fmt: skip


@dataclass(frozen=True)
class Request:
    """One complete command. ``name`` is upper-cased without the UID prefix (``uid`` says
    whether it was there). ``args`` is None for commands without arguments, the
    SequenceSet for UID EXPUNGE, else the command's type above."""

    tag: str
    name: str
    args: Arguments = None
    uid: bool = False


@dataclass(frozen=True)
class BadRequest:
    """A line the parser refused: answer ``<tag> BAD <text>`` (``* BAD`` without a tag).
    ``fatal``: the stream cannot be resynchronised (a literal that will not be read), so
    the session must say BYE and close."""

    tag: str | None
    text: str
    fatal: bool = False
    code: str | None = None  # a response code to send, e.g. TOOBIG (then NO, not BAD)


@dataclass(frozen=True)
class Continue:
    """The client announced a synchronising literal of ``size`` octets and waits for
    ``+``: the session sends a continuation, or refuses the command (``reject_literal``)."""

    tag: str | None
    size: int


@dataclass(frozen=True)
class Line:
    """A raw line in line mode (IDLE's DONE, an AUTHENTICATE response), without CRLF."""

    data: bytes


Event = Request | BadRequest | Continue | Line

__all__ = [
    "STAR",
    "Append",
    "AppendMessage",
    "Arguments",
    "Authenticate",
    "BadRequest",
    "Continue",
    "CopyMove",
    "Event",
    "Fetch",
    "FetchItem",
    "IdParams",
    "Line",
    "ListArgs",
    "Login",
    "MailboxArg",
    "Rename",
    "Request",
    "Search",
    "SearchKey",
    "Section",
    "SequenceSet",
    "StatusArgs",
    "Store",
    "Words",
]
