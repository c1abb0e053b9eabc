"""Mailbox passwords: argon2id hashes and random initial passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError

from govmail.core.errors import InvalidInput

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile
# For the random passwords the centre issues (about 81 bits, changed at first login):
# key stretching adds nothing to a secret that cannot be guessed, and a 200-person
# Mẫu 01 would otherwise spend ~30 s of CPU hashing. Verification reads the parameters
# from the hash itself, so both kinds verify the same way.
_issued_hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
# No look-alikes (0/O, 1/l/I) because initial passwords are read out or printed on paper.
_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
MIN_LENGTH = 8


def generate_initial_password(length: int = 14) -> str:
    """A random password of about 81 bits, to be changed at first login (R7)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_password(password: str) -> str:
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"Mật khẩu phải có ít nhất {MIN_LENGTH} ký tự.",
            f"A password needs at least {MIN_LENGTH} characters.",
        )
    return _hasher.hash(password)


def hash_issued_password(password: str) -> str:
    """The hash of a password from generate_initial_password (never a chosen one)."""
    if len(password) < 12:
        raise InvalidInput(
            "Mật khẩu cấp phát phải có ít nhất 12 ký tự ngẫu nhiên.",
            "An issued password has at least 12 random characters.",
        )
    return _issued_hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False
