"""Receiving a message under the sending policy: the use case behind SMTP's DATA (and the
webmail's Send) — judge it, then refuse it, hold it for the centre, or store it labelled,
recording every decision and telling the sender."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from govmail.config import Config
from govmail.directory.accounts import Account
from govmail.mailstore.delivery import Delivery, Record
from govmail.mailstore.service import Incoming, MailStore, Receipt
from govmail.mailstore.submission import Refusal
from govmail.policy.engine import INBOUND, SUBMISSION, Evaluation, Finding, Policy
from govmail.policy.notices import quarantine_alert, sender_notice
from govmail.store.audit import now
from govmail.store.database import Database
from govmail.store.schema import (
    audit_log,
    documents,
    mailboxes,
    people,
    policy_decisions,
    quarantine,
    roles,
)

log = logging.getLogger(__name__)

# How each action is written in the decisions log.
_LOGGED = {"reject": "rejected", "warn": "warned", "convert": "converted", "inform": "informed"}


class SendingPolicy:
    """The policy in front of the mail store; one per process, shared by SMTP and web."""

    def __init__(self, cfg: Config, db: Database, store: MailStore) -> None:
        self.cfg = cfg
        self.db = db
        self.store = store
        self.policy = Policy(cfg.policy, cfg.data_dir)

    async def receive(
        self, incoming: Incoming, *, direction: str, client_ip: str = ""
    ) -> tuple[Receipt, Evaluation | None]:
        """Judge ``incoming`` (``direction``: "submission" for officials' mail, "inbound"
        for the Internet's) and act: a refusal comes back as the receipt's ``refusal``
        (the decisions are recorded and the sender told); otherwise the message, as the
        rules left it, is stored with its decisions and document row in one transaction.
        The evaluation is returned for the caller's banner (webmail); None when the
        message was refused before the rules ran (a From: the account may not use)."""
        prepared = self.store.prepare(incoming)
        if isinstance(prepared, Refusal):
            return Receipt(prepared), None
        incoming = prepared
        evaluation = await asyncio.to_thread(self.policy.evaluate, incoming.raw, direction)
        rejection = evaluation.rejection
        if rejection is not None and rejection.rule == "classified":
            return await self._hold(
                incoming, evaluation, rejection, direction, client_ip
            ), evaluation
        if rejection is not None:
            await self._refuse(incoming, evaluation, direction)
            refusal = Refusal(rejection.code, rejection.vi, rejection.en)
            return Receipt(refusal), evaluation

        records = [
            Record(policy_decisions, _decision(f, incoming, evaluation, direction))
            for f in evaluation.findings
        ]
        document = evaluation.document
        if document is not None and (
            direction == SUBMISSION or document.signal != "none" or evaluation.signatures
        ):  # every sent message counts for R14; the Internet's only when recognised
            records.append(_document(incoming, evaluation, direction))
        # The sender's notice and the centre's alert commit with the message itself:
        # no warning is lost, and nothing after the commit can fail the transaction.
        companions = []
        warnings = evaluation.warnings
        if warnings and direction == SUBMISSION and incoming.account is not None:
            notice = await self._notice(incoming.account, warnings, evaluation, refused=False)
            companions += [notice] if notice is not None else []
        classified = [f for f in evaluation.findings if f.rule == "classified"]
        if classified:  # "warn": delivered, but the centre must know
            alert = await self._alert(incoming, evaluation, classified[0], None, client_ip)
            companions += [alert] if alert is not None else []
        receipt = await self.store.receive(
            replace(
                incoming,
                raw=evaluation.raw,
                records=tuple(records),
                companions=tuple(companions),
            )
        )
        return receipt, evaluation

    async def _refuse(self, incoming: Incoming, evaluation: Evaluation, direction: str) -> None:
        """Record why the message was refused and tell a local sender in full."""
        rows = [_decision(f, incoming, evaluation, direction) for f in evaluation.findings]
        account = incoming.account
        if account is None or direction == INBOUND:
            await self.db.run(lambda conn: _insert_records(conn, rows), write=True)
            return
        shown = [f for f in evaluation.findings if f.action == "reject"]
        notice = await self._notice(
            account,
            shown,
            evaluation,
            refused=True,
            records=[Record(policy_decisions, r) for r in rows],
        )
        delivered = False
        if notice is not None:
            try:
                delivered = bool((await self.store.commits.deliver(notice))[0].delivered)
            except Exception:
                log.exception("policy notice to %s could not be stored", account.address)
        if not delivered:  # nobody took the notice (a full mailbox): the log still holds
            await self.db.run(lambda conn: _insert_records(conn, rows), write=True)

    async def _hold(
        self,
        incoming: Incoming,
        evaluation: Evaluation,
        finding: Finding,
        direction: str,
        client_ip: str,
    ) -> Receipt:
        """R15: keep the message for the centre (not delivered), audit it, alert the
        centre and the sender's agency, tell the sender."""
        stored = await self.store.store(self.store.stamped(incoming, evaluation.raw))
        account = incoming.account
        recipients = {
            "local": {str(box): address for box, address in incoming.local.items()},
            "remote": list(incoming.remote),
        }
        held = {
            "at": now(),
            "direction": direction,
            "blob": stored.blob,
            "size": stored.size,
            "sender": incoming.sender,
            "mailbox_id": account.mailbox_id if account else None,
            "message_id_header": evaluation.message_id,
            "subject": evaluation.subject[:1000],
            "recipients": recipients,
            "reason_vi": finding.vi,
            "reason_en": finding.en,
        }
        rows = [
            _decision(
                f, incoming, evaluation, direction, action="quarantined" if f is finding else None
            )
            for f in evaluation.findings
        ]

        def write(conn: Connection) -> int:
            key = conn.execute(insert(quarantine).values(**held)).inserted_primary_key
            if key is None:  # pragma: no cover - both backends return it
                raise RuntimeError("the quarantine row has no id")
            quarantine_id = int(key[0])
            _insert_records(conn, [{**row, "quarantine_id": quarantine_id} for row in rows])
            conn.execute(
                insert(audit_log).values(
                    at=now(),
                    actor="policy",
                    action="policy.quarantine",
                    target=incoming.sender or "<>",
                    details={
                        "quarantine_id": quarantine_id,
                        "level": finding.details.get("level"),
                        "message_id": evaluation.message_id,
                        "client_ip": client_ip,
                    },
                )
            )
            return quarantine_id

        quarantine_id = await self.db.run(write, write=True)
        log.warning(
            "message %s from <%s> held as quarantine %d: %s",
            evaluation.message_id, incoming.sender, quarantine_id, finding.en,
        )  # fmt: skip
        # The hold is committed: from here on nothing may turn the answer into a 451
        # (the client would send it again and it would be held twice).
        told = []
        if account is not None:
            told.append(await self._notice(account, [finding], evaluation, refused=True, held=True))
        told.append(await self._alert(incoming, evaluation, finding, quarantine_id, client_ip))
        deliveries = [d for d in told if d is not None]
        if deliveries:
            try:
                await self.store.commits.deliver(*deliveries)
            except Exception:
                log.exception("notices about quarantine %d could not be stored", quarantine_id)
        return Receipt(Refusal(finding.code, finding.vi, finding.en))

    async def _notice(
        self,
        account: Account,
        findings: Sequence[Finding],
        evaluation: Evaluation,
        *,
        refused: bool,
        held: bool = False,
        records: Sequence[Record] = (),
    ) -> Delivery | None:
        """The notice into the sender's INBOX as a delivery to commit (with ``records``),
        its blob already durable; None (logged) if it could not be written."""
        try:
            raw = sender_notice(
                self.cfg,
                account.address,
                findings,
                subject=evaluation.subject,
                refused=refused,
                held=held,
                at=datetime.now().astimezone(),
            )
            stored = await self.store.store(b"Return-Path: <>\r\n" + raw)
        except Exception:
            log.exception("policy notice to %s could not be written", account.address)
            return None
        return Delivery(message=stored, sender="", inbox=[account.mailbox_id], records=records)

    async def _alert(
        self,
        incoming: Incoming,
        evaluation: Evaluation,
        finding: Finding,
        quarantine_id: int | None,
        client_ip: str,
    ) -> Delivery | None:
        """The alert about a classification mark to the centre (postmaster) and the
        sender's agency (its IT officers and its agency mailbox), as a delivery to commit;
        None (logged) when nobody can take it."""
        try:
            boxes: dict[int, str] = {}
            if self.cfg.postmaster:
                postmaster = await self.store.find_recipient("postmaster")
                if postmaster is not None and postmaster.status == "active":
                    boxes[postmaster.mailbox_id] = f"postmaster@{self.cfg.domain}"
            if not boxes:
                log.warning("classification alert: [mail] postmaster is not set or not active")
            at_agency = await self.db.run(
                lambda c: _agency_mailboxes(c, incoming.account), write=False
            )
            for box in at_agency:
                boxes.setdefault(box, "")
            if not boxes:
                return None
            raw = quarantine_alert(
                self.cfg,
                [address for address in boxes.values() if address] or ["postmaster"],
                finding,
                quarantine_id=quarantine_id,
                sender=incoming.sender,
                recipients=[*incoming.local.values(), *incoming.remote],
                subject=evaluation.subject,
                message_id=evaluation.message_id,
                client_ip=client_ip,
                at=datetime.now().astimezone(),
            )
            stored = await self.store.store(b"Return-Path: <>\r\n" + raw)
        except Exception:
            log.exception("classification alert about <%s> could not be written", incoming.sender)
            return None
        return Delivery(message=stored, sender="", inbox=list(boxes))


def _decision(
    finding: Finding,
    incoming: Incoming,
    evaluation: Evaluation,
    direction: str,
    action: str | None = None,
) -> dict[str, Any]:
    return {
        "at": now(),
        "direction": direction,
        "rule": finding.rule,
        "action": action or _LOGGED.get(finding.action, finding.action),
        "sender": incoming.sender[:320],
        "mailbox_id": incoming.account.mailbox_id if incoming.account else None,
        "message_id_header": evaluation.message_id,
        "subject": evaluation.subject[:1000],
        "reason_vi": finding.vi,
        "reason_en": finding.en,
        "quarantine_id": None,
        "details": {k: v for k, v in finding.details.items() if v is not None},
    }


def _document(incoming: Incoming, evaluation: Evaluation, direction: str) -> Record:
    document = evaluation.document
    if document is None:  # pragma: no cover - the caller checked
        raise ValueError("no document classification")
    return Record(
        documents,
        {
            "at": now(),
            "message_id": None,  # filled with the delivered message's row
            "direction": direction,
            "mailbox_id": incoming.account.mailbox_id if incoming.account else None,
            "document_type": document.type_id,
            "document_number": (document.number or None) and document.number[:100],
            "signal": document.signal,
            "signatures": [
                {"file": s.filename, "status": s.status, "reason": s.reason, "signer": s.signer}
                for s in evaluation.signatures
            ],
        },
    )


def _insert_records(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(policy_decisions), rows)


def _agency_mailboxes(conn: Connection, account: Account | None) -> list[int]:
    """Who at the sender's agency hears of a classification mark: its IT officers
    (Điều 14.5: they handle the agency's incidents) and its active agency mailbox."""
    if account is None or account.person_id is None:
        return []
    agency = select(people.c.agency_id).where(people.c.id == account.person_id).scalar_subquery()
    officers = conn.scalars(
        select(roles.c.mailbox_id)
        .join(mailboxes, mailboxes.c.id == roles.c.mailbox_id)
        .where(
            roles.c.agency_id == agency,
            roles.c.role == "it_officer",
            mailboxes.c.status == "active",
        )
    ).all()
    own = conn.scalars(
        select(mailboxes.c.id).where(
            mailboxes.c.agency_id == agency,
            mailboxes.c.kind == "agency",
            mailboxes.c.status == "active",
        )
    ).all()
    return [box for box in (*officers, *own) if box != account.mailbox_id]
