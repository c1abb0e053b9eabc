"""Vietnamese syllable check: is a word a well-formed Vietnamese syllable, how much of a text is."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["has_vietnamese_marks", "is_vietnamese_syllable", "vietnamese_share"]


# --- Orthography ------------------------------------------------------------------------
def _listed(words: str) -> tuple[str, ...]:
    return tuple(words.split())


# Written onsets (phụ âm đầu); "" is a syllable that starts with its vowel.
_ONSETS: Final = (
    "",
    "b",
    "c",
    "ch",
    "d",
    "đ",
    "g",
    "gh",
    "gi",
    "h",
    "k",
    "kh",
    "l",
    "m",
    "n",
    "ng",
    "ngh",
    "nh",
    "p",
    "ph",
    "qu",
    "r",
    "s",
    "t",
    "th",
    "tr",
    "v",
    "x",
)

# Rhymes (vần) written without tone, whose vowel is the nucleus: no medial o/u glide.
_PLAIN_RHYMES: Final = _listed(
    "a ai ao au ay ac ach am an ang anh ap at "
    "ăc ăm ăn ăng ăp ăt "
    "âu ây âc âm ân âng âp ât "
    "e eo ec em en eng ep et "
    "ê êu êch êm ên ênh êp êt "
    "i ia iu ich im in inh ip it "
    "o oi oc om on ong op ot oong ooc "
    "ô ôi ôc ôm ôn ông ôp ôt "
    "ơ ơi ơm ơn ơp ơt "
    "u ui ua uc um un ung up ut "
    "ư ưi ưu ưa ưc ưng ưt "
    "y "
    "uôi uôc uôm uôn uông uôt "
    "ươi ươu ươc ươm ươn ương ươp ươt"
)
# iê after a consonant (tiên, kiếp), yê with no onset (yên, yêu): same rhymes, two spellings.
_IE_RHYMES: Final = _listed("iêu iêc iêm iên iêng iêp iêt")
_YE_RHYMES: Final = _listed("yêu yêm yên yêng yêt")
# Rhymes with a medial glide written o or u (hoa, khoẻ, tuân, thuý, khuyên).
_MEDIAL_RHYMES: Final = _listed(
    "oa oai oay oao oac oach oam oan oang oanh oap oat "
    "oăc oăm oăn oăng oăt "
    "oe oeo oem oen oet "
    "uân uâng uât uây "
    "uê uên uêch uênh "
    "uy uya uyu uych uyn uynh uyt uyên uyêt "
    "uơ"
)

# gh, ngh and k are written only before e, ê, i (k also before y); c, g, ng never are.
_FRONT_ONLY: Final = frozenset({"gh", "ngh"})
_NOT_FRONT: Final = frozenset({"c", "g", "ng"})
# Labials and c take no medial glide (c + /w/ is written qu); gh, ngh, k never start one.
_NO_MEDIAL: Final = frozenset({"b", "c", "gh", "k", "m", "ngh", "p", "ph", "v", "gi", "qu"})

_STOP_FINALS: Final = ("p", "t", "c", "ch")
_VOWELS: Final = "aăâeêioôơuưy"


def _front(rhyme: str) -> bool:
    return rhyme[0] in "eêiy"


def _allowed(onset: str, rhyme: str) -> bool:
    if onset in _FRONT_ONLY:
        return rhyme[0] in "eêi"
    if onset == "k":
        return _front(rhyme)
    if onset in _NOT_FRONT:
        return not _front(rhyme)
    return True


def _tone_places(rhyme: str) -> set[int]:
    """Where the tone mark may sit in a rhyme: on the vowel with a vowel mark (the ơ of
    ươ), on the last vowel before a final consonant, on the middle one of three, on
    either of oa, oe, uy (hóa and hoá: both spellings are in use), else on the first."""
    count = len(rhyme) - len(rhyme.lstrip(_VOWELS))
    vowels, final = rhyme[:count], rhyme[count:]
    if "ươ" in vowels:
        return {vowels.index("ươ") + 1}
    marked = [index for index, vowel in enumerate(vowels) if vowel in "ăâêôơư"]
    if marked:
        return {marked[0]}
    if count == 1:
        return {0}
    if vowels == "oo" or (vowels in ("oa", "oe", "uy") and not final):
        return {0, 1}
    if final:
        return {count - 1}
    return {1} if count == 3 else {0}


def _toneless_syllables() -> dict[str, frozenset[int]]:
    """Every written syllable, tone left out (with its vowel letters â ă ê ô ơ ư and đ),
    and the indexes of the letters its tone mark may sit on."""
    places: dict[str, set[int]] = {}

    def add(written: str, offset: int, rhyme: str) -> None:
        places.setdefault(written, set()).update(offset + i for i in _tone_places(rhyme))

    for onset in _ONSETS:
        if onset == "qu":
            continue  # below: qu is itself c + medial u
        rhymes = list(_PLAIN_RHYMES)
        rhymes += _YE_RHYMES if onset == "" else _IE_RHYMES
        if onset not in _NO_MEDIAL:
            rhymes += _MEDIAL_RHYMES
        if onset == "gi":
            # gi + i… is written with one i: gì, gìn, giếng, giết, giễu.
            for rhyme in rhymes:
                if rhyme.startswith("i") and rhyme != "ia":  # gia is gi + a: già
                    add("g" + rhyme, 1, rhyme)
            rhymes = [r for r in rhymes if r[0] not in "iy"]
        for rhyme in rhymes:
            if _allowed(onset, rhyme):
                add(onset + rhyme, len(onset), rhyme)
    # qu + the rhyme of the medial glide without its glide letter (qua, quân, quê, quyết),
    # quốc, and the older spellings with i for y (quí, quít).
    for rest in [r[1:] for r in _MEDIAL_RHYMES] + ["ôc", "i", "it", "inh", "au", "ao"]:
        if rest:
            add("qu" + rest, 2, rest)
    return {written: frozenset(indexes) for written, indexes in places.items()}


# The folded-letter spelling of the vowel letters, for words typed without diacritics.
_FOLD_LETTERS: Final = str.maketrans("ăâđêôơư", "aadeoou")

_TONELESS: Final = _toneless_syllables()
_FOLDED: Final = frozenset(s.translate(_FOLD_LETTERS) for s in _TONELESS)

# --- Letters and tones ------------------------------------------------------------------
# Combining tone marks in the order sắc, huyền, hỏi, ngã, nặng (tone numbers 1..5).
_TONE_MARKS: Final = ("\u0301", "\u0300", "\u0309", "\u0303", "\u0323")
_SAC, _NANG = 1, 5

# Precomposed lower-case toned vowel → (vowel letter without tone, tone number).
_TONED: Final[dict[str, tuple[str, int]]] = {
    unicodedata.normalize("NFC", vowel + mark): (vowel, number)
    for vowel in _VOWELS
    for number, mark in enumerate(_TONE_MARKS, start=1)
}
_STRIP_TONE: Final = str.maketrans({toned: base for toned, (base, _) in _TONED.items()})

# Every letter of the Vietnamese alphabet that ASCII lacks, both cases, NFC.
_MARKED_LOWER: Final = "ăâđêôơư" + "".join(_TONED)
_MARKED: Final = _MARKED_LOWER + _MARKED_LOWER.upper()
_MARKED_RE: Final = re.compile("[" + _MARKED + "]")

# Letter runs: digits, underscores and punctuation separate words and are not words.
_WORD_RE: Final = re.compile(r"[^\W\d_]+")

# What vietnamese_share learnt of each whitespace-separated token (a word with its
# punctuation, "số,"): its letter-word count << 32 | how many are syllables. A province's
# mail reuses a few thousand tokens, and a dictionary lookup per token is what keeps a
# 4 KB text well under a millisecond (a regex scan of the text alone costs ~0.2 ms).
# Bounded: when full it starts again from the seed (the syllables without diacritics).
_WORD_BITS: Final = 32
_VALID_MASK: Final = (1 << _WORD_BITS) - 1
_CACHE_LIMIT: Final = 100_000
_SEED: Final[dict[str, int]] = dict.fromkeys(_FOLDED, (1 << _WORD_BITS) | 1)
_token_scores: dict[str, int] = dict(_SEED)


def is_vietnamese_syllable(word: str) -> bool:
    """Whether ``word`` (any case, NFC or NFD, with or without diacritics) is a syllable
    Vietnamese orthography allows: an onset and a rhyme that may follow it, at most one
    tone mark, and after a stop final (-p -t -c -ch) only the sắc or nặng tone.

    A word without diacritics is judged by its letters alone ("nguyen" is a syllable,
    "meeting" is not); a word with some diacritics is judged as typed, so "kêt" (no tone
    before -t) is not a syllable. The tone must sit on the vowel that carries it ("tẻo",
    not "teỏ"); for oa, oe, uy both the older and the newer place pass ("hòa", "hoà").
    """
    if word.isascii():
        return word.lower() in _FOLDED
    if not unicodedata.is_normalized("NFC", word):
        word = unicodedata.normalize("NFC", word)
    return _marked_syllable(word.lower())


def _marked_syllable(lower: str) -> bool:
    toneless = lower.translate(_STRIP_TONE)
    places = _TONELESS.get(toneless)
    if places is None:
        return False
    toned = [index for index, char in enumerate(lower) if char in _TONED]
    if not toned:
        # No tone (thanh ngang): a stop final needs one.
        return not toneless.endswith(_STOP_FINALS)
    if len(toned) > 1 or toned[0] not in places:
        return False
    tone = _TONED[lower[toned[0]]][1]
    return not toneless.endswith(_STOP_FINALS) or tone in (_SAC, _NANG)


def _score_token(token: str) -> int:
    words = [token] if token.isalpha() else _WORD_RE.findall(token)
    valid = 0
    for word in words:
        valid += word in _FOLDED if word.isascii() else _marked_syllable(word)
    return (len(words) << _WORD_BITS) | valid


def vietnamese_share(text: str) -> float:
    """The share (0.0–1.0) of the letter words of ``text`` that are Vietnamese syllables;
    0.0 when ``text`` has no letter word. Digits and punctuation are not words, and they
    split words ("UBND-KT" is two words)."""
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        # In NFD a combining mark is not a word character and would split "Việt" in two.
        text = unicodedata.normalize("NFC", text)
    tokens = text.lower().split()
    scores: dict[str, int] = {}
    known = _token_scores.get
    for token in set(tokens):
        score = known(token)
        if score is None:
            score = _score_token(token)
            if len(_token_scores) >= _CACHE_LIMIT:
                _token_scores.clear()
                _token_scores.update(_SEED)
            _token_scores[token] = score
        scores[token] = score
    total = sum(map(scores.__getitem__, tokens))
    words = total >> _WORD_BITS
    return (total & _VALID_MASK) / words if words else 0.0


def has_vietnamese_marks(text: str) -> bool:
    """Whether ``text`` has a letter of the Vietnamese alphabet beyond ASCII (ă â đ ê ô ơ ư,
    any case) or a vowel with a Vietnamese tone mark; NFC and NFD alike. Shared letters
    count too: the "é" of French "café" is the sắc tone on e."""
    if text.isascii():
        return False
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return _MARKED_RE.search(text) is not None
