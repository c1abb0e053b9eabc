"""What mail senders and mail clients fetch over HTTP: the MTA-STS policy (RFC 8461) and
the account settings of Thunderbird's autoconfig and Outlook's autodiscover."""

from __future__ import annotations

import re
from xml.parsers import expat
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from govmail.config import Config
from govmail.delivery.dkim import our_domains
from govmail.ops.dns_records import CLIENT_PORTS, mta_sts_policy

XML = "application/xml; charset=utf-8"
MAX_REQUEST_BYTES = 16 * 1024  # an autodiscover request is a few hundred bytes
_ADDRESS = re.compile(r"[^@\s<>\"']+@([A-Za-z0-9.-]+)")
_AUTODISCOVER_RESPONSE = (
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
)


def wellknown_router(cfg: Config) -> APIRouter:
    """The routes for ``cfg``'s domains (served at mta-sts.<domain>, autoconfig.<domain>
    and autodiscover.<domain>, which ``govmail dns records`` points at this host)."""
    router = APIRouter()
    domains = set(our_domains(cfg))

    def ours(address: str) -> bool:
        found = _ADDRESS.fullmatch(address.strip())
        return found is not None and found.group(1).lower() in domains

    @router.get("/.well-known/mta-sts.txt")
    async def mta_sts() -> PlainTextResponse:
        return PlainTextResponse(mta_sts_policy(cfg))

    @router.get("/.well-known/autoconfig/mail/config-v1.1.xml")
    @router.get("/mail/config-v1.1.xml")
    async def autoconfig(emailaddress: str = "") -> Response:
        """Thunderbird (and K-9, Evolution) ask autoconfig.<domain> with the address."""
        if emailaddress and not ours(emailaddress):
            return Response(status_code=404)
        return Response(_thunderbird_config(cfg), media_type=XML)

    @router.post("/autodiscover/autodiscover.xml")
    @router.post("/Autodiscover/Autodiscover.xml")
    async def autodiscover(request: Request) -> Response:
        """Outlook's POX autodiscover: the request names the address; the answer gives
        IMAP and SMTP settings for it. Only the address is read from the request."""
        body = b""
        async for chunk in request.stream():  # read no more than a request can need
            body += chunk
            if len(body) > MAX_REQUEST_BYTES:
                return Response("Request too large", status_code=413)
        address = _requested_address(body)
        if address is None:
            return Response("Bad autodiscover request", status_code=400)
        if not ours(address):
            return Response(status_code=404)
        return Response(_outlook_settings(cfg, address.strip()), media_type=XML)

    return router


def _requested_address(body: bytes) -> str | None:
    """The <EMailAddress> of an autodiscover request, or None if the body is not one.

    Parsed with expat directly so that a document type declaration stops the parse at
    its start: only a DTD can declare the entities of "billion laughs" and external-entity
    attacks, and no autodiscover request has one.
    """
    parser = expat.ParserCreate(namespace_separator=" ")
    inside = False
    text: list[str] = []

    def refuse_dtd(*_args: object) -> None:
        raise ValueError("document type declaration")

    def start(name: str, _attributes: dict[str, str]) -> None:
        nonlocal inside
        inside = name.rpartition(" ")[2] == "EMailAddress" and not text

    def end(_name: str) -> None:
        nonlocal inside
        inside = False

    def characters(data: str) -> None:
        if inside:
            text.append(data)

    parser.StartDoctypeDeclHandler = refuse_dtd
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(body, True)
    except (expat.ExpatError, ValueError):
        return None
    return "".join(text) or None


def _thunderbird_config(cfg: Config) -> str:
    host = escape(cfg.hostname)
    domains = "\n".join(f"    <domain>{escape(d)}</domain>" for d in our_domains(cfg))
    servers = [
        ("incomingServer", "imap", CLIENT_PORTS["imaps"], "SSL"),
        ("incomingServer", "imap", CLIENT_PORTS["imap"], "STARTTLS"),
        ("outgoingServer", "smtp", CLIENT_PORTS["submissions"], "SSL"),
        ("outgoingServer", "smtp", CLIENT_PORTS["submission"], "STARTTLS"),
    ]
    server_xml = "".join(
        f"""    <{kind} type="{protocol}">
      <hostname>{host}</hostname>
      <port>{port}</port>
      <socketType>{socket}</socketType>
      <authentication>password-cleartext</authentication>
      <username>%EMAILADDRESS%</username>
    </{kind}>
"""
        for kind, protocol, port, socket in servers
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="{escape(cfg.domain)}">
{domains}
    <displayName>Thư điện tử công vụ {escape(cfg.domain)}</displayName>
    <displayShortName>{escape(cfg.domain)}</displayShortName>
{server_xml}  </emailProvider>
</clientConfig>
"""


def _outlook_settings(cfg: Config, address: str) -> str:
    host, login = escape(cfg.hostname), escape(address)
    protocols = [("IMAP", CLIENT_PORTS["imaps"]), ("SMTP", CLIENT_PORTS["submissions"])]
    protocol_xml = "".join(
        f"""      <Protocol>
        <Type>{kind}</Type>
        <Server>{host}</Server>
        <Port>{port}</Port>
        <LoginName>{login}</LoginName>
        <DomainRequired>off</DomainRequired>
        <SPA>off</SPA>
        <SSL>on</SSL>
        <AuthRequired>on</AuthRequired>
      </Protocol>
"""
        for kind, port in protocols
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
  <Response xmlns="{_AUTODISCOVER_RESPONSE}">
    <User><DisplayName>{login}</DisplayName></User>
    <Account>
      <AccountType>email</AccountType>
      <Action>settings</Action>
{protocol_xml}    </Account>
  </Response>
</Autodiscover>
"""
