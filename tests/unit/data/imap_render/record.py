"""Records Dovecot's FETCH replies for the render corpus into dovecot.json (run by hand).

Usage: .venv/bin/python tests/unit/data/imap_render/record.py [user] — APPENDs every message
of CORPUS to the user's INBOX on the reference stack (127.0.0.1:11143, emptied first), FETCHes
each item one at a time over a raw socket, and stores the exact bytes Dovecot sent for the
item's value. The unit tests then run without Dovecot.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import sys
from pathlib import Path
from typing import Any

from govmail.core.mime import analyze_message

HERE = Path(__file__).parent
HOST, PORT = "127.0.0.1", 11143


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


B64_TEXT = base64.encodebytes("Xin chào, đây là báo cáo.\r\nDòng hai.\r\n".encode()).decode()
PDF = base64.encodebytes(b"%PDF-1.4\n\x00\x01\x02\xff binary \r\n tail").decode()

CORPUS: dict[str, bytes] = {
    "simple": crlf("From: a@b.c\nSubject: hi\n\nhello\n"),
    "mixed_vietnamese": crlf(
        'From: "Nguyễn Văn A" <a@so.gov.vn>\nTo: b@so.gov.vn\n'
        "Subject: =?UTF-8?B?QsOhbyBjw6FvIHTDrW5oIGjDrG5o?=\n"
        "Date: Mon, 3 Jun 2024 10:00:00 +0700\nMessage-ID: <m1@so.gov.vn>\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="==outer=="\n\n'
        "This is a multi-part message.\n--==outer==\n"
        'Content-Type: multipart/alternative; boundary="alt"\n\n--alt\n'
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n"
        "Xin ch=C3=A0o,=20\nb=C3=A1o c=C3=A1o d=C3=A0i qu=\n=C3=A1 d=C3=B2ng.  \n--alt\n"
        "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes("<p>Xin chào</p>\r\n".encode()).decode()
        + "--alt--\n\n--==outer==\n"
        'Content-Type: application/pdf; name="=?UTF-8?B?QsOhbyBjw6FvLnBkZg==?="\n'
        "Content-Disposition: attachment;\n filename*=utf-8''B%C3%A1o%20c%C3%A1o.pdf; size=42\n"
        "Content-Transfer-Encoding: base64\nContent-ID: <pdf@so>\nContent-Description: B=C3=A1o\n"
        "Content-Language: vi, en-US\nContent-Location: http://so.gov.vn/a.pdf\n"
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n\n" + PDF + "--==outer==\n"
        "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
        "Content-Disposition: attachment; filename*0*=utf-8''T%E1%BB%9D; filename*1*=%20tr%C3%ACnh;"
        '\n filename*2=".docx"\n\nAAEC\n--==outer==\n'
        'Content-Type: TEXT/Plain; CHARSET="UTF-8"; Format=Flowed\n'
        "Content-Transfer-Encoding: 8BIT\nContent-Disposition: INLINE\n\n"
        "Tám bít thô\n--==outer==--\nepilogue\n"
    ),
    "forwarded_nested": crlf(
        "From: a@b.c\nTo: d@e.f\nSubject: Fwd\nMIME-Version: 1.0\n"
        "Content-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\n\nsee attached\n--ZZ\n"
        'Content-Type: message/rfc822; name="fwd.eml"\nContent-Disposition: attachment\n\n'
        "From: inner@x.y\nSubject: inner\nDate: Tue, 4 Jun 2024 08:00:00 +0700\n"
        "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=YY\n\n--YY\n\nt\n"
        "--YY\nContent-Type: message/rfc822\n\nFrom: deep@x.y\nSubject: deep\n"
        "Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: quoted-printable"
        "\n\nd=E9j=E0\n--YY\nContent-Type: text/html\n\n<b>h</b>\n--YY--\n\n--ZZ--\n"
    ),
    "missing_boundary": crlf(
        "From: a@b.c\nMIME-Version: 1.0\nContent-Type: multipart/mixed\n\n"
        "pre\n--XX\nhello\n--XX--\n"
    ),
    "unclosed": crlf(
        "From: a@b.c\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=ZZ\n\n--ZZ\n"
        "Content-Type: text/plain\n\nhello\n--ZZ\nContent-Type: text/plain\n"
        "Content-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQ=\n"
    ),
    "no_content_type": crlf(
        "From: a@b.c\nMIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9\n"
    ),
    "no_subtype": crlf("From: a@b.c\nMIME-Version: 1.0\nContent-Type: text\n\nx\n"),
    "headers_8bit": crlf(
        'From: Nguyễn Thị Bé <be@so.gov.vn>\nTo: "Trần \\"Q\\" B" <q@r.s>, plain@x.y\n'
        "Subject: Báo cáo   tuần\t 23\nDate: Mon, 3 Jun 2024 10:00:00 +0700\n"
        'In-Reply-To: <p@q>\nMessage-ID: <x\\"y@z>\n\nbody\n'
    ),
    "quotes_and_escapes": crlf(
        'From: "a\\\\b" <a@b.c>\nSubject: say "hi" \\ and \\ "more" "even" "more"\n'
        'Cc: "x\\"y" <c@d.e>\nMessage-ID: <"quoted"@b.c>\n\nx\n'
    ),
    "long_subject": crlf("From: a@b.c\nSubject: " + "word " * 300 + "end\n continued\n\nx\n"),
    "groups": crlf(
        'From: a@b.c\nTo: Team: m1@x.y, "Two" <m2@x.y>;, solo@x.y\nCc: undisclosed-recipients:;\n'
        "Bcc: Empty:;, (comment) Name <@route,@r2:r@x.y>\nReply-To: nodomain\n\nx\n"
    ),
    "missing_from": crlf("To: a@b.c\nSubject: no from\nSender: s@b.c\n\nx\n"),
    "empty_body": crlf("From: a@b.c\nSubject: empty\n\n"),
    "no_blank_line": crlf("From: a@b.c\nSubject: none\n"),
    "binary_parts": crlf(
        "From: a@b.c\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        + B64_TEXT
        + "--B\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: Quoted-Printable\n\n"
        "a=3Db =C3=A9t=C3=A9=\nsoft  \ntrailing =\t \nbad=ZZ=4 end=\n--B\n"
        "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
        "AAEC/wAB\nAg==\n--B\nContent-Type: application/octet-stream\n"
        "Content-Transfer-Encoding: x-uuencode\n\nbegin 644 a\n`\nend\n--B\n"
        "Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
        "aGVs bG8g!d29y\nbGQ\n--B\nContent-Type: text/plain\nContent-Transfer-Encoding: binary\n\n"
        "raw\n--B--\n"
    ),
    "digest": crlf(
        "From: a@b.c\nMIME-Version: 1.0\nContent-Type: multipart/digest; boundary=ZZ\n\n--ZZ\n\n"
        "From: d@e.f\nSubject: d1\n\nbody1\n--ZZ\nContent-Type: text/plain\n\nnot a message\n"
        "--ZZ\n\nFrom: g@h.i\nSubject: d3\nContent-Type: multipart/mixed; boundary=Q\n\n--Q\n\n"
        "q1\n--Q--\n--ZZ--\n"
    ),
    "rfc822_base64": crlf(
        "From: a@b.c\nMIME-Version: 1.0\nContent-Type: message/rfc822\n"
        "Content-Transfer-Encoding: base64\n\nRnJvbTogeEB5LnoNClN1YmplY3Q6IGkNCg0KYm9keQ0K\n"
    ),
    "rfc822_top": crlf(
        "From: a@b.c\nSubject: outer\nMIME-Version: 1.0\nContent-Type: message/rfc822\n\n"
        "From: x@y.z\nSubject: inner\nX-Multi: one\n two\n\nbody\n"
    ),
    "header_fields": crlf(
        "Received: from x\n\tby y\nFrom: a@b.c\nsubject: one\nX-A: 1\nSUBJECT: two\n"
        "X-Empty:\nX-A:  2\n  continued\nTo: t@u.v\n\nbody\n"
    ),
    "params_odd": crlf(
        "From: a@b.c\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=P\n\n--P\n"
        'Content-Type: application/pdf; name="Báo cáo.pdf"\n'
        'Content-Disposition: attachment; filename="Báo cáo.pdf"\n\nx\n--P\n'
        'Content-Type: image/png; name="a\\"b\\\\c.png"\nContent-ID: <\xe1@x>\n'
        "Content-Description: Ảnh\nContent-Location: http://x/ả\n\ny\n--P\n"
        "Content-Type: application/x-thing; Name*=us-ascii'en'a%20b; FOO=Bar\n"
        'Content-Disposition: Attachment; FileName="A.TXT"\nContent-Language: VI\n\nz\n--P--\n'
    ),
    "quoting_limits": crlf(
        'From: "  spaced  name " <a@b.c>\nSubject: two  spaces\n'
        'Message-ID: <a"b"c"d"@x>\nIn-Reply-To: <a"b"c"d"e"@x>\n'
        "Date: " + "d" * 2000 + '\nTo: "tab\there" <t@u.v>, "" <e@u.v>, <@r:x@y>\n\nx\n'
    ),
    "binary_header_order": crlf(
        "From: a@b.c\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
        "Content-Transfer-Encoding: base64\nX-Before: 1\nContent-Type: text/plain\nX-After:\n 2\n\n"
        "aGk=\n--B\nContent-Type: text/plain\n\nplain\n--B\n"
        "Content-Type: multipart/alternative; boundary=C\nContent-Transfer-Encoding: 7bit\n\n"
        "--C\nContent-Transfer-Encoding: QUOTED-PRINTABLE\nContent-ID: <i>\n"
        "Content-Type: text/plain\n\na=3D\n--C--\n--B--\n"
    ),
    "long_ascii_subject": crlf(
        "From: a@b.c\nSubject: " + "s" * 5000 + "\nCc: (only comment)\n\nx\n"
    ),
    "binary_cte_first": crlf(
        "From: a@b.c\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n\n--B\n"
        "Content-Transfer-Encoding: base64\nX-Before: 1\nContent-Type: text/plain\nX-After:\n 2\n\n"
        "aGk=\n--B\nContent-Transfer-Encoding:\n quoted-printable\n\na=3D\n--B\n"
        "Content-Type: multipart/alternative; boundary=C\nContent-Transfer-Encoding: base64\n\n"
        "--C\nContent-Transfer-Encoding: BASE64\n\nAA==\n--C--\n--B--\n"
    ),
}


class Client:
    """A minimal IMAP client that returns the raw bytes of each response."""

    def __init__(self) -> None:
        self.sock = socket.create_connection((HOST, PORT))
        self.buf = b""
        self.tag = 0
        self._line()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line + b"\r\n"

    def _exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self.sock.recv(65536)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def command(self, text: bytes, literal: bytes | None = None) -> tuple[list[bytes], bytes]:
        self.tag += 1
        tag = b"t%d" % self.tag
        if literal is not None:
            self.sock.sendall(tag + b" " + text + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        else:
            self.sock.sendall(tag + b" " + text + b"\r\n")
        untagged: list[bytes] = []
        current = b""
        while True:
            line = self._line()
            current += line
            m = re.search(rb"~?\{(\d+)\}\r\n$", line)
            if m:
                current += self._exact(int(m[1]))
                continue
            if current.startswith(tag + b" "):
                return untagged, current
            untagged.append(current)
            current = b""


def part_numbers(node: dict[str, Any], prefix: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if "parts" in node:
        for i, child in enumerate(node["parts"], 1):
            number = f"{prefix}{i}"
            out.append((number, child))
            inner = child["message"]["structure"] if "message" in child else child
            if "parts" in inner:
                out.extend(part_numbers(inner, number + "."))
    elif not prefix:
        out.append(("1", node))
    return out


def items_for(raw: bytes) -> list[str]:
    root = analyze_message(raw).structure
    items = [
        "ENVELOPE",
        "BODYSTRUCTURE",
        "BODY",
        "RFC822.SIZE",
        "BODY[]",
        "BODY[HEADER]",
        "BODY[TEXT]",
        "BODY[HEADER.FIELDS (SUBJECT X-A From)]",
        "BODY[HEADER.FIELDS.NOT (Subject Received)]",
        "BODY[HEADER.FIELDS (X-Nothing)]",
        "BODY[]<0.10>",
        "BODY[TEXT]<3.4>",
        "BODY[]<100000.5>",
        "BINARY[]",
        "BINARY.SIZE[]",
        "BINARY[TEXT]",
        "BODY[9]",
        "BODY[9.MIME]",
        "BODY[9.TEXT]",
        "BODY[1.9]",
        "BINARY[9]",
        "BINARY.SIZE[9]",
        "BODY[1.HEADER]",
        "BODY[1.TEXT]",
        "BODY[0]",
    ]
    if "message" in root:
        items += ["BODY[1.HEADER.FIELDS (Subject)]", "BODY[1.1]", "BODY[1.1.MIME]", "BODY[2]"]
    for number, node in part_numbers(root):
        items += [f"BODY[{number}]", f"BODY[{number}.MIME]", f"BINARY[{number}]"]
        items += [f"BINARY.SIZE[{number}]", f"BODY[{number}]<1.3>", f"BINARY[{number}]<1.3>"]
        if "message" in node:
            items += [f"BODY[{number}.HEADER]", f"BODY[{number}.TEXT]"]
            items += [f"BODY[{number}.HEADER.FIELDS (Subject)]", f"BODY[{number}.1]"]
            items += [f"BODY[{number}.HEADER.FIELDS.NOT (Subject)]", f"BODY[{number}.1.MIME]"]
    return list(dict.fromkeys(items))


def peek(item: str) -> str:
    for name in ("BODY[", "BINARY["):
        if item.startswith(name):
            return name[:-1] + ".PEEK[" + item[len(name) :]
    return item


def value_of(response: bytes) -> bytes:
    """The value after the item name in one '* n FETCH (NAME value)' response."""
    head = re.match(rb"\* \d+ FETCH \(", response)
    if head is None:
        raise ValueError(response)
    pos = head.end()
    bracket = response.find(b"[", pos)
    space = response.find(b" ", pos)
    if 0 <= bracket < space:
        pos = response.index(b"]", bracket) + 1
        if response[pos : pos + 1] == b"<":
            pos = response.index(b">", pos) + 1
        space = pos
    if not response.endswith(b")\r\n"):
        raise ValueError(response)
    return response[space + 1 : -3]


def encode(data: bytes) -> Any:
    try:
        return data.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode()}


def main() -> None:
    user = sys.argv[1] if len(sys.argv) > 1 else "user95@ref.test"
    client = Client()
    client.command(b'LOGIN "' + user.encode() + b'" "secret"')
    client.command(b"SELECT INBOX")
    client.command(b"STORE 1:* +FLAGS.SILENT (\\Deleted)")
    client.command(b"EXPUNGE")
    result: dict[str, Any] = {}
    for seq, (name, raw) in enumerate(CORPUS.items(), 1):
        _, tagged = client.command(b"APPEND INBOX", raw)
        if b" OK " not in tagged:
            raise RuntimeError(tagged)
        fetched: dict[str, Any] = {}
        for item in items_for(raw):
            untagged, tagged = client.command(b"FETCH %d (%s)" % (seq, peek(item).encode()))
            fetches = [r for r in untagged if re.match(rb"\* \d+ FETCH", r)]
            if b" OK " not in tagged:
                fetched[item] = {"tagged": tagged.split(b" ", 1)[1].decode().rstrip()}
            elif len(fetches) != 1:
                raise RuntimeError((item, untagged, tagged))
            else:
                fetched[item] = encode(value_of(fetches[0]))
        result[name] = {"raw": encode(raw), "fetch": fetched}
    client.command(b"LOGOUT")
    out = HERE / "dovecot.json"
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(result)} messages")


if __name__ == "__main__":
    main()
