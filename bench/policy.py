"""What the sending policy (R11–R18) costs per message: the rules' own time in-process,
and submission throughput through a real ``govmail serve`` with every rule on vs off,
for plain 4 KB mail and for mail with a 2 MB PDF attachment.

    .venv/bin/python bench/policy.py                 # both, SQLite
    .venv/bin/python bench/policy.py --messages 400 --connections 10
    .venv/bin/python bench/policy.py --skip-server   # the in-process figures only

Prints JSON lines and writes bench/results/policy.json.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.corpus import documents  # noqa: E402

from govmail.config import load_config  # noqa: E402
from govmail.policy.engine import SUBMISSION, Policy  # noqa: E402

GOVMAIL = [sys.executable, "-m", "govmail"]
DOMAIN = "bench.gov.vn"
PASSWORD = "12345678"
SENDER = f"nvan@{DOMAIN}"
RECIPIENT = f"ltbinh@{DOMAIN}"
RULES = ("size", "formats", "classified", "unicode", "subject", "signatures")
RULES_OFF = dict.fromkeys(RULES, "off")
LISTENERS = ("web", "smtp", "submission", "submissions", "imap", "imaps")


def plain_message() -> bytes:
    mail = EmailMessage()
    mail["From"] = SENDER
    mail["To"] = RECIPIENT
    mail["Subject"] = "Báo cáo tình hình thực hiện nhiệm vụ tuần 45"
    mail["Message-ID"] = make_msgid(domain="bench")
    paragraph = (
        "Thực hiện chỉ đạo của Ủy ban nhân dân tỉnh, cơ quan đã triển khai các nhiệm vụ"
        " trọng tâm trong tuần; kết quả cụ thể như sau. "
    )
    mail.set_content((paragraph * 40)[:4000])
    return mail.as_bytes()


def pdf_message() -> bytes:
    mail = EmailMessage()
    mail["From"] = SENDER
    mail["To"] = RECIPIENT
    mail["Subject"] = "Giấy mời họp giao ban"
    mail["Message-ID"] = make_msgid(domain="bench")
    mail.set_content("Kính gửi các đồng chí, xin gửi giấy mời kèm theo.\n")
    lines = ["UBND TỈNH KHÁNH HÒA", "Số: 123/GM-UBND", "GIẤY MỜI", "Họp giao ban tuần"]
    pdf = documents.pdf(lines, filler_bytes=2 * 1024 * 1024)
    mail.add_attachment(pdf, maintype="application", subtype="pdf", filename="Giấy mời.pdf")
    return mail.as_bytes()


def run(*args: str, data: Path) -> None:
    subprocess.run([*GOVMAIL, *args, "--data", str(data)], check=True, capture_output=True)


def province(base: Path, rules: dict[str, str] | None) -> Path:
    data = base / ("off" if rules else "on")
    run("init", "--domain", DOMAIN, data=data)
    config = data / "govmail.toml"
    text = config.read_text(encoding="utf-8")
    # Quotas large enough for the whole run (set before the mailboxes are created);
    # no DNS (nothing leaves).
    text = text.replace("personal_mb = 100", "personal_mb = 100000")
    text = text.replace("nameservers = []", 'nameservers = ["127.0.0.1:9"]')
    if rules:
        start = text.index("[policy.submission]")
        end = text.index("[policy.inbound]")
        section = "[policy.submission]\n" + "".join(f'{k} = "{v}"\n' for k, v in rules.items())
        text = text[:start] + section + "\n" + text[end:]
    config.write_text(text, encoding="utf-8")
    run("agency", "add", "--name", "Thanh tra tỉnh", "--abbr", "ttr", data=data)
    for name in ("Nguyễn Văn An", "Lê Thị Bình"):
        run("person", "add", "--agency", "ttr", "--name", name, "--password", PASSWORD, data=data)
    return data


def in_process(raw: bytes, rules: str, repeat: int) -> dict[str, float]:
    """ms per ``Policy.evaluate`` of ``raw`` (rules "on": the defaults; "off": none)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = province(Path(tmp), RULES_OFF if rules == "off" else None)
        policy = Policy(load_config(data).policy, data)
    for _ in range(5):
        policy.evaluate(raw, SUBMISSION)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        policy.evaluate(raw, SUBMISSION)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 3),
    }


def throughput(data: Path, raw: bytes, messages: int, connections: int) -> dict[str, float]:
    """Messages/s submitted (250 after the commit) over ``connections`` sessions."""
    args = [*GOVMAIL, "serve", "--data", str(data), "--json"]
    for name in LISTENERS:
        args += [f"--{name}", "127.0.0.1:0"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        port = int(json.loads(proc.stdout.readline())["listening"]["submission"].rsplit(":", 1)[1])
        per_connection = messages // connections

        def client(_: int) -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
                smtp.login(SENDER, PASSWORD)
                for _ in range(per_connection):
                    smtp.sendmail(SENDER, [RECIPIENT], raw)

        with ThreadPoolExecutor(connections) as pool:  # warm-up
            list(pool.map(client, range(connections)))
        cpu_before = _cpu(proc.pid)
        start = time.perf_counter()
        with ThreadPoolExecutor(connections) as pool:
            list(pool.map(client, range(connections)))
        elapsed = time.perf_counter() - start
        cpu = _cpu(proc.pid) - cpu_before
        sent = per_connection * connections
        return {
            "messages": sent,
            "per_s": round(sent / elapsed, 1),
            "server_cpu_ms_per_msg": round(cpu * 1000 / sent, 2),
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--pdf-messages", type=int, default=100)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "policy.json")
    args = parser.parse_args()

    results = []
    for kind, raw, count in (
        ("plain 4 KB", plain_message(), args.messages),
        ("2 MB PDF", pdf_message(), args.pdf_messages),
    ):
        for rules in ("on", "off"):
            row: dict[str, object] = {"message": kind, "rules": rules, "bytes": len(raw)}
            repeat = args.repeat if kind.startswith("plain") else 20
            row["evaluate"] = in_process(raw, rules, repeat)
            if not args.skip_server:
                with tempfile.TemporaryDirectory() as tmp:
                    data = province(Path(tmp), RULES_OFF if rules == "off" else None)
                    row["submission"] = throughput(data, raw, count, args.connections)
            print(json.dumps(row, ensure_ascii=False), flush=True)
            results.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
