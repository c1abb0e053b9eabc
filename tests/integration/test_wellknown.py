"""What senders and mail clients fetch from the web server: the MTA-STS policy and the
autoconfig/autodiscover account settings, over real HTTP from ``govmail serve``."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.integration.clihelp import cli
from tests.integration.mailserver import AN, RunningServer, served, set_option

HOST = "mail.khanhhoa.gov.vn"
OUTLOOK_REQUEST = """<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>{address}</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>
"""
RESPONSE_NS = {
    "r": "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
}


def fetch(server: RunningServer, path: str, body: bytes | None = None) -> tuple[int, str, bytes]:
    """(status, content type, body) of a GET, or of a POST when ``body`` is given."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.port('web')}{path}",
        data=body,
        headers={"Content-Type": "text/xml"} if body is not None else {},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def mta_sts_id(data_dir: Path) -> str:
    result = cli(data_dir, "dns", "records", "--json")
    assert result.exit_code == 0, result.output
    (record,) = [r for r in json.loads(result.stdout) if r["name"] == "_mta-sts.khanhhoa.gov.vn"]
    return str(record["value"])


def test_mta_sts_policy_is_served_and_its_id_follows_it(server: RunningServer) -> None:
    status, content_type, body = fetch(server, "/.well-known/mta-sts.txt")

    assert status == 200 and content_type.startswith("text/plain")
    assert body == (
        b"version: STSv1\r\nmode: testing\r\nmx: mail.khanhhoa.gov.vn\r\nmax_age: 604800\r\n"
    )
    testing_id = mta_sts_id(server.data_dir)

    server.stop()
    set_option(server.data_dir, "mta_sts_mode", "enforce", section="dns")
    with served(server.data_dir) as again:
        _, _, enforced = fetch(again, "/.well-known/mta-sts.txt")

    assert b"mode: enforce\r\n" in enforced
    assert mta_sts_id(server.data_dir) != testing_id


def test_thunderbird_finds_imap_and_smtp_with_tls(server: RunningServer) -> None:
    for path in (
        f"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress={AN}",
        "/mail/config-v1.1.xml",
    ):
        status, content_type, body = fetch(server, path)

        assert status == 200 and "xml" in content_type
        provider = ET.fromstring(body).find("emailProvider")
        assert provider is not None
        assert [d.text for d in provider.findall("domain")] == ["khanhhoa.gov.vn"]
        found = [
            (
                s.tag,
                s.get("type"),
                s.findtext("hostname"),
                s.findtext("port"),
                s.findtext("socketType"),
                s.findtext("username"),
            )
            for s in provider
            if s.tag in ("incomingServer", "outgoingServer")
        ]
        assert found == [
            ("incomingServer", "imap", HOST, "993", "SSL", "%EMAILADDRESS%"),
            ("incomingServer", "imap", HOST, "143", "STARTTLS", "%EMAILADDRESS%"),
            ("outgoingServer", "smtp", HOST, "465", "SSL", "%EMAILADDRESS%"),
            ("outgoingServer", "smtp", HOST, "587", "STARTTLS", "%EMAILADDRESS%"),
        ]


def test_autoconfig_does_not_answer_for_other_domains(server: RunningServer) -> None:
    status, _, _ = fetch(
        server, "/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a@gmail.com"
    )

    assert status == 404


def test_outlook_autodiscover_gives_imap_and_smtp_for_the_address(server: RunningServer) -> None:
    status, content_type, body = fetch(
        server, "/autodiscover/autodiscover.xml", OUTLOOK_REQUEST.format(address=AN).encode()
    )

    assert status == 200 and "xml" in content_type
    account = ET.fromstring(body).find("r:Response/r:Account", RESPONSE_NS)
    assert account is not None
    assert account.findtext("r:Action", namespaces=RESPONSE_NS) == "settings"
    protocols = {
        p.findtext("r:Type", namespaces=RESPONSE_NS): (
            p.findtext("r:Server", namespaces=RESPONSE_NS),
            p.findtext("r:Port", namespaces=RESPONSE_NS),
            p.findtext("r:SSL", namespaces=RESPONSE_NS),
            p.findtext("r:LoginName", namespaces=RESPONSE_NS),
        )
        for p in account.findall("r:Protocol", RESPONSE_NS)
    }
    assert protocols == {"IMAP": (HOST, "993", "on", AN), "SMTP": (HOST, "465", "on", AN)}


def test_autodiscover_refuses_other_domains_and_malformed_requests(
    server: RunningServer,
) -> None:
    other = OUTLOOK_REQUEST.format(address="someone@gmail.com").encode()
    assert fetch(server, "/Autodiscover/Autodiscover.xml", other)[0] == 404
    assert fetch(server, "/autodiscover/autodiscover.xml", b"<Autodiscover><Request>")[0] == 400
    no_address = OUTLOOK_REQUEST.format(address="").encode()
    assert fetch(server, "/autodiscover/autodiscover.xml", no_address)[0] == 400
    padded = OUTLOOK_REQUEST.format(address=AN + " " * 100_000).encode()
    assert fetch(server, "/autodiscover/autodiscover.xml", padded)[0] == 413


def test_autodiscover_refuses_entity_tricks_without_expanding_them(
    server: RunningServer, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("mat-khau-bi-mat", encoding="utf-8")
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10 if i else "ha"}">' for i in range(10))
    attacks = [
        # Harmless here, but any DTD is refused: expat alone would expand this one.
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY d "khanhhoa.gov.vn">]>'
        "<Autodiscover><Request><EMailAddress>nvan@&d;</EMailAddress></Request></Autodiscover>",
        # "Billion laughs": ten levels of ten-fold expansion, 10^10 copies.
        f'<?xml version="1.0"?><!DOCTYPE a [{laughs}]>'
        "<Autodiscover><Request><EMailAddress>&l9;@khanhhoa.gov.vn</EMailAddress>"
        "</Request></Autodiscover>",
        # An external entity reading a file of the server.
        f'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<Autodiscover><Request><EMailAddress>&x;</EMailAddress></Request></Autodiscover>",
    ]
    for attack in attacks:
        started = time.monotonic()
        status, _, body = fetch(server, "/autodiscover/autodiscover.xml", attack.encode())

        assert status == 400
        assert b"mat-khau" not in body
        assert time.monotonic() - started < 5
    # UTF-16 hides "<!DOCTYPE" from a byte search; the parser still sees it.
    utf16 = attacks[1].replace('version="1.0"', 'version="1.0" encoding="utf-16"')
    assert fetch(server, "/autodiscover/autodiscover.xml", utf16.encode("utf-16"))[0] == 400
