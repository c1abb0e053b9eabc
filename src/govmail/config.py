"""The data directory's configuration file (govmail.toml): reading it and writing the first one."""

from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from govmail.core.errors import InvalidInput
from govmail.core.naming import DEFAULT_RESERVED

CONFIG_FILE = "govmail.toml"
MB = 1024 * 1024
# R17: at least 500 MB per agency mailbox and 100 MB per personal mailbox.
MIN_QUOTA_MB = {"agency": 500, "personal": 100}

# Unprivileged loopback ports for development; production sets 25/587/465/143/993/443.
DEV_LISTENERS = {
    "smtp": "127.0.0.1:2525",
    "submission": "127.0.0.1:1587",
    "submissions": "127.0.0.1:1465",
    "imap": "127.0.0.1:1143",
    "imaps": "127.0.0.1:1993",
    "web": "127.0.0.1:8080",
}


@dataclass(frozen=True)
class SmtpLimits:
    """[smtp]: what one SMTP client may do (defaults as Postfix's, size as the issue's)."""

    max_message_bytes: int = 25 * MB
    max_recipients: int = 500
    max_connections_per_ip: int = 100
    timeout_s: float = 300.0
    # Error replies (4xx/5xx) after which a session is cut off (Postfix's
    # smtpd_hard_error_limit): stops address harvesting and junk-spewing clients.
    max_errors: int = 20
    # Networks (CIDR) allowed to hand the MX mail from the province's own addresses
    # without logging in: the province's other mail servers or scanners, if any.
    trusted_relays: tuple[str, ...] = ()


@dataclass(frozen=True)
class AuthLimits:
    """[auth]: brute-force throttling shared by SMTP, IMAP and the web."""

    window_s: float = 900.0
    max_failures_per_ip: int = 20
    max_failures_per_account: int = 10
    delay_base_s: float = 0.5
    delay_max_s: float = 8.0
    cache_ttl_s: float = 300.0


@dataclass(frozen=True)
class ImapLimits:
    """[imap]: what one IMAP client may do."""

    # Dovecot's mail_max_userip_connections is 10 per user and address; officials
    # run a PC, a phone and the webmail, some with several folders open.
    max_connections_per_user: int = 20
    max_connections_per_ip: int = 1000  # a whole agency can sit behind one NAT address
    idle_timeout_s: float = 1800.0  # RFC 9051 §5.4: at least 30 minutes
    max_line_bytes: int = 64 * 1024
    max_pipelined: int = 100  # commands read ahead of the one being answered


@dataclass(frozen=True)
class DnsSettings:
    """[dns]: where names are looked up (MX, SPF, DKIM, DMARC, MTA-STS), and the
    policies the province publishes in its own zone (``govmail dns records``)."""

    # "HOST" or "HOST:PORT" each; empty: the system's resolver (/etc/resolv.conf). Closed
    # networks and the tests point this at their own DNS server.
    nameservers: tuple[str, ...] = ()
    timeout_s: float = 5.0
    # DMARC p= for our domains: "none" (reports only) until the reports show that all
    # the province's mail is signed, then "quarantine" or "reject".
    dmarc_policy: str = "none"
    # MTA-STS mode of our MX (RFC 8461): "testing" until the TLS certificate is one
    # senders trust, then "enforce"; "none" withdraws the policy.
    mta_sts_mode: str = "testing"


