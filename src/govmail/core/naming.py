"""Mailbox address naming under the regulation (R3–R5): validation, regulation forms, proposals."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from govmail.core.errors import InvalidInput
from govmail.core.vietnamese import fold, normalize_name, split_name

__all__ = [
    "DEFAULT_RESERVED",
    "MAX_LOCAL_PART",
    "agency_local_part",
    "personal_local_part",
    "propose_agency_abbreviation",
    "propose_personal_addresses",
    "validate_local_part",
]

# RFC 5321 §4.5.3.1.1: the local part of an address is at most 64 octets.
MAX_LOCAL_PART = 64

# Local parts nobody may own. Mail to these names reaches whoever holds them, so an
# official holding one could read mail meant for the operators or impersonate them:
# - RFC 5321/2142 role addresses that other mail systems and people write to blindly
#   (postmaster, abuse, hostmaster, webmaster, security, noc, info, support, ...);
# - names mail software itself sends from or receives at (mailerdaemon, noreply,
#   bounce(s), dmarc reports), which a mail server's own aliases must keep;
# - names that look like the system or its operators (admin, root, system, and the
#   Vietnamese ones: trungtam = "the centre", quantri = "administration", hotro =
#   "support").
# No entry may be a plausible regulation form (a unit test checks): "dkim" is left out on
# purpose because it is the address of Đỗ Kim or Đặng Kim.
# Hyphenated names (mailer-daemon, no-reply) are not listed: validate_local_part already
# refuses the hyphen.
DEFAULT_RESERVED: frozenset[str] = frozenset(
    {
        # RFC 2142 mailbox names for common services, roles and functions
        "abuse",
        "ftp",
        "hostmaster",
        "info",
        "marketing",
        "news",
        "noc",
        "postmaster",
        "sales",
        "security",
        "support",
        "usenet",
        "uucp",
        "webmaster",
        "www",
        # mail software and protocol names
        "bounce",
        "bounces",
        "dmarc",
        "donotreply",
        "imap",
        "mail",
        "mailerdaemon",
        "noreply",
        "pop",
        "pop3",
        "smtp",
        # the system and its operators
        "admin",
        "administrator",
        "hotro",
        "nobody",
        "quantri",
        "root",
        "system",
        "trungtam",
    }
)

_LOCAL_PART_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._")
_VALID_LOCAL_PART = re.compile(r"[a-z0-9](?:[a-z0-9._]*[a-z0-9])?")
_NOT_ASCII_ALNUM = re.compile(r"[^a-z0-9]")

# Numbered proposals stop here so that a caller whose is_taken answers yes to everything
# still gets an answer; 20,000 simulated officials gave at most 32 holders of one form.
_MAX_NUMBER = 9999

# "Ủy ban nhân dân"/"UBND" + level word + place: the regulation names such a committee
# after its place alone (UBND huyện Cam Lâm → cl). Level words are folded word tuples,
# longest first so that "thị xã" wins over "xã".
_COMMITTEE_PREFIXES: tuple[tuple[str, ...], ...] = (("uy", "ban", "nhan", "dan"), ("ubnd",))
_LEVEL_WORDS: tuple[tuple[str, ...], ...] = (
    ("thanh", "pho"),
    ("thi", "xa"),
    ("thi", "tran"),
    ("dac", "khu"),
    ("tinh",),
    ("huyen",),
    ("quan",),
    ("xa",),
    ("phuong",),
)

# Hyphens and apostrophes inside a name (H'Hen Niê) have no place in an address.
_NAME_PUNCTUATION = re.compile("[-'\u2019\u02bc]")

# "và" (and) carries no letter in agency abbreviations: Sở Thông tin và Truyền thông → stttt.
_SKIPPED_AGENCY_WORDS = frozenset({"va"})


def validate_local_part(local: str, reserved: frozenset[str] = DEFAULT_RESERVED) -> str:
    """Return ``local`` stripped and lower-cased if it is a valid address local part.

    Valid means ASCII a-z, 0-9, "." and "_" only, a letter or digit at both ends, no
    "..", 1 to MAX_LOCAL_PART characters and not in ``reserved`` (lower-case entries).
    Raises InvalidInput naming the first rule broken.
    """
    value = local.strip().lower()
    if not value:
        raise InvalidInput(
            "Tên hộp thư (phần trước @) không được để trống",
            "The mailbox name (the part before @) must not be empty",
            local_part=local,
        )
    for char in value:
        if char not in _LOCAL_PART_CHARS:
            raise InvalidInput(
                f"Tên hộp thư '{value}' có ký tự không hợp lệ {char!r}: chỉ dùng chữ "
                f"thường không dấu a-z, chữ số 0-9, dấu chấm và dấu gạch dưới",
                f"Mailbox name '{value}' has the invalid character {char!r}: only a-z, "
                f"0-9, '.' and '_' are allowed",
                local_part=value,
                character=char,
            )
    if len(value) > MAX_LOCAL_PART:
        raise InvalidInput(
            f"Tên hộp thư '{value}' dài {len(value)} ký tự, tối đa {MAX_LOCAL_PART}",
            f"Mailbox name '{value}' is {len(value)} characters long; the maximum is "
            f"{MAX_LOCAL_PART}",
            local_part=value,
        )
    if not (value[0].isalnum() and value[-1].isalnum()):
        raise InvalidInput(
            f"Tên hộp thư '{value}' phải bắt đầu và kết thúc bằng chữ cái hoặc chữ số",
            f"Mailbox name '{value}' must start and end with a letter or a digit",
            local_part=value,
        )
    if ".." in value:
        raise InvalidInput(
            f"Tên hộp thư '{value}' không được có hai dấu chấm liền nhau",
            f"Mailbox name '{value}' must not contain two dots in a row",
            local_part=value,
        )
    if value in reserved:
        raise InvalidInput(
            f"Tên hộp thư '{value}' được dành riêng cho hệ thống, không cấp cho ai",
            f"Mailbox name '{value}' is reserved for the system and cannot be issued",
            local_part=value,
        )
    return value


def personal_local_part(full_name: str) -> str:
    """Return the regulation form (R5) of a person's address: "Lê Đức Phương" → "ldphuong".

    The initial of the surname and of each middle word, then the whole given name, folded
    to a-z. Raises InvalidInput for names split_name refuses, for letters that have no
    unaccented Latin form, and when the result is not a valid local part.
    """
    words = _address_words(full_name)
    return validate_local_part(_initials(words[:-1]) + words[-1], reserved=frozenset())


def propose_agency_abbreviation(name: str) -> str:
    """Propose an agency's abbreviation (R4) from its full name; the operator confirms it.

    Initials of the words without "và"; a word written in capitals (UBND, HĐND) gives all
    its letters and a number all its digits. A people's committee of a place gives the
    initials of the place: "Ủy ban nhân dân huyện Cam Lâm" → "cl". Raises InvalidInput
    when the name yields no valid local part.
    """
    normalized = normalize_name(name)
    # In a name written entirely in capitals (letterheads) capitals say nothing about
    # which words are acronyms, so every word gives its initial.
    acronyms_marked = any(c.islower() for c in normalized)
    keys = _committee_place(normalized, acronyms_marked) or [
        _agency_word_key(word, acronyms_marked)
        for word in normalized.split()
        if _ascii_letters(word) not in _SKIPPED_AGENCY_WORDS
    ]
    abbreviation = "".join(keys)
    if not abbreviation:
        raise InvalidInput(
            f"Không đề xuất được tên viết tắt từ tên cơ quan '{normalized}'",
            f"No abbreviation can be proposed from the agency name '{normalized}'",
            name=normalized,
        )
    return validate_local_part(abbreviation, reserved=frozenset())


def agency_local_part(abbr: str, parent_code: str | None) -> str:
    """Return an agency's local part (R4): ``abbr``, or ``abbr_parent`` under a parent.

    "pvhtt" under "cl" → "pvhtt_cl". Raises InvalidInput if the result is not a valid
    local part; reserved names are the caller's concern.
    """
    local = abbr.strip() if parent_code is None else f"{abbr.strip()}_{parent_code.strip()}"
    return validate_local_part(local, reserved=frozenset())


def propose_personal_addresses(
    full_name: str,
    agency_abbrs: Sequence[str],
    is_taken: Callable[[str], bool],
    limit: int = 5,
    reserved: frozenset[str] = DEFAULT_RESERVED,
) -> list[str]:
    """Return up to ``limit`` free local parts for a person, best first (R5).

    Order: the regulation form; that form with each agency abbreviation appended
    ("nvnguyen_ttr", abbreviations in the order given); middle words spelled out from the
    last one backwards, then the surname too ("ntminhkhai", "nthiminhkhai",
    "nguyenthiminhkhai"); then numbered forms from 2 ("ntmkhai2", "ntmkhai3", ...).
    Taken, reserved, invalid and too-long candidates are skipped, never shortened; the
    same arguments always give the same list. ``is_taken`` is called only for candidates
    that could be proposed, and only until ``limit`` are found. Fewer than ``limit`` come
    back only when numbered forms up to 9999 are taken too. Raises InvalidInput for a
    name personal_local_part refuses.
    """
    words = _address_words(full_name)
    proposals: list[str] = []
    if limit <= 0:
        return proposals
    seen: set[str] = set()
    for candidate in _personal_candidates(words, agency_abbrs):
        if (
            candidate in seen
            or len(candidate) > MAX_LOCAL_PART
            or candidate in reserved
            or not _VALID_LOCAL_PART.fullmatch(candidate)
            or ".." in candidate
        ):
            continue
        seen.add(candidate)
        if is_taken(candidate):
            continue
        proposals.append(candidate)
        if len(proposals) == limit:
            break
    return proposals


def _personal_candidates(words: list[str], agency_abbrs: Sequence[str]) -> Iterator[str]:
    # Lazy, so a free regulation form costs one is_taken call and nothing more.
    surname, middle, given = words[0], words[1:-1], words[-1]
    base = _initials(words[:-1]) + given
    yield base
    for abbr in agency_abbrs:
        yield f"{base}_{abbr.strip().lower()}"
    for spelled in range(1, len(middle) + 1):
        cut = len(middle) - spelled
        yield surname[0] + _initials(middle[:cut]) + "".join(middle[cut:]) + given
    yield "".join(words)
    for number in range(2, _MAX_NUMBER + 1):
        yield f"{base}{number}"


def _address_words(full_name: str) -> list[str]:
    """Split a name and fold each word to a-z, refusing letters that do not fold."""
    parts = split_name(full_name)
    words = [parts.surname, *parts.middle.split(), parts.given]
    # One fold for the whole name is the fast path; compatibility characters that NFKC
    # splits into several words send us back to folding word by word.
    whole = fold(" ".join(words)).split(" ")
    folded_words = whole if len(whole) == len(words) else [fold(word) for word in words]
    folded: list[str] = []
    for word, folded_word in zip(words, folded_words, strict=True):
        letters = _NAME_PUNCTUATION.sub("", folded_word)
        stray = _NOT_ASCII_ALNUM.search(letters)
        if stray is not None or not letters:
            char = stray.group() if stray is not None else word
            raise InvalidInput(
                f"Không chuyển được {char!r} trong '{word}' thành chữ không dấu a-z để "
                f"đặt địa chỉ thư",
                f"{char!r} in '{word}' has no unaccented a-z form for an address",
                name=normalize_name(full_name),
                word=word,
            )
        folded.append(letters)
    return folded


def _initials(words: Sequence[str]) -> str:
    return "".join(word[0] for word in words)


def _ascii_letters(word: str) -> str:
    return _NOT_ASCII_ALNUM.sub("", fold(word))


def _agency_word_key(word: str, acronyms_marked: bool) -> str:
    """What one word of an agency name adds to its abbreviation ("" for punctuation)."""
    key = _ascii_letters(word)
    if not key:
        return ""
    if key.isdigit():
        return key
    letters = [c for c in word if c.isalpha()]
    if acronyms_marked and len(letters) >= 2 and all(c.isupper() for c in letters):
        return key
    return key[0]


def _committee_place(name: str, acronyms_marked: bool) -> list[str]:
    """The place-name keys of a people's committee name, or [] for any other name."""
    words = name.split()
    folded = [_ascii_letters(word) for word in words]
    for prefix in _COMMITTEE_PREFIXES:
        if tuple(folded[: len(prefix)]) != prefix:
            continue
        rest = len(prefix)
        for level in _LEVEL_WORDS:
            if tuple(folded[rest : rest + len(level)]) != level:
                continue
            place_start = rest + len(level)
            keys = [_agency_word_key(word, acronyms_marked) for word in words[place_start:]]
            keys = [key for key in keys if key]
            # "UBND Phường 12" → "p12": digits alone make a poor, clash-prone address.
            if keys and all(key.isdigit() for key in keys):
                keys.insert(0, _initials(level))
            return keys
    return []
