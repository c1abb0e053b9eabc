"""Vietnamese text rules: diacritics-insensitive folding, stored name form, name splitting."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from govmail.core.errors import InvalidInput

__all__ = ["NameParts", "fold", "normalize_name", "split_name"]

# Invisible characters that arrive with names pasted from Word, PDFs and web forms; they
# would make two visually identical names (or search keys) compare unequal.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")

# Byte 0xD0 is Đ in cp1258 but Ð (Icelandic eth) in cp1252, so mis-decoded Vietnamese data
# carries the eth; it looks right on screen but lower-cases to ð, not đ. U+0110/U+0111 have
# no canonical decomposition, so dropping combining marks leaves them: map them explicitly.
# (Plain str.replace: str.translate with a table is several times slower on short names.)
_DYET_LOWER = "\u0111"
_ETH_UPPER = "\u00d0"
_ETH_LOWER = "\u00f0"

# Letters are accepted from any script here; whether they can become an address is the
# naming module's concern. Both apostrophes occur in ethnic-minority names (H'Hen Niê).
_NAME_PUNCTUATION = frozenset(" -'\u2019")
_NAME_PUNCTUATION_RE = re.compile("[ \\-'\u2019]")


def fold(text: str) -> str:
    """Return the diacritics-insensitive, lower-case form of ``text`` for search keys.

    "Nguyễn Thị Thuỷ", its NFD form, "NGUYỄN THỊ THỦY" and "Nguyen  Thi Thuy" all give
    "nguyen thi thuy". Digits and punctuation are kept; whitespace runs become one space.
    The result is a fixed point: ``fold(fold(s)) == fold(s)``.
    """
    # NFKC first so full-width letters and no-break spaces become ordinary ones; case-fold
    # before NFD because case-folding itself can produce combining marks (İ → i + U+0307).
    folded = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text)).casefold()
    decomposed = unicodedata.normalize("NFD", folded)
    # No Mn character lies below U+0300; the comparison skips the lookup for ASCII letters.
    bare = "".join([c for c in decomposed if c < "\u0300" or unicodedata.category(c) != "Mn"])
    if not bare.isascii():
        # Dropping a mark can leave the spacing marks around it out of canonical order,
        # which the next NFKC would fix; fix it now so that fold stays a fixed point.
        bare = unicodedata.normalize("NFD", bare)
    # After casefold only the lower-case forms of Đ and Ð are left.
    return " ".join(bare.replace(_DYET_LOWER, "d").replace(_ETH_LOWER, "d").split())


def normalize_name(text: str) -> str:
    """Return a person's or agency's name in the form it is stored: NFC, single spaces.

    Capitalisation is kept as the user typed it; the eth look-alikes Ð/ð become Đ/đ and
    invisible characters (zero-width spaces and joiners, BOM, soft hyphen) are removed.
    Control and format characters (NUL, C1 controls, bidi overrides) become spaces: they
    are never part of a name, PostgreSQL refuses NUL and spreadsheets refuse controls.
    """
    cleaned = (
        _INVISIBLE.sub("", text).replace(_ETH_UPPER, "\u0110").replace(_ETH_LOWER, _DYET_LOWER)
    )
    if not cleaned.isprintable():  # rare: look at each character only then
        cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in cleaned)
    return " ".join(unicodedata.normalize("NFC", cleaned).split())


@dataclass(frozen=True)
class NameParts:
    """A full name split by position: họ (surname), tên lót (middle), tên (given).

    ``middle`` is "" for a two-word name and may hold several space-separated words.
    Compound surnames (Tôn Thất, Âu Dương) cannot be recognised from the string, so the
    split is a proposal an operator may correct.
    """

    surname: str
    middle: str
    given: str


def split_name(full_name: str) -> NameParts:
    """Split a full name into surname, middle and given name after ``normalize_name``.

    Raises InvalidInput when the name has fewer than two words, or holds anything but
    letters, spaces, hyphens and apostrophes.
    """
    name = normalize_name(full_name)
    char = _first_invalid_name_char(name)
    if char is not None:
        raise InvalidInput(
            f"Họ và tên chỉ được gồm chữ cái, dấu cách, dấu gạch nối và dấu nháy; "
            f"ký tự {char!r} không hợp lệ: '{name}'",
            f"A full name may hold only letters, spaces, hyphens and apostrophes; "
            f"character {char!r} is not allowed: '{name}'",
            name=name,
            character=char,
        )
    words = name.split(" ") if name else []
    if len(words) < 2:
        raise InvalidInput(
            f"Họ và tên phải có ít nhất hai từ (họ và tên): '{name}'",
            f"A full name needs at least two words (surname and given name): '{name}'",
            name=name,
        )
    for word in words:
        if not any(c.isalpha() for c in word):
            raise InvalidInput(
                f"Mỗi từ trong họ và tên phải có chữ cái; từ '{word}' không có: '{name}'",
                f"Every word of a full name needs a letter; '{word}' has none: '{name}'",
                name=name,
                word=word,
            )
    return NameParts(surname=words[0], middle=" ".join(words[1:-1]), given=words[-1])


def _first_invalid_name_char(name: str) -> str | None:
    # The C-level isalpha() settles nearly every name at once; the scan finds the culprit.
    if _NAME_PUNCTUATION_RE.sub("", name).isalpha():
        return None
    for char in name:
        # NFC leaves a combining mark alone when no precomposed letter exists for the pair.
        is_mark = unicodedata.category(char).startswith("M")
        if not (char.isalpha() or char in _NAME_PUNCTUATION or is_mark):
            return char
    return None


def ascii_vietnamese(text: str) -> str:
    """'Hộp thư đầy' → 'Hop thu day': readable Vietnamese in plain ASCII, for protocol
    texts that must be ASCII (SMTP without SMTPUTF8, IMAP without UTF8=ACCEPT)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    stripped = "".join(
        c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)
    )
    return stripped.encode("ascii", "replace").decode("ascii")
