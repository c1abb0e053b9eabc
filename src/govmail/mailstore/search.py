"""SEARCH in one folder: IMAP criteria over the cached message rows, the text index and blobs."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_tz
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Connection, select

# The RFC 2047 decoder the search text was built with: FROM "Nguyễn" must decode display
# names exactly as delivery did. (Private to core.mime for now; worth exporting.)
from govmail.core.mime import decode_words, header_end
from govmail.core.vietnamese import fold
from govmail.mailstore.flags import SYSTEM_FLAGS
from govmail.store.blobs import BlobStore
from govmail.store.database import Database
from govmail.store.schema import folder_messages, messages, messages_search

__all__ = ["Criterion", "MessageNumbers", "SearchResult", "search_folder"]


class Criterion(Protocol):
    """The shape of ``imap.proto.model.SearchKey`` (the mailstore may not import imap/):
    ``name`` is the key (ALL, FLAG, KEYWORD, RECENT, BCC, BODY, CC, FROM, SUBJECT, TEXT,
    TO, HEADER, BEFORE, ON, SINCE, SENTBEFORE, SENTON, SENTSINCE, LARGER, SMALLER, MODSEQ,
    SEQUENCE, UID, NOT, AND, OR, OLDER, YOUNGER) and ``value`` its argument as documented
    there: a str, an int, a ``date``, a (field, string) pair, a MessageNumbers, a
    Criterion (NOT), a tuple of them (AND) or a pair (OR)."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> Any: ...


class MessageNumbers(Protocol):
    """The shape of ``imap.proto.model.SequenceSet``: whether ``number`` is in the set,
    ``*`` standing for ``largest``. (SEARCHRES ``$`` is the caller's to resolve.)"""

    def contains(self, number: int, largest: int) -> bool: ...


@dataclass(frozen=True)
class SearchResult:
    """The matching UIDs in ascending order, and for CONDSTORE the largest modseq among
    them: set only when the criteria named MODSEQ and something matched."""

    uids: list[int]
    highest_modseq: int | None


async def search_folder(
    db: Database,
    blobs: BlobStore,
    folder_id: int,
    uids: Sequence[int],
    key: Criterion,
    *,
    now: datetime | None = None,
) -> SearchResult:
    """The messages of ``uids`` (the session's view of the folder, ascending: the message
    sequence number of ``uids[i]`` is ``i + 1``) that match ``key`` (RFC 9051 §6.4.4).

    Flags, dates, sizes, modseq, subjects and addresses are judged in Python on one read
    of the folder's rows; TEXT and BODY ask the text index, and only about the messages
    the other criteria leave undecided; HEADER reads blobs, only for the messages still
    undecided after that. UIDs no longer in the folder are left out.
    """
    if not uids:
        return SearchResult([], None)
    search = _Search(folder_id, uids, key, now or datetime.now(UTC))
    undecided = await db.run(search.first_pass, write=False)
    if undecided:
        await asyncio.to_thread(search.second_pass, blobs, undecided)
    return search.result()


# --- Cost tiers ---------------------------------------------------------------------------

_ROW, _INDEX, _BLOB = 0, 1, 2  # judged from the row, by a text-index query, from the blob
_TEXT_KEYS = frozenset({"TEXT", "BODY"})
_COMPOSITE = frozenset({"NOT", "AND", "OR"})


def _children(key: Criterion) -> tuple[Criterion, ...]:
    if key.name == "NOT":
        return (key.value,)
    if key.name in ("AND", "OR"):
        return tuple(key.value)
    return ()


def _tier(key: Criterion) -> int:
    if key.name in _COMPOSITE:
        return max((_tier(child) for child in _children(key)), default=_ROW)
    if key.name in _TEXT_KEYS:
        return _INDEX
    return _BLOB if key.name == "HEADER" else _ROW


def _names(key: Criterion) -> set[str]:
    names = {key.name}
    for child in _children(key):
        names |= _names(child)
    return names


