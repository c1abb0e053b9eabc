"""Framing of the client's byte stream: splits at any byte, literals, limits, pauses, fuzzing."""

from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from govmail.imap.proto.model import (
    Append,
    Authenticate,
    BadRequest,
    Continue,
    Event,
    Line,
    Login,
    MailboxArg,
    Request,
)
from govmail.imap.proto.receiver import Receiver

# One of each framing case: synchronising, non-synchronising and binary literals, MULTIAPPEND,
# bare LF, an empty line, a bad command, a literal inside a search.
SESSION = (
    b"a1 LOGIN {3}\r\njoe {6+}\r\nsecret\r\n"
    b"a2 SELECT inbox\n"
    b"\r\n"
    b'a3 APPEND Sent (\\Seen) "28-Nov-2026 14:25:31 +0700" {5}\r\nHello ~{3+}\r\n\x00\r\n\r\n'
    b"a4 UID SEARCH CHARSET UTF-8 SUBJECT {12}\r\ngi\xe1\xba\xa5y m\xe1\xbb\x9di\r\n"
    b"a5 FROB\r\n"
    b"a6 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)])\r\n"
    b"a7 LOGOUT\r\n"
)


def drain(receiver: Receiver, data: bytes) -> list[Event]:
    """Feed ``data`` and go on (as a session that always sends "+") until nothing comes."""
    events = receiver.feed(data)
    for _ in range(10_000):
        more = receiver.feed(b"")
        if not more:
            return events
        events += more
    raise AssertionError("the receiver keeps producing events from no input")


def test_whole_session_in_one_feed() -> None:
    events = drain(Receiver(), SESSION)
    assert [type(e).__name__ for e in events] == [
        "Continue", "Request", "Request", "Continue", "Request", "Continue", "Request",
        "BadRequest", "Request", "Request",
    ]  # fmt: skip
    assert events[1] == Request("a1", "LOGIN", Login("joe", "secret"))
    assert events[2] == Request("a2", "SELECT", MailboxArg("INBOX"))
    append = events[4]
    assert isinstance(append, Request) and isinstance(append.args, Append)
    assert [m.message for m in append.args.messages] == [b"Hello", b"\x00\r\n"]
    assert events[7] == BadRequest("a5", "Unknown command")


def test_split_at_every_byte_gives_the_same_events() -> None:
    expected = drain(Receiver(), SESSION)
    one_byte = Receiver()
    got: list[Event] = []
    for i in range(len(SESSION)):
        got += drain(one_byte, SESSION[i : i + 1])
    assert got == expected
    for cut in range(len(SESSION) + 1):
        receiver = Receiver()
        assert drain(receiver, SESSION[:cut]) + drain(receiver, SESSION[cut:]) == expected, cut


def test_synchronising_literal_waits_for_the_session() -> None:
    receiver = Receiver()
    assert receiver.feed(b"a LOGIN {3}\r\njoe") == [Continue("a", 3)]
    assert receiver.feed(b" x\r\n") == []  # paused until the session has sent "+"
    assert receiver.feed(b"") == [Request("a", "LOGIN", Login("joe", "x"))]


def test_reject_literal_drops_the_command() -> None:
    receiver = Receiver()
    assert receiver.feed(b"a LOGIN {3}\r\n") == [Continue("a", 3)]
    receiver.reject_literal()
    assert receiver.buffered == 0
    assert receiver.feed(b"") == []
    assert receiver.feed(b"b NOOP\r\n") == [Request("b", "NOOP")]


def test_no_invitation_for_a_literal_of_a_command_that_will_fail() -> None:
    receiver = Receiver()
    assert receiver.feed(b"{3}\r\n") == [BadRequest(None, "Missing or invalid tag")]
    assert receiver.feed(b"a FROB {3}\r\n") == [BadRequest("a", "Unknown command")]
    assert receiver.feed(b"a UID LOGIN {3}\r\n") == [BadRequest("a", "Unknown command")]
    assert receiver.feed(b"a UID COPY 1 {3}\r\n") == [Continue("a", 3)]


def test_bare_lf_and_empty_lines() -> None:
    assert drain(Receiver(), b"\r\n\na NOOP\nb NOOP\r\n") == [
        Request("a", "NOOP"),
        Request("b", "NOOP"),
    ]


