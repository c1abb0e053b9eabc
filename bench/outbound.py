"""Figures of the mail-out issue: outbound throughput to a local sink, side by side with Postfix.

The sink is Postfix's ``smtp-sink`` on loopback (it throws messages away and counts them).
For each destination concurrency N (10 and 50) and each run, with M messages (5,000):

- Postfix: a private instance (``tests/integration/postfix.py``: its own config, queue
  and logs under /tmp, the machine's Postfix untouched) relaying everything to
  ``[127.0.0.1]:SINKPORT`` with ``default_destination_concurrency_limit`` and
  ``smtp_destination_concurrency_limit`` = N. The load is injected with ``smtp-source``.
  Two figures:
  * ``drain``: the M messages are injected on hold (nothing leaves), then released at
    once (``postsuper -H ALL; postqueue -f``); messages per second from the release until
    the sink has all M. This is the outbound path alone (queue manager + SMTP client),
    the figure to set beside govmail's workers draining a full queue.
  * ``end_to_end``: injection and relaying at the same time; messages per second from
    the first connect of ``smtp-source`` until the sink has all M.
  Also the peak number of connections open to the sink (from /proc/net/tcp: Postfix's
  connection cache keeps idle ones open beside the N busy ones, so it may exceed N) and
  Postfix's CPU per message (its process tree, reaped children included; ``drain``
  counts the relaying only, ``end_to_end`` the receiving too).
- govmail: ``govmail serve`` (SQLite, a fresh data directory in /tmp) whose outbound
  workers (``src/govmail/delivery/worker.py``) send to the same sink, found through a
  loopback DNS server (MX ``sink.test`` → 127.0.0.1, ``[delivery] port`` = the sink's),
  with ``[delivery] max_connections`` = ``max_per_domain`` = N. Only ``drain``: the M
  messages (distinct, DKIM-signed as in production unless ``--no-dkim``) are submitted
  over SMTP submission while the DNS answers SERVFAIL for sink.test, so each waits in the
  queue (deferred); the server is stopped, ``govmail queue retry --all`` makes them due,
  and the server is started again. Messages per second from the first message the sink
  receives until it has all M (``from_first``), and from the server's ready line
  (``from_ready``: includes the first claim and the first connections); CPU per message
  of the govmail process over the whole drain.

Usage (as root; Postfix installed): ``.venv/bin/python bench/outbound.py [--messages M]
[--concurrency 10,50] [--repeat 3]``. Results are printed as JSON lines and written to
bench/results/outbound.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
sys.path.insert(0, str(REPO))  # the Postfix helpers live with the tests

from tests.integration.clihelp import add_official, cli  # noqa: E402
from tests.integration.dnsserver import dns_server  # noqa: E402
from tests.integration.mailserver import set_option, start_server  # noqa: E402
from tests.integration.postfix import (  # noqa: E402
    PrivatePostfix,
    SmtpSink,
    postfix_missing,
    private_postfix,
    smtp_sink,
)

from smtp_delivery import quiet_machine, split, tree_cpu_s  # noqa: E402

SENDER = "loadgen@khanhhoa.gov.vn"
HELO = "loadgen.khanhhoa.gov.vn"
RECIPIENT = "user{}@sink.test"
INJECT_SESSIONS = 20


class BenchError(Exception):
    """A run that did not get every message to the sink."""


# --- what the sink sees --------------------------------------------------------------


def established(port: int) -> int:
    """TCP connections established to local ``port`` now (IPv4 loopback)."""
    count = 0
    with open("/proc/net/tcp") as fh:
        next(fh)
        for line in fh:
            fields = line.split()
            if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


@contextmanager
def peak_connections(port: int) -> Iterator[list[int]]:
    """Sample the connections to ``port`` every 50 ms while the block runs; the peak is
    in the yielded list's single item afterwards."""
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], established(port))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        done.set()
        thread.join()


# --- Postfix -------------------------------------------------------------------------


