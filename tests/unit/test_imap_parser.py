"""The IMAP command grammar: every command form the server reads, and the refusals."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govmail.imap.proto.model import (
    STAR,
    Append,
    AppendMessage,
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
from govmail.imap.proto.parser import Literal, parse_command
from govmail.imap.proto.receiver import Receiver


def parse(data: bytes, *, utf8: bool = False) -> Request | BadRequest:
    """The one Request or BadRequest that ``data`` (CRLF added) gives, literals accepted."""
    receiver = Receiver()
    receiver.utf8_accept = utf8
    events = receiver.feed(data + b"\r\n")
    while more := receiver.feed(b""):
        events += more
    final = [e for e in events if isinstance(e, Request | BadRequest)]
    assert len(final) == 1, events
    return final[0]


def args(data: bytes, **kwargs: bool) -> object:
    request = parse(data, **kwargs)
    assert isinstance(request, Request), request
    return request.args


def bad(data: bytes, **kwargs: bool) -> BadRequest:
    request = parse(data, **kwargs)
    assert isinstance(request, BadRequest), request
    return request


# --- Tags, names, simple commands -----------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["CAPABILITY", "NOOP", "LOGOUT", "STARTTLS", "NAMESPACE", "IDLE", "CHECK", "CLOSE",
             "UNSELECT", "EXPUNGE"],
)  # fmt: skip
def test_commands_without_arguments(name: str) -> None:
    assert parse(b"a1 " + name.lower().encode()) == Request("a1", name)
    assert bad(b"a1 " + name.encode() + b" extra").tag == "a1"


def test_unknown_command_keeps_the_tag() -> None:
    assert parse(b"x.1 FROB") == BadRequest("x.1", "Unknown command")
    assert parse(b"x.1 UID LOGIN a b") == BadRequest("x.1", "Unknown command")


@pytest.mark.parametrize("line", [b"+a NOOP", b"a\x80 NOOP", b"(a NOOP", b" NOOP", b'"a" NOOP'])
def test_missing_or_invalid_tag(line: bytes) -> None:
    assert parse(line) == BadRequest(None, "Missing or invalid tag")


def test_tag_without_command() -> None:
    assert bad(b"a1").tag == "a1"
    assert bad(b"a1 ").tag == "a1"


def test_login_astrings_and_literals() -> None:
    assert args(b"a LOGIN joe secret") == Login("joe", "secret")
    assert args(b'a LOGIN "j o\\"e" "p\\\\w"') == Login('j o"e', "p\\w")
    assert args(b"a LOGIN {3}\r\njoe {6+}\r\nsecret") == Login("joe", "secret")
    assert args('a LOGIN "nguyễn" "mật khẩu"'.encode()) == Login("nguyễn", "mật khẩu")
    assert bad(b'a LOGIN "bad\\x" y').tag == "a"
    assert bad(b'a LOGIN "\xff" y').text == "Invalid UTF-8 in a string"
    assert bad(b"a LOGIN joe").tag == "a"


def test_authenticate() -> None:
    assert args(b"a AUTHENTICATE plain") == Authenticate("PLAIN")
    assert args(b"a AUTHENTICATE PLAIN =") == Authenticate("PLAIN", b"")
    assert args(b"a AUTHENTICATE PLAIN AGpvZQBzZWNyZXQ=") == Authenticate(
        "PLAIN", b"\x00joe\x00secret"
    )
    assert bad(b"a AUTHENTICATE PLAIN A").text == "Invalid base64 in the initial response"
    assert isinstance(parse(b"a AUTHENTICATE PLAIN AG(v"), BadRequest)


def test_enable_and_getquota() -> None:
    assert args(b"a ENABLE condstore utf8=accept") == Words(("CONDSTORE", "UTF8=ACCEPT"))
    assert isinstance(parse(b"a ENABLE"), BadRequest)
    assert args(b'a GETQUOTA ""') == Words(("",))
    assert args(b"a GETQUOTA root") == Words(("root",))


def test_id() -> None:
    assert args(b"a ID NIL") == IdParams(None)
    assert args(b'a ID ("name" "Thunderbird" "version" NIL)') == IdParams(
        (("name", "Thunderbird"), ("version", None))
    )
    assert args(b"a ID ()") == IdParams(())
    assert isinstance(parse(b'a ID ("name")'), BadRequest)


# --- Mailboxes ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SELECT", "EXAMINE"])
def test_select(name: str) -> None:
    command = name.encode()
    assert args(b"a " + command + b" inbox") == MailboxArg("INBOX")
    assert args(b"a " + command + b' "InBoX" (condstore)') == MailboxArg("INBOX", condstore=True)
    assert bad(b"a " + command + b" INBOX (QRESYNC (1 2))").tag == "a"
    assert isinstance(parse(b"a " + command + b" INBOX ()"), BadRequest)


@pytest.mark.parametrize("name", ["DELETE", "SUBSCRIBE", "UNSUBSCRIBE", "GETQUOTAROOT",
                                  "MYRIGHTS", "GETACL"])  # fmt: skip
def test_mailbox_commands(name: str) -> None:
    assert parse(b"a " + name.encode() + b" &ZeVnLIqe-") == Request("a", name, MailboxArg("日本語"))
    assert isinstance(parse(b"a " + name.encode()), BadRequest)


def test_mailbox_names_modified_utf7_and_utf8() -> None:
    assert args(b'a DELETE "~peter/mail/&U,BTFw-/&ZeVnLIqe-"') == MailboxArg(
        "~peter/mail/台北/日本語"
    )
    assert args(b'a DELETE "Th&AbA- &AREA4w- g&Hu0-i"') == MailboxArg("Thư đã gửi")
    assert bad(b"a DELETE &Jjo").text == "Mailbox name is not valid modified UTF-7"
    assert isinstance(parse('a DELETE "Thư đã gửi"'.encode()), BadRequest)
    assert args('a DELETE "Thư đã gửi"'.encode(), utf8=True) == MailboxArg("Thư đã gửi")
    assert args(b"a DELETE a&b", utf8=True) == MailboxArg("a&b")
    assert args(b"a DELETE INBOX/Sub") == MailboxArg("INBOX/Sub")
    assert args(b"a DELETE inbox.sub") == MailboxArg("inbox.sub")


def test_create_with_special_use() -> None:
    assert args(b"a CREATE Sent") == MailboxArg("Sent")
    assert args(b"a CREATE Sent (USE (\\Sent \\Archive))") == MailboxArg(
        "Sent", special_use=("\\Sent", "\\Archive")
    )
    assert isinstance(parse(b"a CREATE Sent (USE (Sent))"), BadRequest)
    assert isinstance(parse(b"a CREATE Sent (FOO (\\Sent))"), BadRequest)


def test_rename() -> None:
    assert args(b'a RENAME old "new name"') == Rename("old", "new name")
    assert isinstance(parse(b"a RENAME old"), BadRequest)


def test_list_basic_and_lsub() -> None:
    assert args(b'a LIST "" *') == ListArgs("", ("*",))
    assert args(b'a LIST "" %/%') == ListArgs("", ("%/%",))
    assert args(b"a LIST ~/ INBOX.]x") == ListArgs("~/", ("INBOX.]x",))
    assert args(b'a LSUB "" "Sent*"') == ListArgs("", ("Sent*",), lsub=True)
    assert args(b'a LIST "" &ZeVnLIqe-*') == ListArgs("", ("日本語*",))


def test_list_extended() -> None:
    line = (
        b'a LIST (SUBSCRIBED RECURSIVEMATCH REMOTE SPECIAL-USE) "" ("INBOX" "Sent*") '
        b"RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN))"
    )
    assert args(line) == ListArgs(
        "",
        ("INBOX", "Sent*"),
        select=("SUBSCRIBED", "RECURSIVEMATCH", "REMOTE", "SPECIAL-USE"),
        returns=("SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS"),
        status_items=("MESSAGES", "UNSEEN"),
        extended=True,
    )
    assert args(b'a LIST () "" %') == ListArgs("", ("%",), extended=True)
    assert args(b'a LIST "" % RETURN ()') == ListArgs("", ("%",), extended=True)
    assert isinstance(parse(b'a LIST (RECURSIVEMATCH) "" %'), BadRequest)
    assert isinstance(parse(b'a LIST (FOO) "" %'), BadRequest)
    assert isinstance(parse(b'a LIST "" % RETURN (FOO)'), BadRequest)
    assert isinstance(parse(b'a LIST "" % RETURN (STATUS (FOO))'), BadRequest)


def test_status() -> None:
    assert args(b"a STATUS inbox (messages UIDNEXT uidvalidity UNSEEN RECENT SIZE "
                b"HIGHESTMODSEQ DELETED)") == StatusArgs(
        "INBOX",
        ("MESSAGES", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "RECENT", "SIZE", "HIGHESTMODSEQ",
         "DELETED"),
    )  # fmt: skip
    assert isinstance(parse(b"a STATUS inbox ()"), BadRequest)
    assert isinstance(parse(b"a STATUS inbox (FOO)"), BadRequest)


# --- APPEND ---------------------------------------------------------------------------------


def test_append_forms() -> None:
    plus7 = timezone(timedelta(hours=7))
    assert args(b"a APPEND Sent {5}\r\nHello") == Append(
        "Sent", (AppendMessage((), None, b"Hello"),)
    )
    moment = datetime(2026, 11, 28, 14, 25, 31, tzinfo=plus7)
    line = b'a APPEND Sent (\\Seen $Work) "28-Nov-2026 14:25:31 +0700" {2+}\r\nHi'
    assert args(line) == Append("Sent", (AppendMessage(("\\Seen", "$Work"), moment, b"Hi"),))
    assert args(b'a APPEND Sent () " 2-Jan-2026 00:00:00 -0130" {1}\r\nx') == Append(
        "Sent",
        (AppendMessage((), datetime(2026, 1, 2, tzinfo=timezone(-timedelta(minutes=90))), b"x"),),
    )


def test_multiappend_literal8_and_utf8_form() -> None:
    data = b"a APPEND Sent {1+}\r\nA (\\Draft) ~{2+}\r\n\x00B UTF8 (~{3+}\r\nC\r\n)"
    assert args(data) == Append(
        "Sent",
        (
            AppendMessage((), None, b"A"),
            AppendMessage(("\\Draft",), None, b"\x00B", binary=True),
            AppendMessage((), None, b"C\r\n", binary=True),
        ),
    )


@pytest.mark.parametrize(
    "line",
    [
        b"a APPEND Sent",
        b'a APPEND Sent "text"',
        b"a APPEND Sent (\\Seen)",
        b'a APPEND Sent "31-Feb-2026 10:00:00 +0000" {1+}\r\nx',
        b'a APPEND Sent "01-Foo-2026 10:00:00 +0000" {1+}\r\nx',
        b'a APPEND Sent "01-Jan-2026 10:00:00 +2500" {1+}\r\nx',
        b'a APPEND Sent "1-Jan-2026 10:00:00 +0000" {1+}\r\nx',
        b"a APPEND Sent UTF8 ({1+}\r\nx)",
        b"a APPEND Sent {1+}\r\nx extra",
    ],
)
def test_append_refusals(line: bytes) -> None:
    assert bad(line).tag == "a"


def test_literal8_outside_append_is_refused() -> None:
    assert bad(b"a LOGIN ~{3+}\r\njoe x").text == "literal8 is only allowed in APPEND"


# --- FETCH ----------------------------------------------------------------------------------


def fetch_items(spec: bytes) -> tuple[FetchItem, ...]:
    result = args(b"a FETCH 1 " + spec)
    assert isinstance(result, Fetch)
    return result.items


def test_fetch_simple_items_and_macros() -> None:
    names = [b"ENVELOPE", b"FLAGS", b"INTERNALDATE", b"RFC822", b"RFC822.HEADER", b"RFC822.SIZE",
             b"RFC822.TEXT", b"BODY", b"BODYSTRUCTURE", b"UID", b"MODSEQ"]  # fmt: skip
    for name in names:
        assert fetch_items(name.lower()) == (FetchItem(name.decode()),)
    assert fetch_items(b"(uid flags)") == (FetchItem("UID"), FetchItem("FLAGS"))
    fast = (FetchItem("FLAGS"), FetchItem("INTERNALDATE"), FetchItem("RFC822.SIZE"))
    assert args(b"a FETCH 1 fast") == Fetch(SequenceSet(((1, 1),)), fast, macro="FAST")
    assert fetch_items(b"ALL") == (*fast, FetchItem("ENVELOPE"))
    assert fetch_items(b"FULL") == (*fast, FetchItem("ENVELOPE"), FetchItem("BODY"))
    for refused in [b"(ALL)", b"SAVEDATE", b"EMAILID", b"()", b"FLAGS UID", b"BODY[", b"RFC822[]"]:
        assert isinstance(parse(b"a FETCH 1 " + refused), BadRequest), refused


def test_fetch_sections() -> None:
    assert fetch_items(b"BODY[]") == (FetchItem("BODY[]", Section()),)
    assert fetch_items(b"body.peek[1.2.HEADER.FIELDS (From To)]<0.100>") == (
        FetchItem("BODY[]", Section((1, 2), "HEADER.FIELDS", ("FROM", "TO")), True, (0, 100)),
    )
    assert fetch_items(b"BODY[HEADER.FIELDS.NOT (Received)]") == (
        FetchItem("BODY[]", Section((), "HEADER.FIELDS.NOT", ("RECEIVED",))),
    )
    assert fetch_items(b"(BODY[TEXT] BODY[3.MIME] BODY[2.HEADER] BODY[4])") == (
        FetchItem("BODY[]", Section((), "TEXT")),
        FetchItem("BODY[]", Section((3,), "MIME")),
        FetchItem("BODY[]", Section((2,), "HEADER")),
        FetchItem("BODY[]", Section((4,))),
    )
    for refused in [b"BODY[MIME]", b"BODY[0]", b"BODY[1.]", b"BODY[1..2]", b"BODY[FOO]",
                    b"BODY[HEADER.FIELDS]", b"BODY[HEADER.FIELDS ()]", b"BODY[]<1>",
                    b"BODY[]<0.0>", b"BODY[1]<99999999999.1>"]:  # fmt: skip
        assert isinstance(parse(b"a FETCH 1 " + refused), BadRequest), refused


def test_fetch_binary() -> None:
    assert fetch_items(b"(BINARY[1]<0.10> BINARY.PEEK[] BINARY.SIZE[1.2])") == (
        FetchItem("BINARY", Section((1,)), False, (0, 10)),
        FetchItem("BINARY", Section(), True),
        FetchItem("BINARY.SIZE", Section((1, 2))),
    )
    for refused in [b"BINARY[TEXT]", b"BINARY[1.MIME]", b"BINARY.SIZE[1]<0.1>"]:
        assert isinstance(parse(b"a FETCH 1 " + refused), BadRequest), refused


def test_fetch_modifiers_and_uid() -> None:
    assert parse(b"a UID FETCH 1:* (FLAGS) (CHANGEDSINCE 12345 VANISHED)") == Request(
        "a",
        "FETCH",
        Fetch(SequenceSet(((1, STAR),)), (FetchItem("FLAGS"),), 12345, vanished=True),
        uid=True,
    )
    result = args(b"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775807)")
    assert isinstance(result, Fetch) and result.changed_since == 2**63 - 1
    for refused in [b"a FETCH 1 FLAGS (VANISHED)", b"a FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)",
                    b"a UID FETCH 1 FLAGS (VANISHED)", b"a FETCH 1 FLAGS (FOO)",
                    b"a FETCH 1 FLAGS (CHANGEDSINCE 9223372036854775808)"]:  # fmt: skip
        assert isinstance(parse(refused), BadRequest), refused


@pytest.mark.parametrize(
    ("text", "ranges", "saved"),
    [
        (b"1", ((1, 1),), False),
        (b"1:4,7,9:*", ((1, 4), (7, 7), (9, STAR)), False),
        (b"*:3", ((STAR, 3),), False),
        (b"4294967295", ((4294967295, 4294967295),), False),
        (b"$", (), True),
    ],
)
def test_sequence_sets(text: bytes, ranges: tuple[tuple[int, int], ...], saved: bool) -> None:
    assert args(b"a COPY " + text + b" Trash") == CopyMove(SequenceSet(ranges, saved), "Trash")


@pytest.mark.parametrize("text", [b"0", b"1:0", b"4294967296", b"1,", b"1::2", b"a", b"1:2x",
                                  b"99999999999999999999999999", b"$1"])  # fmt: skip
def test_bad_sequence_sets(text: bytes) -> None:
    assert bad(b"a COPY " + text + b" Trash").tag == "a"


# --- STORE, COPY, MOVE, EXPUNGE -------------------------------------------------------------


def test_store_forms() -> None:
    one = SequenceSet(((1, 1),))
    assert args(b"a STORE 1 FLAGS (\\seen \\DELETED $Work)") == Store(
        one, "", False, ("\\Seen", "\\Deleted", "$Work")
    )
    assert args(b"a STORE 1 +flags.silent \\Answered foo") == Store(
        one, "+", True, ("\\Answered", "foo")
    )
    assert args(b"a STORE 1 -FLAGS ()") == Store(one, "-", False, ())
    assert args(b"a STORE 1 (UNCHANGEDSINCE 0) +FLAGS.SILENT (\\Seen)") == Store(
        one, "+", True, ("\\Seen",), unchanged_since=0
    )
    for refused in [b"a STORE 1 FLAGS", b"a STORE 1 XFLAGS (a)", b"a STORE 1 FLAGS (\\*)",
                    b"a STORE 1 (FOO 1) FLAGS (a)", b"a STORE 1 FLAGS.LOUD (a)"]:  # fmt: skip
        assert isinstance(parse(refused), BadRequest), refused


@pytest.mark.parametrize("name", ["COPY", "MOVE"])
def test_copy_move_uid(name: str) -> None:
    request = parse(b"a uid " + name.encode() + b" 1:3 &ZeVnLIqe-")
    assert request == Request("a", name, CopyMove(SequenceSet(((1, 3),)), "日本語"), uid=True)


def test_uid_expunge_takes_a_sequence_set() -> None:
    assert parse(b"a UID EXPUNGE 1:3,5") == Request(
        "a", "EXPUNGE", SequenceSet(((1, 3), (5, 5))), uid=True
    )
    assert isinstance(parse(b"a UID EXPUNGE"), BadRequest)


# --- SEARCH ---------------------------------------------------------------------------------


def search(text: bytes) -> Search:
    result = args(b"a SEARCH " + text)
    assert isinstance(result, Search)
    return result


def key(text: bytes) -> SearchKey:
    top = search(text).key
    assert top.name == "AND" and isinstance(top.value, tuple) and len(top.value) == 1
    return top.value[0]


def flag(name: str) -> SearchKey:
    return SearchKey("FLAG", name)


def test_search_flag_keys() -> None:
    for word in ["ANSWERED", "DELETED", "DRAFT", "FLAGGED", "SEEN"]:
        assert key(word.lower().encode()) == flag("\\" + word.capitalize())
        assert key(b"UN" + word.encode()) == SearchKey("NOT", flag("\\" + word.capitalize()))
    assert key(b"ALL") == SearchKey("ALL")
    assert key(b"RECENT") == SearchKey("RECENT")
    assert key(b"NEW") == SearchKey("AND", (SearchKey("RECENT"), SearchKey("NOT", flag("\\Seen"))))
    assert key(b"OLD") == SearchKey("NOT", SearchKey("RECENT"))
    assert key(b"KEYWORD $Work") == SearchKey("KEYWORD", "$Work")
    assert key(b"UNKEYWORD $Work") == SearchKey("NOT", SearchKey("KEYWORD", "$Work"))


def test_search_string_date_and_size_keys() -> None:
    for word in ["BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO"]:
        assert key(f'{word} "giấy mời"'.encode()) == SearchKey(word, "giấy mời")
    assert key(b"HEADER Message-ID {5}\r\n<a@b>") == SearchKey("HEADER", ("Message-ID", "<a@b>"))
    for word in ["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"]:
        assert key(word.encode() + b" 1-Feb-2026") == SearchKey(word, date(2026, 2, 1))
        assert key(word.encode() + b' "01-feb-2026"') == SearchKey(word, date(2026, 2, 1))
    assert key(b"LARGER 10000") == SearchKey("LARGER", 10000)
    assert key(b"SMALLER 5") == SearchKey("SMALLER", 5)
    assert key(b"OLDER 3600") == SearchKey("OLDER", 3600)
    assert key(b"YOUNGER 60") == SearchKey("YOUNGER", 60)
    assert key(b"MODSEQ 7") == SearchKey("MODSEQ", 7)
    assert key(b'MODSEQ "/flags/\\\\draft" all 620162338') == SearchKey("MODSEQ", 620162338)


def test_search_structure() -> None:
    assert key(b"1:3,*") == SearchKey("SEQUENCE", SequenceSet(((1, 3), (STAR, STAR))))
    assert key(b"$") == SearchKey("SEQUENCE", SequenceSet((), saved=True))
    assert key(b"UID 5:*") == SearchKey("UID", SequenceSet(((5, STAR),)))
    assert key(b"NOT SEEN") == SearchKey("NOT", flag("\\Seen"))
    assert key(b"OR SEEN (FROM a TO b)") == SearchKey(
        "OR",
        (flag("\\Seen"), SearchKey("AND", (SearchKey("FROM", "a"), SearchKey("TO", "b")))),
    )
    assert search(b"SEEN FROM x").key == SearchKey("AND", (flag("\\Seen"), SearchKey("FROM", "x")))


def test_search_charset_and_return() -> None:
    assert search(b"ALL") == Search(SearchKey("AND", (SearchKey("ALL"),)))
    assert search(b"CHARSET utf-8 ALL").charset == "UTF-8"
    latin = search(b'CHARSET ISO-8859-1 SUBJECT "caf\xe9"')
    assert latin.key.value == (SearchKey("SUBJECT", "café"),)
    assert search(b"RETURN (MIN MAX ALL COUNT SAVE) ALL").result_options == (
        "MIN", "MAX", "ALL", "COUNT", "SAVE",
    )  # fmt: skip
    assert search(b"RETURN () CHARSET UTF-8 ALL").result_options == ()
    assert parse(b"a SEARCH CHARSET X-NONE ALL") == BadRequest(
        "a", "Unsupported charset", code="BADCHARSET"
    )
    assert bad(b"a SEARCH CHARSET hex ALL").code == "BADCHARSET"
    assert bad(b"a SEARCH CHARSET {2+}\r\na\x00 ALL").code == "BADCHARSET"
    assert bad(b"a SEARCH CHARSET undefined TEXT x").text == "Invalid UNDEFINED in a string"
    assert isinstance(parse(b"a SEARCH RETURN (FOO) ALL"), BadRequest)
    assert isinstance(parse(b"a SEARCH CHARSET UTF-8"), BadRequest)


def test_uid_search() -> None:
    request = parse(b"a UID SEARCH UID 1:*")
    assert isinstance(request, Request) and request.uid and request.name == "SEARCH"


@pytest.mark.parametrize(
    "text",
    [b"", b"FOO", b"FROM", b"SINCE 32-Jan-2026", b"SINCE 1-Foo-2026", b"LARGER x", b"(SEEN",
     b"()", b"OR SEEN", b"NOT", b"OLDER 0", b"UID", b"SEEN  FROM x", b"MODSEQ \"x\" bad 1"],
)  # fmt: skip
def test_search_refusals(text: bytes) -> None:
    assert bad(b"a SEARCH " + text).tag == "a"


def test_search_nesting_is_bounded() -> None:
    assert bad(b"a SEARCH " + b"NOT " * 1000 + b"SEEN").text == "Search criteria nested too deeply"
    assert isinstance(parse(b"a SEARCH " + b"(" * 1000 + b"SEEN" + b")" * 1000), BadRequest)
    assert isinstance(parse(b"a SEARCH " + b"NOT " * 20 + b"SEEN"), Request)


# --- Fuzzing the grammar directly -------------------------------------------------------------

TOKENS = [
    b"UID ", b"FETCH ", b"SEARCH ", b"STORE ", b"APPEND ", b"LIST ", b"SELECT ", b"CHARSET ",
    b"LOGIN ", b"STATUS ", b"CREATE ", b"ID ", b"AUTHENTICATE ", b"(", b")", b"[", b"]", b"<",
    b">", b"1", b"0", b"*", b":", b",", b"$", b'"', b"\\", b"BODY", b"BINARY", b".PEEK",
    b"HEADER.FIELDS", b"NOT ", b"OR ", b"MODSEQ ", b"RETURN ", b" ", b"NIL", b"&", b"-", b"\x00",
    b"\xff", b"1-Jan-2026", b'" 1-Jan-2026 10:00:00 +0000"', b"UTF8 ", b"CHANGEDSINCE ",
    b"VANISHED", b"USE ", b"\\Seen", b"FLAGS", b"+FLAGS.SILENT ",
]  # fmt: skip
SEGMENTS = st.lists(st.sampled_from(TOKENS), max_size=20).map(b"".join)


@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(SEGMENTS, min_size=1, max_size=4),
    st.lists(st.tuples(st.binary(max_size=5), st.booleans()), max_size=3),
    st.booleans(),
)
def test_token_soup_gives_a_value_never_an_exception(
    segments: list[bytes], literals: list[tuple[bytes, bool]], utf8: bool
) -> None:
    literals = literals[: len(segments) - 1]
    segments = [b"t " + segments[0], *segments[1 : len(literals) + 1]]
    result = parse_command(segments, [Literal(*lit) for lit in literals], utf8=utf8)
    assert isinstance(result, Request | BadRequest)
