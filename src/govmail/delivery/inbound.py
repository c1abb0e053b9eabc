"""Whether mail from the Internet is what it claims to be: SPF (RFC 7208), DKIM (RFC 6376)
and DMARC (RFC 7489) on the MX, recorded in an Authentication-Results field (RFC 8601)."""

from __future__ import annotations

import asyncio
import logging
import random
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import dkim
import dns.exception
import dns.resolver
import spf
from publicsuffixlist import PublicSuffixList

from govmail.config import MB, Config
from govmail.core.mime import header_addresses, header_end
from govmail.delivery import dkim as _dkim_speedups  # noqa: F401  OpenSSL RSA, linear canon.
from govmail.delivery.resolver import DnsTemporaryError, Resolver, sync_resolver
from govmail.mailstore.recipients import is_local_domain
from govmail.mailstore.submission import Refusal

log = logging.getLogger(__name__)

MAX_SIGNATURES = 3  # DKIM-Signature fields verified per message (each hashes the body)
# Each signature canonicalises and hashes the body holding the GIL (~10-60 ms a MB):
# larger bodies are not verified, dkim=neutral (RFC 8601 §2.7.1: "not able to be
# processed"). DMARC can still pass on SPF.
MAX_VERIFIED_BODY = 10 * MB
# What a key record may be: a 4096-bit RSA key is ~740 bytes of p=; bigger moduli and
# exponents only cost us CPU (RFC 8301 §3.2: verifiers need not go past 4096 bits).
MAX_KEY_RECORD = 2048
MIN_RSA_BITS, MAX_RSA_BITS, MAX_RSA_EXPONENT = 1024, 4096, 2**32
# The header read (Postfix's header_size_limit): a larger one is refused, as Gmail and
# Exim do, rather than checked in part; a forged field past the limit would survive.
MAX_HEADER = 102400
MAX_THREADS = 32  # checks running at once (they block on DNS)
POLICIES = ("none", "quarantine", "reject")


# --- DMARC records and alignment (pure) ----------------------------------------------------


@dataclass(frozen=True)
class DmarcRecord:
    """A domain's DMARC policy record (RFC 7489 §6.3)."""

    policy: str  # p=: none | quarantine | reject
    subdomain_policy: str  # sp= (p= when absent)
    adkim: str = "r"  # r(elaxed) | s(trict)
    aspf: str = "r"
    pct: int = 100


def parse_dmarc(text: str) -> DmarcRecord | None:
    """The record in one TXT string, or None if it is no DMARC record or an unusable one
    (RFC 7489 §6.6.3 step 6: a bad p= is read as p=none only when rua= shows the owner
    wants reports)."""
    tags: dict[str, str] = {}
    for number, part in enumerate(text.split(";")):
        name, equals, value = part.partition("=")
        name, value = name.strip().lower(), value.strip()
        if number == 0 and (name != "v" or value != "DMARC1"):
            return None
        if equals and name not in tags:
            tags[name] = value
    policy = tags.get("p", "").lower()
    subdomain = tags.get("sp", policy).lower()
    if policy not in POLICIES or subdomain not in POLICIES:  # RFC 7489 §6.6.3 step 6
        if "rua" not in tags:
            return None
        policy = subdomain = "none"
    pct = tags.get("pct", "100")
    return DmarcRecord(
        policy=policy,
        subdomain_policy=subdomain,
        adkim="s" if tags.get("adkim", "").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "").lower() == "s" else "r",
        pct=int(pct) if re.fullmatch("[0-9]{1,3}", pct) and int(pct) <= 100 else 100,
    )


def aligned(domain: str, from_domain: str, mode: str, organization: Callable[[str], str]) -> bool:
    """Whether an authenticated ``domain`` aligns with the From: domain: the same name
    (strict), or the same organizational domain (relaxed, RFC 7489 §3.1)."""
    domain, from_domain = _name(domain), _name(from_domain)
    if mode == "s":
        return domain == from_domain
    return organization(domain) == organization(from_domain)


def applied_policy(policy: str, pct: int, roll: int) -> str:
    """The policy applied to a failing message: ``roll`` (0-99, random) outside the pct=
    sample gets the next lower one (RFC 7489 §6.6.4: reject → quarantine → none)."""
    if roll < pct or policy == "none":
        return policy
    return "quarantine" if policy == "reject" else "none"