def inject(port: int, messages: int, size: int, sessions: int = INJECT_SESSIONS) -> None:
    """Send ``messages`` of ``size`` payload bytes to 127.0.0.1:``port`` with smtp-source
    over ``sessions`` connections, spread over 10 recipients; raises unless every
    smtp-source exits 0 (it aborts on any unexpected reply)."""
    exe = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
    procs = []
    for i, (n_sessions, n_messages) in enumerate(
        zip(split(sessions, 10), split(messages, 10), strict=True), 1
    ):
        if n_messages:
            cmd = [exe, "-4", "-d", "-s", str(max(1, n_sessions)), "-m", str(n_messages)]
            cmd += ["-l", str(size), "-f", SENDER, "-M", HELO, "-t", RECIPIENT.format(i)]
            procs.append(
                subprocess.Popen(
                    [*cmd, f"127.0.0.1:{port}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                )
            )
    failures = [p.communicate()[1].decode(errors="replace") for p in procs if p.wait() != 0]
    if failures:
        raise BenchError(f"smtp-source failed: {failures[0][-500:]}")


def postfix_master(postfix: PrivatePostfix) -> int:
    return int((postfix.base / "queue" / "pid" / "master.pid").read_text().split()[0])


def held(postfix: PrivatePostfix) -> int:
    return sum(len(files) for _, _, files in os.walk(postfix.base / "queue" / "hold"))


def postfix_relay(
    sink: SmtpSink, concurrency: int, messages: int, size: int, *, drain: bool, timeout: float
) -> dict[str, Any]:
    """One Postfix run: M messages relayed to ``sink`` over at most ``concurrency``
    connections, timed as a queue drain or end to end (see the module's docstring)."""
    settings = {
        "default_destination_concurrency_limit": str(concurrency),
        "smtp_destination_concurrency_limit": str(concurrency),
        "default_process_limit": str(concurrency + INJECT_SESSIONS + 50),
        "smtpd_client_connection_count_limit": "0",
        "smtpd_client_message_rate_limit": "0",
        "smtpd_client_connection_rate_limit": "0",
    }
    if drain:
        settings["smtpd_client_restrictions"] = "check_client_access static:HOLD"
    start_count = sink.received
    with private_postfix(relayhost=f"[127.0.0.1]:{sink.port}", settings=settings) as postfix:
        master = postfix_master(postfix)
        injected_at = time.perf_counter()
        cpu_before = tree_cpu_s([master])[master]
        if drain:
            inject(postfix.port, messages, size)
            _wait(lambda: held(postfix) >= messages, 60, "messages on hold")
            cpu_before = tree_cpu_s([master])[master]
        with peak_connections(sink.port) as peak:
            started = time.perf_counter()
            if drain:
                postfix.command("postsuper", "-H", "ALL")
                postfix.command("postqueue", "-f")
            else:
                threading.Thread(
                    target=inject, args=(postfix.port, messages, size), daemon=True
                ).start()
            got = sink.wait_for(start_count + messages, timeout) - start_count
            finished = time.perf_counter()
        cpu = tree_cpu_s([master])[master] - cpu_before
        if got != messages:
            raise BenchError(f"the sink got {got} of {messages} messages:\n{postfix.log()[-2000:]}")
        seconds = finished - started
        return {
            "server": "postfix",
            "mode": "drain" if drain else "end_to_end",
            "concurrency": concurrency,
            "messages": messages,
            "size": size,
            "seconds": round(seconds, 3),
            "messages_per_s": round(messages / seconds, 1),
            "peak_sink_connections": peak[0],
            "server_cpu_ms_per_message": round(1000 * cpu / messages, 3),
            "injection_s": round(started - injected_at, 3) if drain else None,
        }


# --- govmail --------------------------------------------------------------------------

OFFICIAL = "nvan@khanhhoa.gov.vn"


def govmail_drain(
    sink: SmtpSink, concurrency: int, messages: int, size: int, *, dkim: bool, timeout: float
) -> dict[str, Any]:
    """One govmail run: M messages queued, then drained to ``sink`` (module docstring)."""
    import asyncio
    import smtplib
    from concurrent.futures import ThreadPoolExecutor

    from govmail.ops.setup import init_data_dir

    base = Path(f"/tmp/govmail-outbound-bench-{concurrency}")
    shutil.rmtree(base, ignore_errors=True)
    os.environ.pop("GOVMAIL_DATABASE_URL", None)  # SQLite, the default installation
    asyncio.run(init_data_dir(base, domain="khanhhoa.gov.vn", demo=False))
    cli(base, "agency", "add", "--name", "Thanh tra tỉnh", "--abbr", "ttr")
    add_official(base, "Nguyễn Văn An")
    with dns_server() as (zone, nameserver):
        zone.add("sink.test", "MX", (10, "mx.sink.test"))
        zone.add("mx.sink.test", "A", "127.0.0.1")
        for key, value, section in (
            ("nameservers", [nameserver], "dns"),
            ("port", sink.port, "delivery"),
            ("max_connections", concurrency, "delivery"),
            ("max_per_domain", concurrency, "delivery"),
            ("retry_min_s", 3600, "delivery"),
            ("max_recipients", 10**9, "rate"),
            ("max_external_recipients", 10**9, "rate"),
            ("sign", dkim, "dkim"),
        ):
            set_option(base, key, value, section)
        zone.fail.add("sink.test")  # held: every message waits in the queue
        server = start_server(base)
        body = ("x" * 78 + "\r\n") * max(1, size // 80)

        def submit(share: range) -> None:
            with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=60) as client:
                client.login(OFFICIAL, "12345678")  # AUTH over loopback needs no TLS
                for i in share:
                    to = RECIPIENT.format(i % 10 + 1)
                    client.sendmail(
                        OFFICIAL,
                        [to],
                        f"From: {OFFICIAL}\r\nTo: {to}\r\nSubject: m{i}\r\n\r\n{body}".encode(),
                    )

        shares = [range(i, messages, INJECT_SESSIONS) for i in range(INJECT_SESSIONS)]
        with ThreadPoolExecutor(INJECT_SESSIONS) as pool:
            list(pool.map(submit, shares))
        server.stop()
        zone.fail.clear()
        if cli(base, "queue", "retry", "--all").exit_code != 0:
            raise BenchError("govmail queue retry --all failed")
        start_count = sink.received
        with peak_connections(sink.port) as peak:
            server = start_server(base)
            ready = time.perf_counter()
            cpu_before = tree_cpu_s([server.proc.pid])[server.proc.pid]
            first = None
            deadline = ready + timeout
            while sink.received - start_count < messages and time.perf_counter() < deadline:
                if first is None and sink.received > start_count:
                    first = time.perf_counter()
                time.sleep(0.005)
            finished = time.perf_counter()
            cpu = tree_cpu_s([server.proc.pid])[server.proc.pid] - cpu_before
            server.stop()
    got = sink.received - start_count
    if got != messages or first is None:
        raise BenchError(f"the sink got {got} of {messages} messages:\n{server.log()[-2000:]}")
    return {
        "server": "govmail",
        "mode": "drain",
        "dkim": dkim,
        "concurrency": concurrency,
        "messages": messages,
        "size": size,
        "seconds": round(finished - first, 3),
        "messages_per_s": round(messages / (finished - first), 1),
        "messages_per_s_from_ready": round(messages / (finished - ready), 1),
        "peak_sink_connections": peak[0],
        "server_cpu_ms_per_message": round(1000 * cpu / messages, 3),
    }


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out waiting for {what}")
        time.sleep(0.1)


# --- the matrix ----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    runs: list[dict[str, Any]] = []
    with smtp_sink() as sink:
        for concurrency in args.concurrency:
            for _ in range(args.repeat if "govmail" in args.servers else 0):
                busy = asyncio.run(quiet_machine(args.quiet_below, args.quiet_wait))
                result = govmail_drain(
                    sink, concurrency, args.messages, args.size, dkim=args.dkim, timeout=600
                )
                result["busy_before_pct"] = busy
                print(json.dumps(result), flush=True)
                runs.append(result)
            for drain in (True, False) if "postfix" in args.servers else ():
                for _ in range(args.repeat):
                    busy = asyncio.run(quiet_machine(args.quiet_below, args.quiet_wait))
                    result = postfix_relay(
                        sink, concurrency, args.messages, args.size, drain=drain, timeout=600
                    )
                    result["busy_before_pct"] = busy
                    print(json.dumps(result), flush=True)
                    runs.append(result)
    summary = []
    for server, mode in (("govmail", "drain"), ("postfix", "drain"), ("postfix", "end_to_end")):
        for concurrency in args.concurrency:
            cell = [
                r
                for r in runs
                if (r["server"], r["mode"], r["concurrency"]) == (server, mode, concurrency)
            ]
            if not cell:
                continue
            summary.append(
                {
                    "server": server,
                    "mode": mode,
                    "concurrency": concurrency,
                    "messages_per_s": statistics.median(r["messages_per_s"] for r in cell),
                    "server_cpu_ms_per_message": statistics.median(
                        r["server_cpu_ms_per_message"] for r in cell
                    ),
                    "peak_sink_connections": max(r["peak_sink_connections"] for r in cell),
                }
            )
    return {"runs": runs, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--size", type=int, default=4096, help="smtp-source payload bytes")
    parser.add_argument(
        "--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[10, 50]
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell (medians)")
    parser.add_argument("--servers", type=lambda s: s.split(","), default=["govmail", "postfix"])
    parser.add_argument("--no-dkim", dest="dkim", action="store_false", help="govmail unsigned")
    parser.add_argument("--quiet-below", type=float, default=25.0, help="busy %% before a run")
    parser.add_argument("--quiet-wait", type=float, default=120.0, help="at most (s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "outbound.json")
    args = parser.parse_args()
    reason = postfix_missing()
    if reason:
        sys.exit(reason)
    meta = {
        "command": " ".join(sys.argv),
        "cpus": os.cpu_count(),
        "postfix": subprocess.run(
            ["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True
        ).stdout.strip(),
        "load_generator": f"smtp-source -4 -d, {INJECT_SESSIONS} sessions, 10 recipients",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print(json.dumps(meta), flush=True)
    try:
        results = run(args)
    except BenchError as exc:
        sys.exit(f"FAILED: {exc}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, **results}, indent=2), encoding="utf-8")
    for row in results["summary"]:
        print(json.dumps(row))
    print(f"\nresults -> {args.out}")


if __name__ == "__main__":
    main()
