"""IMAP command grammar (RFC 3501, RFC 9051 and the extensions we serve): one complete
command in, one ``Request`` or ``BadRequest`` out."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import NamedTuple, TypeVar

from govmail.imap.proto.model import (
    STAR,
    Append,
    AppendMessage,
    Arguments,
    Authenticate,
    BadRequest,
    CopyMove,
    Fetch,
    FetchItem,
    IdParams,
    ListArgs,
    Login,
    MailboxArg,
    Rename,
    Request,
    Search,
    SearchKey,
    Section,
    SequenceSet,
    StatusArgs,
    Store,
    Words,
)
from govmail.imap.proto.mutf7 import decode_mailbox


class Literal(NamedTuple):
    """The contents of one literal; ``binary`` for literal8 (``~{n}``)."""

    data: bytes
    binary: bool = False


_T = TypeVar("_T")


class _Bad(Exception):
    """Raised inside the parser; ``parse_command`` turns it into a BadRequest."""

    def __init__(self, text: str, code: str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


# --- Tokens --------------------------------------------------------------------------------

_MAX32 = 0xFFFFFFFF
_MAX63 = 0x7FFFFFFFFFFFFFFF
_SP, _DQUOTE, _LPAREN, _RPAREN, _LBRACKET = 0x20, 0x22, 0x28, 0x29, 0x5B

# Atoms exclude the RFC 3501 atom-specials; 8-bit bytes are let through (as UTF-8) the way
# Dovecot does, so a lax client gets a readable answer rather than a syntax error.
_ATOM = re.compile(rb'[^(){ %*"\\\]\x00-\x1f\x7f]+')
_ASTRING_ATOM = re.compile(rb'[^(){ %*"\\\x00-\x1f\x7f]+')
_LIST_ATOM = re.compile(rb'[^(){ "\\\x00-\x1f\x7f]+')
_TAG = re.compile(rb'[^(){ %*"\\+\x00-\x1f\x7f-\xff]+')
_FLAG = re.compile(rb'\\?[^(){ %*"\\\]\x00-\x1f\x7f-\xff]+')
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_QUOTED_ESCAPE = re.compile(rb'\\(["\\])')
_NUMBER = re.compile(rb"[0-9]+")
_SEQ_SET = re.compile(rb"(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?(?:,(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?)*")
_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")
_STORE_ATT = re.compile(rb"([+-]?)FLAGS(\.SILENT)?", re.IGNORECASE)
_DATE = re.compile(rb'("?)([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})\1')
_DATE_TIME = re.compile(
    rb'"([ 0-9][0-9])-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
# Month names are matched here rather than with strptime("%b"), which follows the locale.
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), 1
    )
}
_SYSTEM_FLAGS = {
    flag.upper(): flag
    for flag in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
}


class _Cursor:
    """A read position over a command: line segments with a literal between each two.
    ``utf8``: the client enabled UTF8=ACCEPT, so mailbox names are UTF-8."""

    __slots__ = ("_k", "_literals", "_segments", "i", "seg", "utf8")

    def __init__(
        self, segments: Sequence[bytes], literals: Sequence[Literal], *, utf8: bool
    ) -> None:
        self.utf8 = utf8
        self._segments = segments
        self._literals = literals
        self._k = 0
        self.seg = segments[0]
        self.i = 0

    def peek(self) -> int:
        """The next byte of the current segment, or -1 at its end."""
        return self.seg[self.i] if self.i < len(self.seg) else -1

    def at_literal(self) -> bool:
        return self.i == len(self.seg) and self._k < len(self._literals)

    def at_end(self) -> bool:
        return self.i == len(self.seg) and self._k == len(self._literals)

    def literal(self) -> Literal:
        if not self.at_literal():
            raise _Bad("Expected a literal")
        literal = self._literals[self._k]
        self._k += 1
        self.seg = self._segments[self._k]
        self.i = 0
        return literal

    def mark(self) -> tuple[int, int]:
        return self._k, self.i

    def reset(self, mark: tuple[int, int]) -> None:
        self._k, self.i = mark
        self.seg = self._segments[self._k]

    def char(self, byte: int, what: str) -> None:
        if self.peek() != byte:
            raise _Bad(f"Expected {what}")
        self.i += 1

    def sp(self) -> None:
        self.char(_SP, "a space")

    def take(self, pattern: re.Pattern[bytes], what: str) -> bytes:
        match = pattern.match(self.seg, self.i)
        if match is None:
            raise _Bad(f"Expected {what}")
        self.i = match.end()
        return match.group()

    def maybe(self, pattern: re.Pattern[bytes]) -> bytes | None:
        match = pattern.match(self.seg, self.i)
        if match is None:
            return None
        self.i = match.end()
        return match.group()


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Bad("Invalid UTF-8 in a string") from None


def _word(cur: _Cursor) -> str:
    """An atom used as a keyword, upper-cased."""
    return cur.take(_ATOM, "a keyword").decode("latin-1").upper()


def _keyword(cur: _Cursor, expected: str) -> None:
    if _word(cur) != expected:
        raise _Bad(f"Expected {expected}")


def _string(cur: _Cursor) -> bytes:
    """A quoted string or a (non-binary) literal."""
    if cur.peek() == _DQUOTE:
        raw = cur.take(_QUOTED, "a valid quoted string")[1:-1]
        return _QUOTED_ESCAPE.sub(rb"\1", raw) if b"\\" in raw else raw
    if cur.at_literal():
        literal = cur.literal()
        if literal.binary:
            raise _Bad("literal8 is only allowed in APPEND")
        return literal.data
    raise _Bad("Expected a string")


def _astring(cur: _Cursor) -> bytes:
    if cur.peek() == _DQUOTE or cur.at_literal():
        return _string(cur)
    return cur.take(_ASTRING_ATOM, "a string")


def _nstring(cur: _Cursor) -> bytes | None:
    if cur.peek() == _DQUOTE or cur.at_literal():
        return _string(cur)
    _keyword(cur, "NIL")
    return None


def _number(cur: _Cursor, limit: int = _MAX32, *, nonzero: bool = False) -> int:
    raw = cur.take(_NUMBER, "a number").lstrip(b"0")
    # int() of a huge digit string is slow (and refused past 4300 digits): check length first.
    value = int(raw) if 0 < len(raw) <= 19 else (0 if not raw else limit + 1)
    if value > limit or (nonzero and value == 0):
        raise _Bad("Number out of range")
    return value


def _paren_list(cur: _Cursor, item: Callable[[_Cursor], _T], *, empty: bool = False) -> list[_T]:
    """``"(" item *(SP item) ")"``; ``empty`` allows ``()``."""
    cur.char(_LPAREN, "'('")
    out: list[_T] = []
    if cur.peek() == _RPAREN:
        if not empty:
            raise _Bad("Empty list")
    else:
        out.append(item(cur))
        while cur.peek() == _SP:
            cur.i += 1
            out.append(item(cur))
    cur.char(_RPAREN, "')'")
    return out


def _seq_number(raw: bytes) -> int:
    if raw == b"*":
        return STAR
    digits = raw.lstrip(b"0")
    if not digits or len(digits) > 10 or int(digits) > _MAX32:
        raise _Bad("Invalid sequence number")
    return int(digits)


def _sequence_set(cur: _Cursor) -> SequenceSet:
    if cur.peek() == ord("$"):
        cur.i += 1
        return SequenceSet((), saved=True)
    ranges = []
    for item in cur.take(_SEQ_SET, "a sequence set").split(b","):
        low, colon, high = item.partition(b":")
        first = _seq_number(low)
        ranges.append((first, _seq_number(high) if colon else first))
    return SequenceSet(tuple(ranges))


def _flag(cur: _Cursor) -> str:
    flag = cur.take(_FLAG, "a flag").decode("ascii")
    # System flags are case-insensitive; one spelling spares every caller a case fold.
    return _SYSTEM_FLAGS.get(flag.upper(), flag) if flag[0] == "\\" else flag


def _flag_list(cur: _Cursor) -> tuple[str, ...]:
    return tuple(_paren_list(cur, _flag, empty=True))


def _date(cur: _Cursor) -> date:
    match = _DATE.match(cur.seg, cur.i)
    if match is None:
        raise _Bad("Expected a date (dd-Mon-yyyy)")
    cur.i = match.end()
    return _make_date(match.group(4), match.group(3), match.group(2))


def _make_date(year: bytes, month: bytes, day: bytes) -> date:
    number = _MONTHS.get(month.decode("ascii").upper())
    if number is None:
        raise _Bad("Invalid month in date")
    try:
        return date(int(year), number, int(day))
    except ValueError:
        raise _Bad("Invalid date") from None


def _date_time(cur: _Cursor) -> datetime:
    match = _DATE_TIME.match(cur.seg, cur.i)
    if match is None:
        raise _Bad('Expected a date-time ("dd-Mon-yyyy hh:mm:ss +zzzz")')
    cur.i = match.end()
    day, month, year, hour, minute, second, sign, zone_h, zone_m = match.groups()
    day_date = _make_date(year, month, day.strip())
    offset = timedelta(hours=int(zone_h), minutes=int(zone_m))
    try:
        zone = timezone(-offset if sign == b"-" else offset)
        return datetime(
            day_date.year, day_date.month, day_date.day,
            int(hour), int(minute), int(second), tzinfo=zone,
        )  # fmt: skip
    except ValueError:
        raise _Bad("Invalid date-time") from None


def _mailbox_text(cur: _Cursor, raw: bytes, *, inbox: bool) -> str:
    """Decode a mailbox name (or pattern) from modified UTF-7, or UTF-8 after UTF8=ACCEPT;
    ``inbox`` folds any spelling of INBOX to ``INBOX``."""
    if cur.utf8:
        name = _text(raw)
    else:
        try:
            name = decode_mailbox(raw.decode("ascii"))
        except ValueError:  # UnicodeDecodeError included
            raise _Bad("Mailbox name is not valid modified UTF-7") from None
    if inbox and len(name) == 5 and name.isascii() and name.upper() == "INBOX":
        return "INBOX"
    return name


def _mailbox(cur: _Cursor) -> str:
    return _mailbox_text(cur, _astring(cur), inbox=True)


def _list_mailbox(cur: _Cursor) -> str:
    if cur.peek() == _DQUOTE or cur.at_literal():
        raw = _string(cur)
    else:
        raw = cur.take(_LIST_ATOM, "a mailbox pattern")
    return _mailbox_text(cur, raw, inbox=False)


# --- Commands without arguments, and the simple ones ----------------------------------------


def _no_args(cur: _Cursor) -> None:
    return None


def _mailbox_arg(cur: _Cursor) -> MailboxArg:
    cur.sp()
    return MailboxArg(_mailbox(cur))


def _authenticate(cur: _Cursor) -> Authenticate:
    cur.sp()
    mechanism = _word(cur)
    if cur.at_end():
        return Authenticate(mechanism)
    cur.sp()
    response = cur.take(_ATOM, "a base64 initial response")
    if response == b"=":
        return Authenticate(mechanism, b"")
    try:
        return Authenticate(mechanism, base64.b64decode(response, validate=True))
    except binascii.Error:
        raise _Bad("Invalid base64 in the initial response") from None


def _login(cur: _Cursor) -> Login:
    cur.sp()
    username = _text(_astring(cur))
    cur.sp()
    return Login(username, _text(_astring(cur)))


def _enable(cur: _Cursor) -> Words:
    words = []
    while not cur.at_end():
        cur.sp()
        words.append(_word(cur))
    if not words:
        raise _Bad("ENABLE needs at least one capability")
    return Words(tuple(words))


def _id_pair(cur: _Cursor) -> tuple[str, str | None]:
    field = _text(_string(cur))
    cur.sp()
    value = _nstring(cur)
    return field, None if value is None else _text(value)


def _id(cur: _Cursor) -> IdParams:
    cur.sp()
    if cur.peek() != _LPAREN:
        _keyword(cur, "NIL")
        return IdParams(None)
    return IdParams(tuple(_paren_list(cur, _id_pair, empty=True)))


def _select(cur: _Cursor) -> MailboxArg:
    cur.sp()
    name = _mailbox(cur)
    if cur.at_end():
        return MailboxArg(name)
    cur.sp()
    for param in _paren_list(cur, _word):
        if param != "CONDSTORE":
            raise _Bad(f"Unsupported SELECT parameter {param}")
    return MailboxArg(name, condstore=True)


def _use_attribute(cur: _Cursor) -> str:
    flag = _flag(cur)
    if flag[0] != "\\":
        raise _Bad("Special-use attributes start with a backslash")
    return flag


def _create(cur: _Cursor) -> MailboxArg:
    cur.sp()
    name = _mailbox(cur)
    if cur.at_end():
        return MailboxArg(name)
    cur.sp()
    cur.char(_LPAREN, "'('")
    _keyword(cur, "USE")
    cur.sp()
    uses = _paren_list(cur, _use_attribute, empty=True)
    cur.char(_RPAREN, "')'")
    return MailboxArg(name, special_use=tuple(uses))


def _rename(cur: _Cursor) -> Rename:
    cur.sp()
    old = _mailbox(cur)
    cur.sp()
    return Rename(old, _mailbox(cur))


def _getquota(cur: _Cursor) -> Words:
    cur.sp()
    return Words((_text(_astring(cur)),))


# --- LIST, LSUB, STATUS ---------------------------------------------------------------------

_LIST_SELECT = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_LIST_RETURN = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"})
_STATUS_ITEMS = frozenset(
    {"MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "SIZE", "HIGHESTMODSEQ", "DELETED"}
)


def _status_item(cur: _Cursor) -> str:
    item = _word(cur)
    if item not in _STATUS_ITEMS:
        raise _Bad(f"Unknown STATUS item {item}")
    return item


def _list_select_option(cur: _Cursor) -> str:
    option = _word(cur)
    if option not in _LIST_SELECT:
        raise _Bad(f"Unknown LIST selection option {option}")
    return option


def _list_return(cur: _Cursor) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``RETURN (...)``: the return options and the STATUS items among them."""
    _keyword(cur, "RETURN")
    cur.sp()
    status: list[str] = []

    def option(cur: _Cursor) -> str:
        name = _word(cur)
        if name not in _LIST_RETURN:
            raise _Bad(f"Unknown LIST return option {name}")
        if name == "STATUS":
            cur.sp()
            status.extend(_paren_list(cur, _status_item))
        return name

    returns = tuple(_paren_list(cur, option, empty=True))
    return returns, tuple(status)


