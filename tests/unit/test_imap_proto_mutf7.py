"""Modified UTF-7 mailbox names: RFC examples, Vietnamese, round trips, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govmail.imap.proto.mutf7 import decode_mailbox, encode_mailbox

NAMES = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Thư đã gửi", "Th&AbA- &AREA4w- g&Hu0-i"),
        ("a&b", "a&-b"),
        ("&", "&-"),
        ("", ""),
        ("INBOX", "INBOX"),
        ("😀", "&2D3eAA-"),
    ],
)
def test_known_names(name: str, wire: str) -> None:
    assert encode_mailbox(name) == wire
    assert decode_mailbox(wire) == name


@pytest.mark.parametrize(
    "wire",
    [
        "&",  # unterminated
        "&Jjo",  # unterminated run
        "&Jjo!-",  # not base64
        "&AGE-",  # "a" must be written directly
        "&U,BTFw-&ZeVnLIqe-",  # two runs side by side
        "&U,BTFx-",  # padding bits set
        "&AAA-",  # NUL
        "&2D0-",  # a lone surrogate
        "&A-",  # a run that is not whole UTF-16
        "é",  # 8-bit
        "a\tb",  # a control character
    ],
)
def test_invalid_wire_forms(wire: str) -> None:
    with pytest.raises(ValueError):
        decode_mailbox(wire)


@given(NAMES)
def test_round_trip(name: str) -> None:
    wire = encode_mailbox(name)
    assert wire.isascii()
    assert decode_mailbox(wire) == name
    assert encode_mailbox(decode_mailbox(wire)) == wire


@given(st.text(alphabet=st.sampled_from("&-+,/ABaz09é\x00 "), max_size=30))
def test_decode_accepts_only_canonical_forms(wire: str) -> None:
    try:
        name = decode_mailbox(wire)
    except ValueError:
        return
    assert encode_mailbox(name) == wire