@dataclass(frozen=True)
class DeliverySettings:
    """[delivery]: how mail leaves for other domains (the outbound queue's workers)."""

    # "host:port": every outbound message goes through this relay instead of MX lookup.
    smarthost: str = ""
    smarthost_user: str = ""
    smarthost_password: str = ""
    # "starttls" (required), "tls" (implicit, port 465) or "opportunistic".
    smarthost_tls: str = "starttls"
    # The port remote MTAs listen on: 25 on the Internet; tests and closed networks
    # may use another.
    port: int = 25
    max_connections: int = 50  # outbound SMTP connections in all
    max_per_domain: int = 10  # ... to one destination domain (Postfix's default is 20)
    connect_timeout_s: float = 30.0
    timeout_s: float = 300.0  # each SMTP command (RFC 5321 §4.5.3.2 allows more)
    retry_min_s: float = 300.0  # first retry after a temporary failure; then doubling
    retry_max_s: float = 4000.0  # ... up to this (Postfix's maximal_backoff_time)
    delay_warning_s: float = 4 * 3600.0  # the sender is told the mail is late
    bounce_after_s: float = 5 * 86400.0  # ... and that it was given up
    # A message with more Received fields than this is looping (Postfix hopcount_limit).
    max_hops: int = 50
    mta_sts: bool = True  # honour receivers' MTA-STS policies (RFC 8461)
    mta_sts_port: int = 443  # where policies are fetched (HTTPS); tests use their own
    # Extra CA certificates (PEM) trusted when a certificate must be verified
    # (MTA-STS, smarthost): a closed network's own CA.
    ca_file: str = ""


@dataclass(frozen=True)
class DkimSettings:
    """[dkim]: signing outgoing mail (RFC 6376); keys are in the data directory's dkim/."""

    selector: str = "govmail"
    sign: bool = True


@dataclass(frozen=True)
class InboundChecks:
    """[inbound]: SPF, DKIM and DMARC on mail that comes to the MX from the Internet."""

    spf: bool = True
    dkim: bool = True
    dmarc: bool = True
    # What a message failing DMARC gets when its domain publishes p=reject: "reject"
    # (550 5.7.1 at the end of DATA) or "junk" (delivered into the Junk folder).
    dmarc_reject: str = "reject"


@dataclass(frozen=True)
class RateLimits:
    """[rate]: how much one account may send (R23: a stolen password must not turn the
    province's server into a spam source). Counted over ``window_s`` seconds."""

    window_s: float = 3600.0
    max_recipients: int = 2000  # recipients of all the account's messages
    max_external_recipients: int = 300  # ... outside the province's domains


# R11: the regulation's formats (.txt .doc .odt .ods .odp .rtf .pdf) plus what later
# Ministry standards and daily practice add. Names are format ids of policy/formats.py.
DEFAULT_FORMATS = (
    "txt", "doc", "odt", "ods", "odp", "rtf", "pdf",
    "docx", "xlsx", "pptx", "xls", "ppt", "jpg", "png",
)  # fmt: skip
POLICY_RULES = ("size", "formats", "classified", "unicode", "subject", "signatures")
# What each rule may be set to; the first is its "on" word in messages.
RULE_ACTIONS = {
    "size": ("reject", "warn", "off"),
    "formats": ("reject", "warn", "off"),
    "classified": ("reject", "warn", "off"),
    "unicode": ("convert", "warn", "off"),
    "subject": ("reject", "warn", "off"),
    "signatures": ("inform", "off"),
}


@dataclass(frozen=True)
class RuleActions:
    """What each sending rule does in one direction: ``reject`` refuses the message,
    ``warn`` delivers it and tells the sender (and, for classified marks, the centre),
    ``convert`` (R12) rewrites legacy-encoded text as Unicode and tells the sender,
    ``inform`` (R16) records and labels, ``off`` skips the rule. Defaults: submission."""

    size: str = "reject"  # R18
    formats: str = "reject"  # R11
    classified: str = "reject"  # R15: held in quarantine for the centre
    unicode: str = "convert"  # R12
    subject: str = "reject"  # R13: "reject" refuses an empty subject, warns otherwise
    signatures: str = "inform"  # R16


# Mail from the Internet: antivirus and Junk handle abuse, so size and formats are off;
# classified marks are tagged and alerted but delivered; subjects are the sender's.
INBOUND_ACTIONS = RuleActions(size="off", formats="off", classified="warn", subject="off")


@dataclass(frozen=True)
class PolicySettings:
    """[policy]: what the regulation lets officials send (R11–R18), per direction."""

    max_attachments_bytes: int = 10 * MB  # R18: decoded attachments of one sending
    allowed_formats: tuple[str, ...] = DEFAULT_FORMATS  # R11; add "zip" for archives
    # PEM files of the CAs whose PDF signatures are legally valid (R16): the national
    # root CA (old and new), the Government CA (VGCA). Relative to the data directory.
    trust_roots: tuple[str, ...] = ()
    crl_files: tuple[str, ...] = ()  # DER or PEM CRLs, so revocation is known offline
    # A TOML file replacing the built-in list of document types (R14); "" keeps it.
    document_types: str = ""
    submission: RuleActions = field(default_factory=RuleActions)
    inbound: RuleActions = INBOUND_ACTIONS