def _list(cur: _Cursor) -> ListArgs:
    cur.sp()
    select: tuple[str, ...] = ()
    extended = False
    if cur.peek() == _LPAREN:
        select = tuple(_paren_list(cur, _list_select_option, empty=True))
        if select == ("RECURSIVEMATCH",):
            raise _Bad("RECURSIVEMATCH needs another selection option")
        extended = True
        cur.sp()
    reference = _mailbox_text(cur, _astring(cur), inbox=False)
    cur.sp()
    if cur.peek() == _LPAREN:
        patterns = tuple(_paren_list(cur, _list_mailbox))
        extended = True
    else:
        patterns = (_list_mailbox(cur),)
    returns: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    if not cur.at_end():
        cur.sp()
        returns, status = _list_return(cur)
        extended = True
    return ListArgs(reference, patterns, select, returns, status, extended=extended)


def _lsub(cur: _Cursor) -> ListArgs:
    cur.sp()
    reference = _mailbox_text(cur, _astring(cur), inbox=False)
    cur.sp()
    return ListArgs(reference, (_list_mailbox(cur),), lsub=True)


def _status(cur: _Cursor) -> StatusArgs:
    cur.sp()
    name = _mailbox(cur)
    cur.sp()
    return StatusArgs(name, tuple(_paren_list(cur, _status_item)))