def test_line_mode_after_idle_and_authenticate() -> None:
    receiver = Receiver()
    assert receiver.feed(b"a IDLE\r\nDONE\r\nb NOOP\r\n") == [Request("a", "IDLE")]
    receiver.line_mode = True
    assert receiver.feed(b"") == [Line(b"DONE"), Line(b"b NOOP")]
    receiver.line_mode = False
    receiver = Receiver()
    assert receiver.feed(b"c AUTHENTICATE PLAIN\r\nAGpvZQB4\r\n\r\n") == [
        Request("c", "AUTHENTICATE", Authenticate("PLAIN"))
    ]
    receiver.line_mode = True
    assert receiver.feed(b"") == [Line(b"AGpvZQB4"), Line(b"")]


def test_starttls_pauses_so_injected_commands_can_be_refused() -> None:
    receiver = Receiver()
    assert receiver.feed(b"a STARTTLS\r\nb LOGIN x y\r\n") == [Request("a", "STARTTLS")]
    assert receiver.buffered == len(b"b LOGIN x y\r\n")
    receiver = Receiver()
    assert receiver.feed(b"a STARTTLS\r\n") == [Request("a", "STARTTLS")]
    assert receiver.feed(b"b LOGIN x y\r\n") == []
    assert receiver.buffered == len(b"b LOGIN x y\r\n")


def test_done_arriving_before_the_session_handled_idle_is_a_line() -> None:
    receiver = Receiver()
    assert receiver.feed(b"a IDLE\r\n") == [Request("a", "IDLE")]
    assert receiver.feed(b"DONE\r\n") == []
    receiver.line_mode = True
    assert receiver.feed(b"") == [Line(b"DONE")]


def test_utf8_accept_switches_mailbox_decoding() -> None:
    receiver = Receiver()
    assert isinstance(receiver.feed('a SELECT "Thư"\r\n'.encode())[0], BadRequest)
    receiver.utf8_accept = True
    assert receiver.feed('a SELECT "Thư"\r\n'.encode()) == [
        Request("a", "SELECT", MailboxArg("Thư"))
    ]


# --- Limits ---------------------------------------------------------------------------------


def test_long_line_with_its_end_in_the_buffer() -> None:
    receiver = Receiver(max_line=100)
    events = receiver.feed(b"a LOGIN " + b"x" * 200 + b"\r\nb NOOP\r\n")
    assert events == [BadRequest("a", "Line too long"), Request("b", "NOOP")]


def test_long_line_arriving_in_pieces_is_discarded_not_buffered() -> None:
    receiver = Receiver(max_line=100)
    events = receiver.feed(b"a SEARCH ")
    for _ in range(50):
        events += receiver.feed(b"y" * 40)
        assert receiver.buffered <= 100 + 40
    events += receiver.feed(b"y\r\nb NOOP\r\n")
    assert events == [BadRequest("a", "Line too long"), Request("b", "NOOP")]


def test_long_continuation_line_counts_the_whole_command() -> None:
    receiver = Receiver(max_line=50)
    events = drain(receiver, b"a LOGIN {1+}\r\nx " + b"z" * 60 + b"\r\nb NOOP\r\n")
    assert events == [BadRequest("a", "Line too long"), Request("b", "NOOP")]


def test_too_big_synchronising_literal_is_refused_in_step() -> None:
    receiver = Receiver(max_literal=10)
    events = receiver.feed(b"a LOGIN {11}\r\nb NOOP\r\n")
    assert events == [
        BadRequest("a", "Literal too big", code="TOOBIG"),
        Request("b", "NOOP"),
    ]


def test_too_big_non_synchronising_literal_is_fatal() -> None:
    receiver = Receiver(max_literal=10)
    events = receiver.feed(b"a LOGIN {11+}\r\n0123456789A x\r\nb NOOP\r\n")
    assert events == [BadRequest("a", "Literal too big", fatal=True)]
    assert receiver.feed(b"c NOOP\r\n") == []
    assert receiver.buffered == 0


def test_append_has_its_own_limit_covering_all_messages() -> None:
    receiver = Receiver(max_literal=10, max_append_literal=100)
    receiver.appends_allowed = True  # after login
    events = drain(receiver, b"a APPEND x {60+}\r\n" + b"m" * 60 + b"\r\n")
    assert isinstance(events[0], Request)
    events = drain(receiver, b"b APPEND x {60+}\r\n" + b"m" * 60 + b" {60}\r\n")
    assert events == [BadRequest("b", "Literal too big", code="TOOBIG")]
    assert drain(receiver, b"c LOGIN {20}\r\n") == [
        BadRequest("c", "Literal too big", code="TOOBIG")
    ]