@dataclass(frozen=True)
class WorkflowSettings:
    """[workflow]: how the centre handles agencies' requests (R6–R10, R20, R21)."""

    # The centre decides a request within this many working days (Vietnamese calendar).
    sla_working_days: int = 3
    # Where mailbox archives go before a deletion (R9); relative to the data directory.
    archive_dir: str = "archives"
    # The place on the forms' date line ("Khánh Hòa, ngày … tháng … năm …").
    place: str = "Khánh Hòa"
    # Who the forms are addressed to ("Kính gửi: …").
    addressee: str = "Sở Thông tin và Truyền thông"
    # Extra days off the province decided (YYYY-MM-DD), beyond the national holidays.
    extra_holidays: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """Everything a govmail process needs to know about its installation."""

    data_dir: Path
    domain: str = "khanhhoa.gov.vn"
    alias_domains: tuple[str, ...] = ()
    hostname: str = "mail.khanhhoa.gov.vn"
    # The mailbox that receives postmaster@ and abuse@ (RFC 5321 §4.5.1, RFC 2142).
    postmaster: str = ""
    database_url: str = ""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    agency_quota_bytes: int = 500 * MB
    personal_quota_bytes: int = 100 * MB
    reserved_local_parts: frozenset[str] = DEFAULT_RESERVED
    listeners: dict[str, str] = field(default_factory=lambda: dict(DEV_LISTENERS))
    smtp: SmtpLimits = field(default_factory=SmtpLimits)
    auth: AuthLimits = field(default_factory=AuthLimits)
    imap: ImapLimits = field(default_factory=ImapLimits)
    dns: DnsSettings = field(default_factory=DnsSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    dkim: DkimSettings = field(default_factory=DkimSettings)
    inbound: InboundChecks = field(default_factory=InboundChecks)
    rate: RateLimits = field(default_factory=RateLimits)
    policy: PolicySettings = field(default_factory=PolicySettings)
    workflow: WorkflowSettings = field(default_factory=WorkflowSettings)

    @property
    def archive_dir(self) -> Path:
        path = Path(self.workflow.archive_dir)
        return path if path.is_absolute() else self.data_dir / path

    @property
    def dkim_dir(self) -> Path:
        return self.data_dir / "dkim"

    @property
    def effective_database_url(self) -> str:
        """The SQLAlchemy URL: GOVMAIL_DATABASE_URL, else the file's, else SQLite in data_dir."""
        return (
            os.environ.get("GOVMAIL_DATABASE_URL")
            or self.database_url
            or f"sqlite+aiosqlite:///{self.data_dir / 'govmail.db'}"
        )

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"


def load_config(data_dir: Path) -> Config:
    """Read ``data_dir/govmail.toml``; raises InvalidInput if it is missing or malformed."""
    path = data_dir / CONFIG_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(
            f"Không tìm thấy {path}. Hãy chạy 'govmail init --data {data_dir}' trước.",
            f"{path} not found. Run 'govmail init --data {data_dir}' first.",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(
            f"Tệp cấu hình {path} sai cú pháp: {exc}",
            f"Configuration file {path} is malformed: {exc}",
        ) from None
    return _config_from_dict(data_dir, raw)


def config_from_text(data_dir: Path, text: str) -> Config:
    """The configuration that ``text`` (a govmail.toml) gives for ``data_dir``."""
    return _config_from_dict(data_dir, tomllib.loads(text))


def _config_from_dict(data_dir: Path, raw: dict[str, Any]) -> Config:
    mail = raw.get("mail", {})
    quota = raw.get("quota", {})
    tls = raw.get("tls", {})

    def data_path(value: str | None) -> Path | None:
        return (
            None
            if not value
            else (data_dir / value if not Path(value).is_absolute() else Path(value))
        )

    reserved = frozenset(str(x).lower() for x in mail.get("reserved", [])) or DEFAULT_RESERVED
    listeners = dict(DEV_LISTENERS)
    listeners.update({str(k): str(v) for k, v in raw.get("listen", {}).items()})
    for kind, key in (("agency", "agency_mb"), ("personal", "personal_mb")):
        value = quota.get(key, MIN_QUOTA_MB[kind])
        if not isinstance(value, int) or value < MIN_QUOTA_MB[kind]:
            raise InvalidInput(
                f"[quota] {key} = {value!r}: tối thiểu {MIN_QUOTA_MB[kind]} MB (Điều 9).",
                f"[quota] {key} = {value!r}: the minimum is {MIN_QUOTA_MB[kind]} MB (R17).",
            )
    try:
        return Config(
            data_dir=data_dir,
            domain=str(mail.get("domain", Config.domain)).lower(),
            alias_domains=tuple(str(d).lower() for d in mail.get("alias_domains", [])),
            hostname=str(mail.get("hostname", f"mail.{mail.get('domain', Config.domain)}")),
            postmaster=str(mail.get("postmaster", "")).lower(),
            database_url=str(raw.get("database", {}).get("url", "")),
            tls_cert=data_path(tls.get("cert")),
            tls_key=data_path(tls.get("key")),
            agency_quota_bytes=int(quota.get("agency_mb", 500)) * MB,
            personal_quota_bytes=int(quota.get("personal_mb", 100)) * MB,
            reserved_local_parts=reserved,
            listeners=listeners,
            smtp=_checked_smtp(_section(SmtpLimits, raw.get("smtp", {}), {"max_message_mb": MB})),
            auth=_section(AuthLimits, raw.get("auth", {}), {}),
            imap=_section(ImapLimits, raw.get("imap", {}), {}),
            dns=_checked_dns(_section(DnsSettings, raw.get("dns", {}), {})),
            delivery=_checked_delivery(_section(DeliverySettings, raw.get("delivery", {}), {})),
            dkim=_section(DkimSettings, raw.get("dkim", {}), {}),
            inbound=_checked_inbound(_section(InboundChecks, raw.get("inbound", {}), {})),
            rate=_section(RateLimits, raw.get("rate", {}), {}),
            policy=_policy(raw.get("policy", {})),
            workflow=_section(WorkflowSettings, raw.get("workflow", {}), {}),
        )
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"Giá trị cấu hình không hợp lệ trong {data_dir / CONFIG_FILE}: {exc}",
            f"Invalid configuration value in {data_dir / CONFIG_FILE}: {exc}",
        ) from None


def _checked_smtp(limits: SmtpLimits) -> SmtpLimits:
    for network in limits.trusted_relays:
        ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
    return limits


def _checked_delivery(settings: DeliverySettings) -> DeliverySettings:
    if settings.smarthost_tls not in ("starttls", "tls", "opportunistic"):
        raise ValueError(f"smarthost_tls = {settings.smarthost_tls!r}")
    if settings.smarthost:
        host, sep, port = settings.smarthost.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"smarthost = {settings.smarthost!r} (host:port)")
    return settings