_DAY_COLUMNS = (folder_messages.c.internal_date,)
_SENT_COLUMNS = (
    messages.c.envelope[0].as_string().label("date_header"),
    folder_messages.c.internal_date,  # stands in for a missing Date header
)
# The row columns each key reads (uid and message_id are always read): one query reads
# only what the criteria need (decoding every envelope's JSON would cost more than a
# SUBJECT search itself).
_COLUMNS: dict[str, tuple[ColumnElement[Any], ...]] = {
    "FLAG": (folder_messages.c.flags,),
    "KEYWORD": (folder_messages.c.keywords,),
    "MODSEQ": (folder_messages.c.modseq,),
    "LARGER": (folder_messages.c.size,),
    "SMALLER": (folder_messages.c.size,),
    "SUBJECT": (messages.c.subject,),
    "HEADER": (messages.c.blob,),
    # BODY tells the subject and addresses at the start of search_text from the body.
    "BODY": (messages.c.subject, messages.c.envelope),
    **dict.fromkeys(("BEFORE", "ON", "SINCE", "OLDER", "YOUNGER"), _DAY_COLUMNS),
    **dict.fromkeys(("SENTBEFORE", "SENTON", "SENTSINCE"), _SENT_COLUMNS),
    **dict.fromkeys(("FROM", "TO", "CC", "BCC"), (messages.c.envelope,)),
}
# Keys whose columns are in messages (the others need only folder_messages).
_MESSAGE_KEYS = frozenset(
    {"SUBJECT", "HEADER", "BODY", "SENTBEFORE", "SENTON", "SENTSINCE", "FROM", "TO", "CC", "BCC"}
)
_ENVELOPE_FIELD = {"FROM": 2, "TO": 5, "CC": 6, "BCC": 7}


# --- Text --------------------------------------------------------------------------------

_TRIGRAM = 3  # the shortest string the trigram indexes (FTS5, pg_trgm) can look up
# Up to this many undecided messages are checked row by row; more go through the index.
_DIRECT_LIMIT = 64
_IN_LIMIT = 500  # ids per IN list (drivers cap the parameters of one statement)


def _fold(text: str) -> str:
    """``fold(text)``; ASCII (most subjects and addresses) takes the cheap exact path."""
    if text.isascii():
        return " ".join(text.lower().split())
    return fold(text)


# Folded subjects by message id (messages never change): a client searching its folder
# again, or 500 agencies holding one giấy mời, fold each subject once. Bounded; cleared
# when full rather than kept in LRU order, which would cost more than it saves.
_FOLDED_SUBJECTS: dict[int, str] = {}
_FOLDED_LIMIT = 200_000


def _folded_subject(message_id: int, subject: str) -> str:
    folded = _FOLDED_SUBJECTS.get(message_id)
    if folded is None:
        if len(_FOLDED_SUBJECTS) >= _FOLDED_LIMIT:
            _FOLDED_SUBJECTS.clear()
        folded = _FOLDED_SUBJECTS[message_id] = _fold(subject)
    return folded


def _like_pattern(needle: str) -> str:
    return "%" + needle.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _glob_pattern(needle: str) -> str:
    # GLOB has no ESCAPE clause; a one-character class quotes a wildcard.
    return "*" + re.sub(r"([*?\[])", r"[\1]", needle) + "*"


def _address_text(addresses: list[list[str | None]] | None) -> list[str]:
    """The words core.mime puts in search_text for an address list (names decoded)."""
    words: list[str] = []
    for name, _adl, mailbox, host in addresses or ():
        if name:
            words.append(decode_words(name))
        if host is not None:
            words.append(f"{mailbox}@{host}")
    return words


def _display_addresses(addresses: list[list[str | None]] | None) -> str:
    """An address field as a reader sees it: ``Name <mailbox@host>, ...`` (groups left out)."""
    out = []
    for name, _adl, mailbox, host in addresses or ():
        if host is None:
            continue
        out.append(f"{decode_words(name)} <{mailbox}@{host}>" if name else f"{mailbox}@{host}")
    return ", ".join(out)


# --- Headers ------------------------------------------------------------------------------

_FIELD_NAME = re.compile(r"[!-9;-~]+")  # printable ASCII but ":" (RFC 5322 ftext)