def test_pipelining_is_handed_over_in_chunks() -> None:
    receiver = Receiver(max_pipelined=3)
    data = b"".join(b"t%d NOOP\r\n" % i for i in range(10))
    sizes = [len(receiver.feed(data))]
    while batch := receiver.feed(b""):
        sizes.append(len(batch))
    assert sizes == [3, 3, 3, 1]


def test_25_mb_append_is_linear() -> None:
    size = 25 * 1024 * 1024
    message = bytes(range(256)) * (size // 256)
    receiver = Receiver()
    receiver.appends_allowed = True
    started = time.perf_counter()
    events = receiver.feed(b"a APPEND INBOX {%d+}\r\n" % size)
    for start in range(0, size, 64 * 1024):
        events += receiver.feed(message[start : start + 64 * 1024])
    events += receiver.feed(b"\r\n")
    assert receiver.buffered == 0
    elapsed = time.perf_counter() - started
    assert len(events) == 1 and isinstance(events[0], Request)
    assert isinstance(events[0].args, Append) and events[0].args.messages[0].message == message
    assert elapsed < 2.0


# --- Fuzzing --------------------------------------------------------------------------------

LIMITS = {"max_line": 200, "max_literal": 100, "max_append_literal": 300, "max_pipelined": 5}
SAMPLES = [
    *SESSION.split(b"\r\na"),
    b'a LIST (SUBSCRIBED) "" ("INBOX" "Sent*") RETURN (CHILDREN STATUS (MESSAGES))\r\n',
    b"b STORE 1:3 (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen)\r\n",
    b"c SEARCH RETURN (MIN) OR (SEEN 1:*) NOT HEADER X {2+}\r\nab SINCE 1-Jan-2026\r\n",
    b"d APPEND x UTF8 (~{2+}\r\nhi)\r\n",
    b'e ID ("a" NIL)\r\nf ENABLE UTF8=ACCEPT\r\n',
]


def check_stream(chunks: list[bytes], *, utf8: bool, reject: bool) -> None:
    receiver = Receiver(**LIMITS)
    receiver.utf8_accept = utf8
    bound = LIMITS["max_line"] + LIMITS["max_append_literal"] + 2
    for chunk in chunks:
        events = receiver.feed(chunk)
        for _ in range(10_000):
            for event in events:
                assert isinstance(event, Request | BadRequest | Continue | Line)
                if isinstance(event, Continue) and reject:
                    receiver.reject_literal()
            if not events:
                break
            events = receiver.feed(b"")
        else:
            raise AssertionError("no end to the events")
        assert receiver.buffered <= bound


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=1500), st.lists(st.integers(0, 2000), max_size=8), st.booleans(),
       st.booleans())  # fmt: skip
def test_random_bytes_never_break_the_receiver(
    data: bytes, cuts: list[int], utf8: bool, reject: bool
) -> None:
    check_stream(split(data, cuts), utf8=utf8, reject=reject)


@st.composite
def mutated_commands(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(SAMPLES), min_size=1, max_size=6))))
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from(b' ()[]{}<>"\\~+*%$:,.0123456789\r\n\x00\xffAZaz'))
        if action == "insert":
            data[at:at] = bytes([byte])
        elif at < len(data):
            data[at : at + 1] = bytes([byte]) if action == "replace" else b""
    return bytes(data)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_commands(), st.lists(st.integers(0, 2000), max_size=5), st.booleans(),
       st.booleans())  # fmt: skip
def test_mutated_commands_never_break_the_receiver(
    data: bytes, cuts: list[int], utf8: bool, reject: bool
) -> None:
    check_stream(split(data, cuts), utf8=utf8, reject=reject)


def test_before_login_append_gets_no_more_room_than_any_command() -> None:
    receiver = Receiver(max_literal=10, max_append_literal=100)
    assert drain(receiver, b"a APPEND x {60}\r\n") == [
        BadRequest("a", "Literal too big", code="TOOBIG")
    ]
    events = drain(receiver, b"b APPEND x {60+}\r\n")
    assert events == [BadRequest("b", "Literal too big", fatal=True)]