def _checked_dns(settings: DnsSettings) -> DnsSettings:
    if settings.dmarc_policy not in ("none", "quarantine", "reject"):
        raise ValueError(f"dmarc_policy = {settings.dmarc_policy!r} (none, quarantine, reject)")
    if settings.mta_sts_mode not in ("testing", "enforce", "none"):
        raise ValueError(f"mta_sts_mode = {settings.mta_sts_mode!r} (testing, enforce, none)")
    return settings


def _checked_inbound(checks: InboundChecks) -> InboundChecks:
    if checks.dmarc_reject not in ("reject", "junk"):
        raise ValueError(f"dmarc_reject = {checks.dmarc_reject!r} (reject or junk)")
    return checks


def _policy(values: dict[str, Any]) -> PolicySettings:
    """[policy] with its [policy.submission] and [policy.inbound] tables."""
    values = dict(values)
    directions = {}
    for name, default in (("submission", RuleActions()), ("inbound", INBOUND_ACTIONS)):
        table = values.pop(name, {})
        if not isinstance(table, dict):
            raise ValueError(f"[policy.{name}] must be a table")
        for rule, action in table.items():
            if rule not in RULE_ACTIONS:
                known = ", ".join(POLICY_RULES)
                raise ValueError(f"[policy.{name}] {rule}: unknown rule ({known})")
            if action not in RULE_ACTIONS[rule]:
                choices = " | ".join(RULE_ACTIONS[rule])
                raise ValueError(f"[policy.{name}] {rule} = {action!r} ({choices})")
        directions[name] = replace(default, **table)
    settings: PolicySettings = _section(
        PolicySettings, values, {"max_attachments_mb": MB}, nested=("submission", "inbound")
    )
    return replace(settings, submission=directions["submission"], inbound=directions["inbound"])


