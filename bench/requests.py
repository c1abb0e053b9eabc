"""Figures of the request workflows (issue 8): how long the centre waits on its desk.

A fresh data directory (SQLite, or ``--database-url``) gets the demo province (25 agencies,
~300 officials) and ``--queue`` filed requests, then, through the request desk itself (the
code the CLI, the console and the API all call):
1. filing a Mẫu 01 of ``--rows`` people read from an .xlsx (read + submit);
2. the collision screen (``preview``) of that request;
3. approving it: ``--rows`` mailboxes, each with a temporary password (argon2id), a
   welcome mail, the IT officers' password mail and the requester's notice, in one
   transaction;
4. the console's queue: listing the open requests (``--queue`` of them), p50/p95;
5. a Mẫu 03 of 20 deletions, each mailbox archived first.
Usage: ``.venv/bin/python bench/requests.py [--rows 200] [--queue 1000]``; results are
printed and written to bench/results/requests.json (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import openpyxl

from govmail.config import load_config
from govmail.core.sample import generate_officials
from govmail.ops.setup import init_data_dir
from govmail.store.database import Database
from govmail.workflows.forms import read_form_file
from govmail.workflows.model import RequestRow
from govmail.workflows.roles import Principal
from govmail.workflows.service import request_desk


def xlsx(path: Path, rows: int, seed: int) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(("STT", "Họ và tên", "Chức vụ", "Bộ phận công tác"))
    for i, person in enumerate(generate_officials(rows, seed=seed), 1):
        sheet.append((i, person.full_name, person.position, person.department))
    book.save(path)
    return path


async def bench(data: Path, args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(data)
    db = Database(cfg.effective_database_url)
    desk = request_desk(db, cfg)
    centre = Principal.operator("bench")
    figures: dict[str, Any] = {"rows": args.rows, "queue": args.queue}
    try:
        # The queue: many small open requests, one row each, across agencies.
        agencies = ["stttt", "stc", "snv", "syt", "sgddt"]
        started = time.perf_counter()
        for i, person in enumerate(generate_officials(args.queue, seed=3)):
            await desk.submit(
                centre,
                form="01",
                agency=agencies[i % len(agencies)],
                rows=[RequestRow(person.full_name, "Chuyên viên", f"Phòng {i}")],
            )
        figures["queue_fill_s"] = round(time.perf_counter() - started, 2)
        timings = []
        for _ in range(args.samples):
            t = time.perf_counter()
            found = await desk.list_requests(centre, status="open", limit=200)
            timings.append(time.perf_counter() - t)
        figures["queue_page_200_ms"] = _p(timings)
        figures["queue_page_rows"] = len(found)

        path = xlsx(data / "mau01.xlsx", args.rows, seed=7)
        t = time.perf_counter()
        rows = read_form_file(path, "01")
        filed = await desk.submit(centre, form="01", agency="stttt", rows=rows)
        figures["submit_s"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        screen = await desk.preview(centre, filed.id)
        figures["preview_s"] = round(time.perf_counter() - t, 3)
        collisions = {row: s["proposals"][0] for row, s in screen.items() if s["proposals"]}
        figures["collisions"] = len(collisions)
        t = time.perf_counter()
        approval = await desk.approve(centre, filed.id, addresses=collisions)
        figures["approve_s"] = round(time.perf_counter() - t, 3)
        figures["created"] = len(approval.created)

        shown = await desk.show(centre, filed.id)
        removal = [
            RequestRow(row.name, address=address)
            for row, address in zip(shown.rows, approval.created, strict=True)
        ][:20]
        t = time.perf_counter()
        deletion = await desk.submit(centre, form="03", agency="stttt", rows=removal)
        done = await desk.approve(centre, deletion.id)
        figures["delete_20_with_archives_s"] = round(time.perf_counter() - t, 3)
        figures["archives"] = len(done.archives)
    finally:
        await db.dispose()
    return figures


def _p(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p95": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--queue", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--out", type=Path, default=Path("bench/results/requests.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        if args.database_url:
            os.environ["GOVMAIL_DATABASE_URL"] = args.database_url
        asyncio.run(init_data_dir(data, domain="khanhhoa.gov.vn", demo=True))
        figures = asyncio.run(bench(data, args))
    figures["cpus"] = os.cpu_count()
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