# --- results and the Authentication-Results field (pure) ------------------------------------


@dataclass(frozen=True)
class SpfResult:
    result: str  # pass fail softfail neutral none temperror permerror
    identity: str  # "mailfrom", or "helo" for the null sender
    value: str  # the address (or HELO name) checked
    domain: str  # its domain, what DMARC aligns


@dataclass(frozen=True)
class DkimResult:
    result: str  # pass fail neutral temperror permerror
    domain: str  # d= ("" if the signature could not be read)
    selector: str  # s=
    comment: str = ""  # why, for neutral and permerror


@dataclass(frozen=True)
class DmarcResult:
    result: str  # pass fail none temperror permerror
    from_domain: str
    policy: str | None = None  # what the record asks for this domain (p= or sp=)
    disposition: str = "none"  # what was done: none | quarantine | reject


def authentication_results(
    authserv_id: str,
    spf_result: SpfResult | None,
    dkim_results: Sequence[DkimResult] | None,
    dmarc_result: DmarcResult | None,
) -> bytes:
    """The Authentication-Results field (RFC 8601), one result per folded line, for the
    checks that ran (None: not checked); empty if none ran."""
    results: list[str] = []
    if spf_result is not None:
        prop = "smtp.helo" if spf_result.identity == "helo" else "smtp.mailfrom"
        results.append(f"spf={spf_result.result} {prop}={_pvalue(spf_result.value)}")
    if dkim_results is not None:
        results += [_dkim_result(d) for d in dkim_results] or ["dkim=none"]
    if dmarc_result is not None:
        comment = ""
        if dmarc_result.policy is not None:
            comment = f" (p={dmarc_result.policy} dis={dmarc_result.disposition})"
        header_from = f" header.from={_pvalue(dmarc_result.from_domain)}"
        results.append(
            f"dmarc={dmarc_result.result}{comment}{header_from if dmarc_result.from_domain else ''}"
        )
    if not results:
        return b""
    text = f"Authentication-Results: {authserv_id};\r\n\t" + ";\r\n\t".join(results) + "\r\n"
    return text.encode("utf-8", "surrogateescape")


def _dkim_result(d: DkimResult) -> str:
    text = f"dkim={d.result}"
    if d.comment:
        text += f" ({d.comment})"
    if d.domain:
        text += f" header.d={_pvalue(d.domain)} header.s={_pvalue(d.selector)}"
    return text


_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]+")


def _pvalue(value: str) -> str:
    """A property value as RFC 8601 writes it: as is when it is plain, else quoted (a
    local part or a signature's d= may hold ';' or spaces that would end the result)."""
    if _TOKEN.fullmatch(value):
        return value
    escaped = re.sub(r"[\x00-\x1f\x7f]", "", value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# --- the message header (pure) --------------------------------------------------------------


def header_fields(raw: bytes) -> list[tuple[str, bytes]]:
    """The top-level header's lines grouped into fields, in order: (lower-case name, the
    field's bytes with its continuation lines and line ends). Lines end at LF, as the
    store's parser reads them. A line that starts no field (no colon, the blank line
    that ends the header) is kept under the name "", so the parts join back into the
    header byte for byte. Linear in the header's size."""
    fields: list[tuple[str, list[bytes]]] = []
    for line in re.findall(rb"[^\n]*\n|[^\n]+", raw[: header_end(raw)]):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1].append(line)
        else:
            name, colon, _ = line.partition(b":")
            name = name.strip().lower() if colon else b""
            fields.append((name.decode("latin-1"), [line]))
    return [(name, b"".join(lines)) for name, lines in fields]


def without_forged_results(raw: bytes, fields: list[tuple[str, bytes]], authserv_id: str) -> bytes:
    """``raw`` (whose ``header_fields`` are ``fields``) without the Authentication-Results
    fields that claim to be ours, or whose authserv-id cannot be read: only we write
    those, so one that arrives is forged (RFC 8601 §5)."""
    ours = authserv_id.lower().rstrip(".")
    kept = [
        field
        for name, field in fields
        if name != "authentication-results"
        or read_authserv_id(field.partition(b":")[2]) not in (ours, None)
    ]
    if len(kept) == len(fields):
        return raw
    return b"".join(kept) + raw[sum(len(field) for _, field in fields) :]