def _field_values(header: bytes, name: str) -> list[str]:
    """The values of every ``name`` field of a header block, unfolded and decoded."""
    if not _FIELD_NAME.fullmatch(name):
        return []
    pattern = re.compile(
        rb"^" + re.escape(name.encode()) + rb"[ \t]*:(.*(?:\r?\n[ \t].*)*)", re.M | re.I
    )
    values = []
    for match in pattern.finditer(header):
        raw = match.group(1).decode("utf-8", "replace").replace("\r", "").replace("\n", "")
        values.append(decode_words(raw.strip(" \t")))
    return values


# --- Dates --------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    # SQLite gives back naive values; the store writes UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _header_day(value: str | None) -> date | None:
    """The day a Date header names, in its own time zone (None if it does not parse)."""
    parsed = parsedate_tz(value) if value else None
    if parsed is None:
        return None
    try:
        return date(parsed[0], parsed[1], parsed[2])
    except ValueError:
        return None


# --- Evaluation --------------------------------------------------------------------------


class _Search:
    """One SEARCH: the folder's rows and what has been learnt about them.

    Criteria are judged over sets of row positions in three-valued logic: ``judge``
    returns the rows that surely match and those that cannot be decided yet (a HEADER
    before the blobs are read), so costly keys are asked only about the rows whose
    outcome depends on them, inside NOT and OR as well. AND and OR judge their cheaper
    operands first and pass on only the rows still in question.
    """

    def __init__(self, folder_id: int, uids: Sequence[int], key: Criterion, now: datetime) -> None:
        self.folder_id = folder_id
        self.key = key
        self.now = now
        self.position = {uid: number for number, uid in enumerate(uids, 1)}
        self.low, self.high = min(uids), max(uids)
        self.largest_uid = uids[-1]
        self.names = _names(key)
        self.rows: list[Any] = []
        self.matched: set[int] = set()
        self.conn: Connection | None = None
        self.blobs_read = False
        self.headers: dict[int, bytes] = {}
        self._text_hits: dict[int, dict[int, bool]] = {}  # id(key) -> row -> match

    # -- passes

    def first_pass(self, conn: Connection) -> list[int]:
        """Read the rows and judge everything but HEADER; return the rows HEADER decides."""
        columns: dict[str, ColumnElement[Any]] = {
            "uid": folder_messages.c.uid,
            "message_id": folder_messages.c.message_id,
        }
        for name in self.names:
            columns.update((c.key, c) for c in _COLUMNS.get(name, ()) if c.key is not None)
        query = select(*columns.values()).where(
            folder_messages.c.folder_id == self.folder_id,
            folder_messages.c.uid.between(self.low, self.high),
        )
        if self.names & _MESSAGE_KEYS:
            query = query.join(messages, messages.c.id == folder_messages.c.message_id)
        rows = conn.execute(query.order_by(folder_messages.c.uid)).all()  # fetchall: faster
        self.rows = [r for r in rows if r.uid in self.position]
        self.conn = conn
        try:
            sure, maybe = self.judge(self.key, set(range(len(self.rows))))
        finally:
            self.conn = None
        self.matched = sure
        return sorted(maybe)

    def second_pass(self, blobs: BlobStore, domain: list[int]) -> None:
        """Read the top-level header of these rows' messages and judge them (worker
        thread). Needs no database: a row reaches no key here that the first pass did
        not judge it by, as knowing a HEADER only narrows what AND and OR pass on."""
        for i in domain:
            try:
                raw = blobs.get(self.rows[i].blob)
            except FileNotFoundError:
                raw = b""  # a lost blob matches no HEADER criterion rather than failing
            self.headers[i] = raw[: header_end(raw)]
        self.blobs_read = True
        sure, _ = self.judge(self.key, set(domain))
        self.matched |= sure

    def result(self) -> SearchResult:
        found = sorted(self.matched)
        highest = None
        if "MODSEQ" in self.names and found:
            highest = max(self.rows[i].modseq for i in found)
        return SearchResult([self.rows[i].uid for i in found], highest)

    # -- three-valued judgement

    def judge(self, key: Criterion, domain: set[int]) -> tuple[set[int], set[int]]:
        """(rows of ``domain`` that match, rows not decidable yet)."""
        name = key.name
        if not domain:
            return set(), set()
        if name == "AND":
            sure = set(domain)
            maybe: set[int] = set()
            for child in sorted(key.value, key=_tier):
                child_sure, child_maybe = self.judge(child, sure | maybe)
                sure &= child_sure
                maybe = (maybe | child_maybe) & (child_sure | child_maybe)
                if not sure and not maybe:
                    break
            return sure, maybe
        if name == "OR":
            first, second = sorted(key.value, key=_tier)
            sure, maybe = self.judge(first, domain)
            more_sure, more_maybe = self.judge(second, domain - sure)
            return sure | more_sure, (maybe | more_maybe) - more_sure
        if name == "NOT":
            sure, maybe = self.judge(key.value, domain)
            return domain - sure - maybe, maybe
        if name == "HEADER" and not self.blobs_read:
            return set(), set(domain)
        return self._leaf(key, domain), set()

    def _leaf(self, key: Criterion, domain: set[int]) -> set[int]:
        if key.name == "ALL":
            return set(domain)
        if key.name == "RECENT":
            return set()  # \Recent is not kept: no message is recent
        if key.name in _TEXT_KEYS:
            return self._text(key, domain)
        test = self._predicate(key.name, key.value)
        return {i for i in domain if test(i)}

    def _predicate(self, name: str, value: Any) -> Callable[[int], bool]:
        """Whether the row at a position matches the key ``name`` with ``value``."""
        rows = self.rows
        match name:
            case "FLAG":
                bit = SYSTEM_FLAGS.get(str(value).lower(), 0)  # \Recent and others: none
                return lambda i: bool(rows[i].flags & bit)
            case "KEYWORD":
                wanted = str(value).lower()
                return lambda i: wanted in self._keywords(i)
            case "SEQUENCE":
                largest = len(self.position)
                return lambda i: bool(value.contains(self.position[rows[i].uid], largest))
            case "UID":
                return lambda i: bool(value.contains(rows[i].uid, self.largest_uid))
            case "LARGER":
                return lambda i: bool(rows[i].size > value)
            case "SMALLER":
                return lambda i: bool(rows[i].size < value)
            case "MODSEQ":
                return lambda i: bool(rows[i].modseq >= value)
            case "BEFORE" | "ON" | "SINCE":
                return _compare_day(name, value, self._internal_day)
            case "SENTBEFORE" | "SENTON" | "SENTSINCE":
                return _compare_day(name[4:], value, self._sent_day)
            case "OLDER":  # RFC 5032 as Dovecot reads it: OLDER n and YOUNGER n partition
                limit = self.now - timedelta(seconds=value)
                return lambda i: _utc(rows[i].internal_date) < limit
            case "YOUNGER":
                limit = self.now - timedelta(seconds=value)
                return lambda i: _utc(rows[i].internal_date) >= limit
            case "SUBJECT":
                needle = _fold(value)
                return lambda i: needle in _folded_subject(rows[i].message_id, rows[i].subject)
            case "FROM" | "TO" | "CC" | "BCC":
                needle, field = _fold(value), _ENVELOPE_FIELD[name]
                return lambda i: needle in _fold(_display_addresses(rows[i].envelope[field]))
            case "HEADER":
                field_name, wanted = value
                needle = _fold(wanted)
                # Folded like the other text keys: HEADER Subject finds what SUBJECT finds.
                return lambda i: any(
                    needle in _fold(v) for v in _field_values(self.headers[i], field_name)
                )
        raise ValueError(f"unknown search key {name!r}")

    # -- what rows give

    def _keywords(self, i: int) -> set[str]:
        words = self.rows[i].keywords
        return set(words.lower().split()) if words else set()

    def _internal_day(self, i: int) -> date:
        # RFC 9051 disregards time and zone; the day is taken in UTC, the server's zone.
        return _utc(self.rows[i].internal_date).date()

    def _sent_day(self, i: int) -> date:
        # The day as the Date header writes it, in the sender's zone (Dovecot does the
        # same); without a usable Date header, the internal date's day (as Dovecot).
        row = self.rows[i]
        return _header_day(row.date_header) or self._internal_day(i)

    # -- the text index

    def _text(self, key: Criterion, domain: set[int]) -> set[int]:
        needle = _fold(key.value)
        if not needle:
            return set(domain)
        hits = self._text_hits.setdefault(id(key), {})
        missing = [i for i in domain if i not in hits]
        if missing:
            if self.conn is None:
                raise RuntimeError("the text index is read in the first pass only")
            found = self._query_text(self.conn, needle, [self.rows[i].message_id for i in missing])
            candidates = [i for i in missing if self.rows[i].message_id in found]
            if key.name == "BODY":
                candidates = self._in_body(self.conn, needle, candidates)
            hits.update((i, False) for i in missing)
            hits.update((i, True) for i in candidates)
        return {i for i in domain if hits[i]}

    def _query_text(self, conn: Connection, needle: str, ids: list[int]) -> set[int]:
        """The message ids among ``ids`` whose search_text contains ``needle``."""
        if len(ids) <= _DIRECT_LIMIT:
            # A few rows: reading them costs less than walking the index's posting lists.
            query = select(messages.c.id).where(
                messages.c.id.in_(ids), messages.c.search_text.like(_like_pattern(needle), "/")
            )
        elif conn.dialect.name == "sqlite" and len(needle) >= _TRIGRAM:
            # "+ 0" keeps the folder's ids a filter on the index's hits: as a rowid
            # constraint FTS5 runs one trigram query per id (200 ms, not 1 ms, for 1,000).
            query = select(messages_search.c.rowid).where(
                messages_search.c.search_text.op("GLOB")(_glob_pattern(needle)),
                (messages_search.c.rowid + 0).in_(self._folder_message_ids()),
            )
        else:
            # PostgreSQL: pg_trgm's GIN index serves LIKE '%…%' when the planner thinks it
            # pays; a needle under three characters has no trigram, so the folder's rows
            # are read (as on SQLite).
            query = select(messages.c.id).where(
                messages.c.id.in_(self._folder_message_ids()),
                messages.c.search_text.like(_like_pattern(needle), "/"),
            )
        return set(conn.scalars(query))

    def _folder_message_ids(self) -> Any:
        return select(folder_messages.c.message_id).where(
            folder_messages.c.folder_id == self.folder_id,
            folder_messages.c.uid.between(self.low, self.high),
        )

    def _in_body(self, conn: Connection, needle: str, candidates: list[int]) -> list[int]:
        """The candidates (search_text contains ``needle``) whose match lies in the body.

        search_text is the folded subject and From/To/Cc words, then the body's text and
        attachment names; a hit that the start cannot explain is in the body. Only where
        the start could hold it are the texts read.
        """
        sure: list[int] = []
        heads: dict[int, str] = {}
        for i in candidates:
            row = self.rows[i]
            envelope = row.envelope
            pieces = [row.subject]
            for field in (2, 5, 6):
                pieces.extend(_address_text(envelope[field]))
            head = fold(" ".join(pieces))
            start = head + " " if head else ""
            # A match starting in the head, whole or running on into the body.
            if needle in start or any(start.endswith(needle[:k]) for k in range(1, len(needle))):
                heads[i] = start
            else:
                sure.append(i)
        ids = {self.rows[i].message_id: i for i in heads}
        wanted = list(ids)
        for chunk in range(0, len(wanted), _IN_LIMIT):
            texts = conn.execute(
                select(messages.c.id, messages.c.search_text).where(
                    messages.c.id.in_(wanted[chunk : chunk + _IN_LIMIT])
                )
            )
            for message_id, text in texts:
                start = heads[ids[message_id]]
                # A search_text cut short inside the head (a huge header): count it as body.
                body = text[len(start) :] if text.startswith(start) else text
                if needle in body:
                    sure.append(ids[message_id])
        return sure


def _compare_day(how: str, day: date, day_of: Callable[[int], date]) -> Callable[[int], bool]:
    if how == "BEFORE":
        return lambda i: day_of(i) < day
    if how == "ON":
        return lambda i: day_of(i) == day
    return lambda i: day_of(i) >= day