def _section(
    kind: Any, values: dict[str, Any], scaled: dict[str, int], nested: tuple[str, ...] = ()
) -> Any:
    """A limits dataclass from a TOML table; ``scaled`` maps a key given in larger units
    (``max_message_mb``) to its multiplier onto the field without the suffix; ``nested``
    fields are not plain values (the caller fills them)."""
    known = {f.name: f for f in fields(kind) if f.name not in nested}
    options: dict[str, Any] = {}
    for key, value in values.items():
        name, factor = key, 1
        for suffix_key, multiplier in scaled.items():
            if key == suffix_key:
                name, factor = key.removesuffix("_mb") + "_bytes", multiplier
        default = getattr(kind(), name, None)
        if name in known and isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{key} = {value!r} (true or false)")
            options[name] = value
            continue
        if name in known and isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError(f"{key} = {value!r} (a string)")
            options[name] = value
            continue
        if name in known and isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"{key} = {value!r} (a list of strings)")
            options[name] = tuple(value)
            continue
        if name not in known or isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{key} = {value!r}")
        if value <= 0:
            raise ValueError(f"{key} = {value!r} (must be positive)")
        options[name] = type(getattr(kind(), name))(value * factor)
    return kind(**options)


def render_config(domain: str, *, postmaster: str = "") -> str:
    """The commented govmail.toml that ``govmail init`` writes."""
    listen = "\n".join(f'{name} = "{addr}"' for name, addr in DEV_LISTENERS.items())
    reserved = ", ".join(f'"{r}"' for r in sorted(DEFAULT_RESERVED))
    return f"""# govmail configuration. Paths are relative to this data directory.

[mail]
# The province's mail domain (R1); alias domains receive mail for the same names.
domain = "{domain}"
alias_domains = []
hostname = "mail.{domain}"
# Local parts nobody may take (RFC 2142 role addresses and the system's own).
reserved = [{reserved}]
# The mailbox (address or local part) that receives mail to postmaster@ and abuse@,
# which every mail domain must accept (RFC 5321, RFC 2142). Usually the centre's.
postmaster = "{postmaster}"

[database]
# Empty: SQLite in this directory. For PostgreSQL, e.g.
# url = "postgresql+asyncpg://govmail@db.example/govmail"
# (GOVMAIL_DATABASE_URL overrides this.)
url = ""

[tls]
# Replace with the province's certificate and key (PEM) for production.
cert = "tls/cert.pem"
key = "tls/key.pem"

[quota]
# R17: at least 500 MB per agency mailbox and 100 MB per personal mailbox.
agency_mb = 500
personal_mb = 100

[smtp]
# Largest message accepted (MB), recipients per message, connections per client address,
# idle timeout (seconds).
max_message_mb = 25
max_recipients = 500
max_connections_per_ip = 100
timeout_s = 300
# Error replies after which a session is cut off (stops address harvesting).
max_errors = 20
# The MX refuses mail from the province's own addresses unless it comes from these
# networks (CIDR, e.g. ["10.1.2.0/24"]); officials send through submission with a login.
trusted_relays = []

[auth]
# Brute-force throttling for SMTP, IMAP and the web: failures counted per client address
# and per login over window_s seconds; each failure is answered a little later.
window_s = 900
max_failures_per_ip = 20
max_failures_per_account = 10
delay_base_s = 0.5
delay_max_s = 8

[imap]
# Connections per user (Dovecot's default is 10 per user and address) and per client
# address; a session idle this long is logged out (RFC 9051: at least 30 minutes).
max_connections_per_user = 20
max_connections_per_ip = 1000
idle_timeout_s = 1800

[dns]
# Name servers ("HOST" or "HOST:PORT"); empty: the system's (/etc/resolv.conf).
nameservers = []
timeout_s = 5
# DMARC policy published for our domains: "none" (reports only) until the reports show
# all the province's mail signed, then "quarantine" or "reject".
dmarc_policy = "none"
# MTA-STS policy of our MX: "testing" until the TLS certificate is one senders trust,
# then "enforce".
mta_sts_mode = "testing"

[delivery]
# Outbound mail: MX lookup, opportunistic STARTTLS (MTA-STS honoured), retries with
# growing delays, a delay warning to the sender after delay_warning_s and a bounce
# after bounce_after_s seconds. A smarthost ("host:port") takes all outbound mail
# instead, with STARTTLS required ("starttls"), implicit TLS ("tls") or "opportunistic".
smarthost = ""
smarthost_user = ""
smarthost_password = ""
smarthost_tls = "starttls"
port = 25
max_connections = 50
max_per_domain = 10
connect_timeout_s = 30
timeout_s = 300
retry_min_s = 300
retry_max_s = 4000
delay_warning_s = 14400
bounce_after_s = 432000
max_hops = 50
mta_sts = true
mta_sts_port = 443
ca_file = ""

[dkim]
# Outgoing mail is signed with data/dkim/<domain>.<selector>.key; publish the records
# that 'govmail dns records' prints.
selector = "govmail"
sign = true

[inbound]
# Checks on mail from the Internet, recorded in Authentication-Results. A message that
# fails DMARC where its domain asks for p=reject is refused ("reject") or filed in
# Junk ("junk").
spf = true
dkim = true
dmarc = true
dmarc_reject = "reject"

[rate]
# R23: recipients one account may send to per window_s seconds; past the limit,
# submission answers 451 4.7.1 and the postmaster is alerted.
window_s = 3600
max_recipients = 2000
max_external_recipients = 300

[policy]
# What officials may send (R11–R18). Attachments of one sending: at most
# max_attachments_mb (R18), in the allowed formats, recognised by content (R11; add
# "zip" to accept archives whose members are all allowed). trust_roots: PEM files of
# the CAs whose PDF signatures count (R16), e.g. the national root CA and the VGCA root.
# crl_files: their revocation lists. document_types: a TOML file replacing the built-in
# list of document types (R14).
max_attachments_mb = 10
allowed_formats = [{", ".join(f'"{f}"' for f in DEFAULT_FORMATS)}]
trust_roots = []
crl_files = []
document_types = ""

[policy.submission]
# Each rule: "reject" | "warn" | "off" (unicode: "convert" | "warn" | "off";
# signatures: "inform" | "off"). Mail officials send (SMTP submission, webmail).
size = "reject"
formats = "reject"
classified = "reject"
unicode = "convert"
subject = "reject"
signatures = "inform"

[policy.inbound]
# Mail from the Internet to the MX.
size = "off"
formats = "off"
classified = "warn"
unicode = "convert"
subject = "off"
signatures = "inform"

[workflow]
# Agencies' requests (Mẫu 01–03, password resets, delegations). The centre decides each
# within sla_working_days working days (weekends, Vietnamese holidays and the province's
# extra_holidays ["YYYY-MM-DD", ...] do not count). Before a mailbox is deleted its mail
# is exported to archive_dir. place and addressee fill the forms' PDF.
sla_working_days = 3
archive_dir = "archives"
place = "Khánh Hòa"
addressee = "Sở Thông tin và Truyền thông"
extra_holidays = []

[listen]
# Development ports on loopback. Production: smtp = "0.0.0.0:25", submission = "0.0.0.0:587",
# submissions = "0.0.0.0:465", imap = "0.0.0.0:143", imaps = "0.0.0.0:993", web behind a proxy.
{listen}
"""