_VALUE_TOKEN = re.compile(r'[^\x00-\x20\x7f()<>@,;:\\"/\[\]?=]+')  # RFC 2045 token


def read_authserv_id(value: bytes) -> str | None:
    """The authserv-id an Authentication-Results value starts with (RFC 8601 §2.2: CFWS,
    then a token or a quoted-string), lower-case without a trailing dot; None if none
    can be read."""
    text = value.decode("latin-1")
    at = _skip_cfws(text)
    if at is None:
        return None
    if text[at] == '"':
        chars: list[str] = []
        at += 1
        while at < len(text) and text[at] != '"':
            if text[at] == "\\":
                at += 1
            chars.append(text[at : at + 1])
            at += 1
        if at >= len(text):
            return None
        found = re.sub(r"\s+", "", "".join(chars))
    else:
        token = _VALUE_TOKEN.match(text, at)
        if token is None:
            return None
        found = token.group()
    return found.rstrip(".").lower() or None


def _skip_cfws(text: str) -> int | None:
    """Where the first thing after blanks and (nested, quoted-pair) comments starts."""
    depth = at = 0
    while at < len(text):
        char = text[at]
        if depth and char == "\\":
            at += 1
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        elif not depth and char not in " \t\r\n":
            return at
        at += 1
    return None


def hop_count(fields: list[tuple[str, bytes]]) -> int:
    """How many Received fields the message carries: the relays it passed."""
    return sum(1 for name, _ in fields if name == "received")


def from_domains(fields: list[tuple[str, bytes]]) -> list[set[str]]:
    """The domains of the addresses of each From field (RFC5322.From), one set a field."""
    return [
        {a.rpartition("@")[2].rstrip(".") for a in header_addresses(field, "from")}
        for name, field in fields
        if name == "from"
    ]


def _name(domain: str) -> str:
    return domain.lower().rstrip(".")


# --- the checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What to do with one message from the Internet."""

    raw: bytes  # the message to store (forged Authentication-Results removed)
    header: bytes = b""  # our Authentication-Results field, to prepend with the trace
    junk: bool = False  # file it in the recipients' Junk folder
    refusal: Refusal | None = None  # refuse it with this reply instead


