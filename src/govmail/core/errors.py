"""Domain errors: each carries a Vietnamese message for users and an English one for logs."""

from __future__ import annotations

from typing import Any


class GovmailError(Exception):
    """A failure a user can understand and act on.

    ``code`` is a stable machine-readable name (used in ``--json`` output and by
    other tools); ``message_vi`` is shown to users first, ``message_en`` beside it
    and in logs. ``details`` holds extra facts for machine-readable output.
    """

    code = "error"
    exit_code = 1

    def __init__(self, message_vi: str, message_en: str, **details: Any) -> None:
        super().__init__(message_en)
        self.message_vi = message_vi
        self.message_en = message_en
        self.details = details

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message_vi": self.message_vi,
            "message_en": self.message_en,
            **self.details,
        }


class InvalidInput(GovmailError):
    """Input that can never be accepted as given (malformed name, address, file)."""

    code = "invalid_input"


class NotFound(GovmailError):
    """A named agency, person or mailbox does not exist."""

    code = "not_found"


class Conflict(GovmailError):
    """The request clashes with existing state (duplicate, wrong status)."""

    code = "conflict"


class AddressTaken(Conflict):
    """The wanted address is already used; ``proposals`` lists free ones, best first."""

    code = "address_taken"
    exit_code = 3

    def __init__(self, address: str, proposals: list[str]) -> None:
        super().__init__(
            f"Địa chỉ {address} đã được sử dụng. Đề xuất: {', '.join(proposals) or '(không có)'}",
            f"Address {address} is already taken. Proposals: {', '.join(proposals) or '(none)'}",
            address=address,
            proposals=proposals,
        )
        self.address = address
        self.proposals = proposals


class NotAllowed(GovmailError):
    """The actor's role does not allow this (another agency's request, a clerk approving)."""

    code = "forbidden"
    exit_code = 4


class AddressCollisions(Conflict):
    """Approving a request would give some rows addresses that are taken; nothing was
    changed. ``collisions`` maps each such row (1-based, as a string) to free proposals."""

    code = "address_collisions"
    exit_code = 3

    def __init__(self, collisions: dict[str, list[str]]) -> None:
        rows = ", ".join(collisions)
        super().__init__(
            f"Địa chỉ của các dòng {rows} đã được sử dụng: hãy chọn địa chỉ khác cho từng dòng.",
            f"The addresses of rows {rows} are taken: choose another address for each row.",
            collisions=collisions,
        )
        self.collisions = collisions