# --- APPEND ---------------------------------------------------------------------------------


def _append_message(cur: _Cursor) -> AppendMessage:
    flags: tuple[str, ...] = ()
    internal_date = None
    if cur.peek() == _LPAREN:
        flags = _flag_list(cur)
        cur.sp()
    if cur.peek() == _DQUOTE:
        internal_date = _date_time(cur)
        cur.sp()
    if cur.at_literal():
        literal = cur.literal()
        return AppendMessage(flags, internal_date, literal.data, literal.binary)
    # RFC 6855: UTF8 (~{n}...) carries a message with UTF-8 headers.
    _keyword(cur, "UTF8")
    cur.sp()
    cur.char(_LPAREN, "'('")
    literal = cur.literal()
    if not literal.binary:
        raise _Bad("APPEND UTF8 needs a literal8")
    cur.char(_RPAREN, "')'")
    return AppendMessage(flags, internal_date, literal.data, binary=True)


def _append(cur: _Cursor) -> Append:
    cur.sp()
    name = _mailbox(cur)
    messages = []
    while not cur.at_end():
        cur.sp()
        messages.append(_append_message(cur))
    if not messages:
        raise _Bad("APPEND needs a message")
    return Append(name, tuple(messages))


# --- FETCH ----------------------------------------------------------------------------------