class _KeyTrouble(Exception):
    """A DKIM key that cannot be used: ``result`` is temperror (DNS could not answer now)
    or permerror (no key, revoked, unreadable or unacceptable: RFC 6376 §6.1.2). Not a
    DKIMException, so dkimpy lets it through instead of calling the signature bad."""

    def __init__(self, result: str, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


# pyspf looks names up through its module-level DNSLookup, with dnspython's default
# resolver and no way to pass another; the module picks that function itself at import
# (pydns or dnspython), so it is the seam meant for this. Ours asks the servers of
# [dns], which are the same for the whole process: set when SenderChecks is built.
_spf_resolver: dns.resolver.Resolver | None = None


def _spf_lookup(name: str, qtype: str, strict: object = True, timeout: float = 20) -> list[Any]:
    resolver = _spf_resolver
    if resolver is None:
        raise spf.TempError("no resolver configured")
    try:
        answer = resolver.resolve(
            name, qtype, lifetime=min(timeout, resolver.lifetime), search=False
        )
    except (dns.resolver.NoAnswer, dns.resolver.NXDOMAIN):
        return []
    except (dns.exception.Timeout, dns.resolver.NoNameservers) as exc:
        raise spf.TempError(f"DNS {exc}") from None
    # The shapes pyspf's own DNSLookup_dnspython returns.
    found: list[Any] = []
    for rdata in answer:
        if qtype in ("A", "AAAA"):
            found.append(((name, qtype), rdata.address))
        elif qtype == "MX":
            found.append(((name, qtype), (rdata.preference, rdata.exchange)))
        elif qtype == "PTR":
            found.append(((name, qtype), rdata.target.to_text(True)))
        elif qtype in ("TXT", "SPF"):
            found.append(((name, qtype), rdata.strings))
    return found


spf.DNSLookup = _spf_lookup

# One pool for the process, for the checks that block (on DNS, or parsing a large
# header): apart from the default executor, which writes message blobs.
_threads: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _threads
    if _threads is None:
        _threads = ThreadPoolExecutor(MAX_THREADS, thread_name_prefix="inbound-checks")
    return _threads


def stop_checks() -> None:
    """Drop the checks still waiting for a thread, without waiting for the running ones
    (each ends within the DNS timeout); for the server's shutdown."""
    global _threads
    if _threads is not None:
        _threads.shutdown(wait=False, cancel_futures=True)
        _threads = None


@dataclass(frozen=True)
class _Header:
    """What the checks need from the arriving header, read once."""

    raw: bytes  # the message without forged Authentication-Results
    hops: int
    authors: list[set[str]]  # the domains of each From field


class SenderChecks:
    """SPF, DKIM and DMARC for the MX, per ``[inbound]``, on the servers of ``[dns]``."""

    def __init__(self, cfg: Config, roll: Callable[[], int] = lambda: random.randrange(100)):
        global _spf_resolver
        self.cfg = cfg
        self.settings = cfg.inbound
        self.roll = roll
        self._dns = sync_resolver(cfg.dns)  # for pyspf and dkimpy, in worker threads
        _spf_resolver = self._dns
        self._resolver = Resolver(cfg.dns)
        self._psl = PublicSuffixList()

    async def check(
        self, raw: bytes, *, client_ip: str, helo: str, mail_from: str, trusted: bool
    ) -> Verdict:
        """Judge ``raw`` as it arrived from ``client_ip``. Mail from a trusted relay is
        ours already: only its header size and hop count are checked. A failure of our
        own DNS never refuses mail (temperror is recorded, as Postfix with OpenDMARC
        does), except for the province's own domains."""
        body_at = header_end(raw)
        if body_at > MAX_HEADER:
            return Verdict(raw, refusal=_HEADER_TOO_LARGE)
        loop = asyncio.get_running_loop()
        # 100 KB of short lines take a few ms to read: not on the event loop.
        header = await loop.run_in_executor(_pool(), self._read_header, raw)
        if header.hops >= self.cfg.delivery.max_hops:
            return Verdict(raw, refusal=_LOOP)
        if trusted:
            return Verdict(raw)
        raw = header.raw
        checks = self.settings
        author = None
        if checks.dmarc:
            if len(header.authors) > 1 or any(len(a) > 1 for a in header.authors):
                # Which author would the reader see? Refused, as Gmail does: answering
                # with one domain's policy would let a second From slip past another's.
                return Verdict(raw, refusal=_AMBIGUOUS_AUTHOR)
            if header.authors and not header.authors[0]:
                return Verdict(raw, refusal=_NO_AUTHOR)  # as Gmail does
            # No From at all is RFC 5322's error, not an impersonation: recorded only.
            author = next(iter(header.authors[0])) if header.authors else None
        # DMARC builds on SPF and DKIM: with it on, both run even if not asked for.
        # The three run at once: SPF and DKIM in threads, the DMARC policy lookup here.
        spf_future = dkim_future = None
        if checks.spf or checks.dmarc:
            spf_future = loop.run_in_executor(_pool(), self._spf, client_ip, mail_from, helo)
        if checks.dkim or checks.dmarc:
            dkim_future = loop.run_in_executor(_pool(), self._dkim, raw, len(raw) - body_at)
        policy = await self._policy(author) if author is not None else None
        spf_result = await spf_future if spf_future else None
        dkim_results = await dkim_future if dkim_future else None
        dmarc_result = DmarcResult("permerror", "") if checks.dmarc else None
        if author is not None:
            dmarc_result = self._dmarc(author, policy, spf_result, dkim_results or [])
        header_field = authentication_results(
            self.cfg.hostname, spf_result, dkim_results, dmarc_result
        )
        if dmarc_result is None:
            return Verdict(raw, header_field)
        if is_local_domain(self.cfg, dmarc_result.from_domain) and dmarc_result.result != "pass":
            refusal = _OUR_DNS_DOWN if dmarc_result.result == "temperror" else _FORGED_OURS
            return Verdict(raw, header_field, refusal=refusal)
        if dmarc_result.disposition == "reject":
            if self.settings.dmarc_reject == "reject":
                return Verdict(raw, header_field, refusal=_DMARC_REJECT)
            return Verdict(raw, header_field, junk=True)
        return Verdict(raw, header_field, junk=dmarc_result.disposition == "quarantine")

    def organization(self, domain: str) -> str:
        """The organizational domain (RFC 7489 §3.2): one label under its public suffix."""
        return self._psl.privatesuffix(domain) or domain

    # Worker-thread parts: header parsing costs CPU, pyspf and dkimpy block on DNS.

    def _read_header(self, raw: bytes) -> _Header:
        fields = header_fields(raw)
        return _Header(
            without_forged_results(raw, fields, self.cfg.hostname),
            hop_count(fields),
            from_domains(fields),
        )

    def _spf(self, client_ip: str, mail_from: str, helo: str) -> SpfResult:
        identity, value = ("mailfrom", mail_from) if mail_from else ("helo", helo)
        try:
            result, _ = spf.check2(i=client_ip, s=mail_from, h=helo)
        except Exception:  # a library bug on odd input must not refuse mail
            log.exception("SPF check failed for <%s> from %s", mail_from, client_ip)
            result = "permerror"
        return SpfResult(str(result), identity, value, _name(value.rpartition("@")[2]))

    def _dkim(self, raw: bytes, body_size: int) -> list[DkimResult]:
        try:
            verifier = dkim.DKIM(raw, timeout=self.cfg.dns.timeout_s)
        except Exception:  # no header to find signatures in
            return []
        count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
        results = []
        for index in range(min(count, MAX_SIGNATURES)):
            verifier.domain = verifier.selector = None
            result, comment = self._verify(verifier, index, body_size)
            domain = bytes(verifier.domain or b"").decode("utf-8", "replace")
            selector = bytes(verifier.selector or b"").decode("utf-8", "replace")
            results.append(DkimResult(result, _name(domain), selector, comment))
        return results

    def _verify(self, verifier: Any, index: int, body_size: int) -> tuple[str, str]:
        """The result of signature ``index`` (and why, when that helps the reader)."""
        try:
            try:
                signature, signed, fields = verifier.verify_headerprep(index)
            except dkim.DKIMException:  # missing or malformed tags (RFC 6376 §6.1.1)
                return "permerror", "bad signature"
            if body_size > MAX_VERIFIED_BODY:
                return "neutral", "body too large to verify"
            valid = verifier.verify_sig(signature, signed, fields[index], self._dkim_key)
            return ("pass" if valid else "fail"), ""
        except _KeyTrouble as trouble:
            return trouble.result, trouble.reason
        except dkim.ValidationError:  # the body changed after signing
            return "fail", ""
        except dkim.DKIMException:
            return "permerror", "bad signature"
        except Exception:  # a crafted signature must never temp-fail the message
            log.exception("DKIM check failed on signature %d", index)
            return "permerror", "bad signature"

    def _dkim_key(self, name: bytes, timeout: float = 5) -> bytes:
        """The key record at ``name`` (its strings joined, RFC 6376 §3.6.2.2), checked
        before dkimpy reads it: it would call a missing or broken key a failed signature,
        where RFC 6376 §6.1.2 says permerror, and do any RSA arithmetic a sender asks."""
        try:
            answer = self._dns.resolve(
                name.decode("ascii"), "TXT", search=False, raise_on_no_answer=False
            )
        except (dns.exception.Timeout, dns.resolver.NoNameservers):
            raise _KeyTrouble("temperror", "key lookup failed") from None
        except (dns.exception.DNSException, UnicodeError):  # NXDOMAIN, or not a name
            raise _KeyTrouble("permerror", "no key") from None
        records = [b"".join(rdata.strings) for rdata in answer.rrset or ()]
        if len(records) != 1:  # several: "the results are undefined"
            raise _KeyTrouble("permerror", "no key" if not records else "several keys")
        record = records[0]
        if len(record) > MAX_KEY_RECORD:
            raise _KeyTrouble("permerror", "key too large")
        try:
            key, bits, kind, _ = dkim.evaluate_pk(name, record)
        except Exception:  # an empty p= (revoked) included
            raise _KeyTrouble("permerror", "unusable key") from None
        if kind == b"rsa" and not (
            MIN_RSA_BITS <= bits <= MAX_RSA_BITS and key["publicExponent"] <= MAX_RSA_EXPONENT
        ):
            raise _KeyTrouble("permerror", "unacceptable key size")
        return record

    # DMARC: the policy lookup runs beside SPF and DKIM.

    async def _policy(self, author: str) -> tuple[DmarcRecord | None, bool] | None:
        """The DMARC record for mail from ``author`` and whether it is the organizational
        domain's (then sp= applies); None when DNS could not answer now. The province's
        own domains are p=reject whatever DNS says: nobody outside may speak for them."""
        if is_local_domain(self.cfg, author):
            return DmarcRecord("reject", "reject"), False
        organization = self.organization(author)
        try:
            for domain in dict.fromkeys([author, organization]):
                texts = await self._resolver.txt(f"_dmarc.{domain}")
                records = [t for t in texts if re.match(r"v\s*=\s*DMARC1\s*(;|$)", t)]
                if len(records) > 1:  # RFC 7489 §6.6.3: ambiguous, no policy
                    return None, False
                if records:  # an unusable record means no policy: no fallback (step 6)
                    return _parsed(records[0]), domain != author
        except DnsTemporaryError:
            return None
        except (dns.exception.DNSException, UnicodeError):
            pass  # a From: domain that is not a DNS name has no policy
        return None, False

    def _dmarc(
        self,
        author: str,
        found: tuple[DmarcRecord | None, bool] | None,
        spf_result: SpfResult | None,
        dkim_results: Sequence[DkimResult],
    ) -> DmarcResult:
        if found is None:
            return DmarcResult("temperror", author)
        record, inherited = found
        if record is None:
            return DmarcResult("none", author)
        policy = record.subdomain_policy if inherited else record.policy
        candidates = [(d.result, d.domain, record.adkim) for d in dkim_results]
        if spf_result is not None:
            candidates.append((spf_result.result, spf_result.domain, record.aspf))
        outcomes = {
            result
            for result, domain, mode in candidates
            if aligned(domain, author, mode, self.organization)
        }
        if "pass" in outcomes:
            return DmarcResult("pass", author, policy)
        if "temperror" in outcomes:
            return DmarcResult("temperror", author, policy)
        disposition = applied_policy(policy, record.pct, self.roll())
        return DmarcResult("fail", author, policy, disposition)


def _parsed(text: str) -> DmarcRecord | None:
    try:
        return parse_dmarc(text)
    except Exception:  # a parser bug on odd input must not refuse mail
        log.exception("cannot read DMARC record %r", text[:200])
        return None


_LOOP = Refusal(
    "554 5.4.6",
    "Thư bị chuyển vòng (quá nhiều trường Received)",
    "Mail loop detected (too many Received fields)",
)
_AMBIGUOUS_AUTHOR = Refusal(
    "550 5.6.0",
    "Thư chỉ được có một trường From, với địa chỉ thuộc một tên miền",
    "The message must have one From field, with addresses of one domain",
)
_NO_AUTHOR = Refusal(
    "550 5.7.1",
    "Trường From của thư không có địa chỉ người gửi hợp lệ",
    "The message's From field has no valid address",
)
_HEADER_TOO_LARGE = Refusal(
    "552 5.3.4",
    f"Phần đầu (header) của thư vượt quá {MAX_HEADER // 1024} KB",
    f"Message header exceeds {MAX_HEADER // 1024} KB",
)
_DMARC_REJECT = Refusal(
    "550 5.7.1",
    "Thư không vượt qua kiểm tra DMARC và tên miền người gửi yêu cầu từ chối",
    "Message rejected by the sender domain's DMARC policy",
)
_FORGED_OURS = Refusal(
    "550 5.7.1",
    "Thư gửi từ bên ngoài không được mang địa chỉ người gửi (From) của tỉnh",
    "Mail from outside may not use our domain in From: (DMARC fail)",
)
_OUR_DNS_DOWN = Refusal(
    "451 4.7.1",
    "Tạm thời không kiểm tra được chữ ký của thư, hãy gửi lại sau",
    "Cannot check the message's signature just now, try again later",
)