_FETCH_SIMPLE = frozenset(
    {
        "ENVELOPE", "FLAGS", "INTERNALDATE", "RFC822", "RFC822.HEADER", "RFC822.SIZE",
        "RFC822.TEXT", "BODY", "BODYSTRUCTURE", "UID", "MODSEQ",
    }
)  # fmt: skip
_FAST = (FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"))
_FETCH_MACROS = {
    "FAST": _FAST,
    "ALL": (*_FAST, FetchItem("ENVELOPE")),
    "FULL": (*_FAST, FetchItem("ENVELOPE"), FetchItem("BODY")),
}
_SECTION_TEXTS = frozenset({"HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT", "TEXT"})


def _part_numbers(words: list[str]) -> tuple[int, ...]:
    """Take the leading numeric words (section-part) off ``words``."""
    part: list[int] = []
    while words and words[0].isdigit() and words[0].isascii():
        part.append(_seq_number(words.pop(0).encode("ascii")))
    return tuple(part)


def _header_field(cur: _Cursor) -> str:
    return _text(_astring(cur)).upper()


def _section(cur: _Cursor) -> Section:
    """``[section-spec]`` after BODY or BODY.PEEK."""
    cur.char(_LBRACKET, "'['")
    spec = cur.maybe(_FETCH_NAME)
    if spec is None:
        cur.char(ord("]"), "']'")
        return Section()
    words = spec.decode("ascii").upper().split(".")
    if "" in words:
        raise _Bad("Invalid section")
    part = _part_numbers(words)
    text = ".".join(words)
    if text and text not in _SECTION_TEXTS and not (part and text == "MIME"):
        raise _Bad("Invalid section")
    fields: tuple[str, ...] = ()
    if text.startswith("HEADER.FIELDS"):
        cur.sp()
        fields = tuple(_paren_list(cur, _header_field))
    cur.char(ord("]"), "']'")
    return Section(part, text or None, fields)


def _binary_section(cur: _Cursor) -> Section:
    cur.char(_LBRACKET, "'['")
    spec = cur.maybe(_FETCH_NAME)
    cur.char(ord("]"), "']'")
    if spec is None:
        return Section()
    words = spec.decode("ascii").split(".")
    part = _part_numbers(words)
    if words or not part:
        raise _Bad("Invalid BINARY section")
    return Section(part)


def _partial(cur: _Cursor) -> tuple[int, int] | None:
    if cur.peek() != ord("<"):
        return None
    cur.i += 1
    offset = _number(cur)
    cur.char(ord("."), "'.'")
    count = _number(cur, nonzero=True)
    cur.char(ord(">"), "'>'")
    return offset, count


def _fetch_att(cur: _Cursor) -> FetchItem:
    name = cur.take(_FETCH_NAME, "a FETCH item").decode("ascii").upper()
    if cur.peek() != _LBRACKET:
        if name not in _FETCH_SIMPLE:
            raise _Bad(f"Unknown FETCH item {name}")
        return FetchItem(name)
    if name in ("BODY", "BODY.PEEK"):
        section = _section(cur)
        return FetchItem("BODY[]", section, name == "BODY.PEEK", _partial(cur))
    if name in ("BINARY", "BINARY.PEEK"):
        section = _binary_section(cur)
        return FetchItem("BINARY", section, name == "BINARY.PEEK", _partial(cur))
    if name == "BINARY.SIZE":
        return FetchItem("BINARY.SIZE", _binary_section(cur))
    raise _Bad(f"Unknown FETCH item {name}")


def _fetch_items(cur: _Cursor) -> tuple[tuple[FetchItem, ...], str | None]:
    if cur.peek() == _LPAREN:
        return tuple(_paren_list(cur, _fetch_att)), None
    mark = cur.mark()
    word = cur.maybe(_FETCH_NAME)
    macro = word.decode("ascii").upper() if word else ""
    if macro in _FETCH_MACROS and cur.peek() != _LBRACKET:
        return _FETCH_MACROS[macro], macro
    cur.reset(mark)
    return (_fetch_att(cur),), None


def _fetch(cur: _Cursor, *, uid: bool = False) -> Fetch:
    cur.sp()
    sequence = _sequence_set(cur)
    cur.sp()
    items, macro = _fetch_items(cur)
    changed_since = None
    vanished = False
    if not cur.at_end():
        cur.sp()
        for modifier in _paren_list(cur, _fetch_modifier):
            if modifier is None:
                vanished = True
            else:
                changed_since = modifier
    if vanished and (not uid or changed_since is None):
        raise _Bad("VANISHED needs UID FETCH with CHANGEDSINCE")
    return Fetch(sequence, items, changed_since, vanished, macro)


def _fetch_modifier(cur: _Cursor) -> int | None:
    """CHANGEDSINCE n gives n; VANISHED gives None."""
    name = _word(cur)
    if name == "VANISHED":
        return None
    if name != "CHANGEDSINCE":
        raise _Bad(f"Unknown FETCH modifier {name}")
    cur.sp()
    return _number(cur, _MAX63)


def _uid_fetch(cur: _Cursor) -> Fetch:
    return _fetch(cur, uid=True)


# --- STORE, COPY, MOVE, EXPUNGE -------------------------------------------------------------


def _store(cur: _Cursor) -> Store:
    cur.sp()
    sequence = _sequence_set(cur)
    cur.sp()
    unchanged_since = None
    if cur.peek() == _LPAREN:
        cur.i += 1
        _keyword(cur, "UNCHANGEDSINCE")
        cur.sp()
        unchanged_since = _number(cur, _MAX63)
        cur.char(_RPAREN, "')'")
        cur.sp()
    match = _STORE_ATT.match(cur.seg, cur.i)
    if match is None:
        raise _Bad("Expected FLAGS, +FLAGS or -FLAGS")
    cur.i = match.end()
    cur.sp()
    if cur.peek() == _LPAREN:
        flags = _flag_list(cur)
    else:
        flags_list = [_flag(cur)]
        while cur.peek() == _SP:
            cur.i += 1
            flags_list.append(_flag(cur))
        flags = tuple(flags_list)
    mode = match.group(1).decode("ascii")
    return Store(sequence, mode, bool(match.group(2)), flags, unchanged_since)


def _copy_move(cur: _Cursor) -> CopyMove:
    cur.sp()
    sequence = _sequence_set(cur)
    cur.sp()
    return CopyMove(sequence, _mailbox(cur))


def _uid_expunge(cur: _Cursor) -> SequenceSet:
    cur.sp()
    return _sequence_set(cur)


# --- SEARCH ---------------------------------------------------------------------------------

_SEARCH_DEPTH = 64
_SEARCH_RETURN = frozenset({"MIN", "MAX", "ALL", "COUNT", "SAVE"})
_UTF8_CHARSETS = frozenset({"UTF-8", "UTF8", "US-ASCII", "ASCII"})


class _SearchContext:
    """What SEARCH keys need besides the cursor: the charset of their strings."""

    __slots__ = ("charset",)

    def __init__(self, charset: str | None) -> None:
        self.charset = charset

    def text(self, raw: bytes) -> str:
        # US-ASCII is read as UTF-8, as Dovecot does: clients send 8-bit text anyway.
        if self.charset is None or self.charset in _UTF8_CHARSETS:
            return _text(raw)
        try:
            return raw.decode(self.charset)
        except LookupError:
            raise _Bad("Unsupported charset", "BADCHARSET") from None
        except UnicodeError:  # some codecs ("undefined", "idna") raise the base class
            raise _Bad(f"Invalid {self.charset} in a string") from None


_KeyParser = Callable[[_Cursor, _SearchContext, int], SearchKey]


def _constant(key: SearchKey) -> _KeyParser:
    def parse(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
        return key

    return parse


def _flag_key(flag: str, *, negate: bool = False) -> _KeyParser:
    key = SearchKey("FLAG", flag)
    return _constant(SearchKey("NOT", key) if negate else key)


def _string_key(name: str) -> _KeyParser:
    def parse(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
        cur.sp()
        return SearchKey(name, ctx.text(_astring(cur)))

    return parse


def _keyword_key(*, negate: bool) -> _KeyParser:
    def parse(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
        cur.sp()
        key = SearchKey("KEYWORD", _flag(cur))
        return SearchKey("NOT", key) if negate else key

    return parse


def _date_key(name: str) -> _KeyParser:
    def parse(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
        cur.sp()
        return SearchKey(name, _date(cur))

    return parse


def _number_key(name: str, limit: int) -> _KeyParser:
    def parse(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
        cur.sp()
        return SearchKey(name, _number(cur, limit, nonzero=name in ("OLDER", "YOUNGER")))

    return parse


def _header_key(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
    cur.sp()
    field = _text(_astring(cur))
    cur.sp()
    return SearchKey("HEADER", (field, ctx.text(_astring(cur))))


def _not_key(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
    cur.sp()
    return SearchKey("NOT", _search_key(cur, ctx, depth + 1))


def _or_key(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
    cur.sp()
    first = _search_key(cur, ctx, depth + 1)
    cur.sp()
    return SearchKey("OR", (first, _search_key(cur, ctx, depth + 1)))


def _uid_key(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
    cur.sp()
    return SearchKey("UID", _sequence_set(cur))


def _modseq_key(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
    cur.sp()
    if cur.peek() == _DQUOTE:  # entry-name SP entry-type-req: parsed, then dropped
        _string(cur)
        cur.sp()
        if _word(cur) not in ("PRIV", "SHARED", "ALL"):
            raise _Bad("Expected priv, shared or all")
        cur.sp()
    return SearchKey("MODSEQ", _number(cur, _MAX63))


_SEARCH_KEYS: dict[str, _KeyParser] = {
    "ALL": _constant(SearchKey("ALL")),
    "ANSWERED": _flag_key("\\Answered"),
    "DELETED": _flag_key("\\Deleted"),
    "DRAFT": _flag_key("\\Draft"),
    "FLAGGED": _flag_key("\\Flagged"),
    "SEEN": _flag_key("\\Seen"),
    "UNANSWERED": _flag_key("\\Answered", negate=True),
    "UNDELETED": _flag_key("\\Deleted", negate=True),
    "UNDRAFT": _flag_key("\\Draft", negate=True),
    "UNFLAGGED": _flag_key("\\Flagged", negate=True),
    "UNSEEN": _flag_key("\\Seen", negate=True),
    "RECENT": _constant(SearchKey("RECENT")),
    "NEW": _constant(
        SearchKey("AND", (SearchKey("RECENT"), SearchKey("NOT", SearchKey("FLAG", "\\Seen"))))
    ),
    "OLD": _constant(SearchKey("NOT", SearchKey("RECENT"))),
    "KEYWORD": _keyword_key(negate=False),
    "UNKEYWORD": _keyword_key(negate=True),
    "BCC": _string_key("BCC"),
    "BODY": _string_key("BODY"),
    "CC": _string_key("CC"),
    "FROM": _string_key("FROM"),
    "SUBJECT": _string_key("SUBJECT"),
    "TEXT": _string_key("TEXT"),
    "TO": _string_key("TO"),
    "HEADER": _header_key,
    "BEFORE": _date_key("BEFORE"),
    "ON": _date_key("ON"),
    "SINCE": _date_key("SINCE"),
    "SENTBEFORE": _date_key("SENTBEFORE"),
    "SENTON": _date_key("SENTON"),
    "SENTSINCE": _date_key("SENTSINCE"),
    "LARGER": _number_key("LARGER", _MAX63),
    "SMALLER": _number_key("SMALLER", _MAX63),
    "OLDER": _number_key("OLDER", _MAX32),
    "YOUNGER": _number_key("YOUNGER", _MAX32),
    "MODSEQ": _modseq_key,
    "NOT": _not_key,
    "OR": _or_key,
    "UID": _uid_key,
}


def _search_key(cur: _Cursor, ctx: _SearchContext, depth: int) -> SearchKey:
    if depth > _SEARCH_DEPTH:
        raise _Bad("Search criteria nested too deeply")
    first = cur.peek()
    if first == _LPAREN:
        keys = _paren_list(cur, lambda cur: _search_key(cur, ctx, depth + 1))
        return SearchKey("AND", tuple(keys))
    if first >= 0 and first in b"0123456789*$":
        return SearchKey("SEQUENCE", _sequence_set(cur))
    name = _word(cur)
    parse = _SEARCH_KEYS.get(name)
    if parse is None:
        raise _Bad(f"Unknown search key {name}")
    return parse(cur, ctx, depth)


def _search_return_option(cur: _Cursor) -> str:
    option = _word(cur)
    if option not in _SEARCH_RETURN:
        raise _Bad(f"Unknown SEARCH return option {option}")
    return option


def _search(cur: _Cursor) -> Search:
    cur.sp()
    result_options = None
    mark = cur.mark()
    word = (cur.maybe(_ATOM) or b"").upper()
    if word == b"RETURN":
        cur.sp()
        result_options = tuple(_paren_list(cur, _search_return_option, empty=True))
        cur.sp()
        mark = cur.mark()
        word = (cur.maybe(_ATOM) or b"").upper()
    charset = None
    if word == b"CHARSET":
        cur.sp()
        charset = _text(_astring(cur)).upper()
        if charset not in _UTF8_CHARSETS:
            _check_charset(charset)
        cur.sp()
    else:
        cur.reset(mark)
    ctx = _SearchContext(charset)
    keys = [_search_key(cur, ctx, 0)]
    while not cur.at_end():
        cur.sp()
        keys.append(_search_key(cur, ctx, 0))
    return Search(SearchKey("AND", tuple(keys)), charset, result_options)


def _check_charset(charset: str) -> None:
    try:
        info = codecs.lookup(charset)
    except (LookupError, ValueError):  # ValueError: a NUL in the name
        raise _Bad("Unsupported charset", "BADCHARSET") from None
    # Only text encodings: "hex" or "base64" are codecs too, but not charsets.
    if not getattr(info, "_is_text_encoding", True):
        raise _Bad("Unsupported charset", "BADCHARSET")


# --- The command table ----------------------------------------------------------------------

_Parser = Callable[[_Cursor], Arguments]

COMMANDS: dict[str, _Parser] = {
    "CAPABILITY": _no_args,
    "NOOP": _no_args,
    "LOGOUT": _no_args,
    "STARTTLS": _no_args,
    "AUTHENTICATE": _authenticate,
    "LOGIN": _login,
    "ENABLE": _enable,
    "ID": _id,
    "NAMESPACE": _no_args,
    "SELECT": _select,
    "EXAMINE": _select,
    "CREATE": _create,
    "DELETE": _mailbox_arg,
    "RENAME": _rename,
    "SUBSCRIBE": _mailbox_arg,
    "UNSUBSCRIBE": _mailbox_arg,
    "LIST": _list,
    "LSUB": _lsub,
    "STATUS": _status,
    "APPEND": _append,
    "IDLE": _no_args,
    "CHECK": _no_args,
    "CLOSE": _no_args,
    "UNSELECT": _no_args,
    "EXPUNGE": _no_args,
    "SEARCH": _search,
    "FETCH": _fetch,
    "STORE": _store,
    "COPY": _copy_move,
    "MOVE": _copy_move,
    "GETQUOTAROOT": _mailbox_arg,
    "GETQUOTA": _getquota,
    "MYRIGHTS": _mailbox_arg,
    "GETACL": _mailbox_arg,
}

UID_COMMANDS: dict[str, _Parser] = {
    "FETCH": _uid_fetch,
    "SEARCH": _search,
    "STORE": _store,
    "COPY": _copy_move,
    "MOVE": _copy_move,
    "EXPUNGE": _uid_expunge,
}


def command_tag(line: bytes) -> str | None:
    """The tag at the start of a command line, if it has a valid one."""
    match = _TAG.match(line)
    if match is None or line[match.end() : match.end() + 1] not in (b" ", b""):
        return None
    return match.group().decode("ascii")


def command_name(line: bytes) -> str:
    """The upper-cased command word after the tag (``""`` if there is none)."""
    parts = line.split(b" ", 2)
    return parts[1].decode("latin-1").upper() if len(parts) > 1 else ""


def parse_command(
    segments: Sequence[bytes], literals: Sequence[Literal], *, utf8: bool = False
) -> Request | BadRequest:
    """Parse one command: ``segments`` are its line pieces (without CRLF and without the
    ``{n}`` markers) and ``literals[i]`` sits between ``segments[i]`` and
    ``segments[i + 1]``. ``utf8``: the client enabled UTF8=ACCEPT. Whatever the bytes,
    the answer is a value, never an exception."""
    if len(segments) != len(literals) + 1:
        raise ValueError("need one more segment than literals")
    cur = _Cursor(segments, literals, utf8=utf8)
    tag = command_tag(segments[0])
    if tag is None:
        return BadRequest(None, "Missing or invalid tag")
    cur.i = len(tag)
    try:
        cur.sp()
        name = _word(cur)
        table = COMMANDS
        if uid := name == "UID":
            cur.sp()
            name = _word(cur)
            table = UID_COMMANDS
        parse = table.get(name)
        if parse is None:
            return BadRequest(tag, "Unknown command")
        args = parse(cur)
        if not cur.at_end():
            raise _Bad("Unexpected extra arguments")
    except _Bad as bad:
        return BadRequest(tag, bad.text, code=bad.code)
    return Request(tag, name, args, uid)
