"""Figures of the foundation issue: import 20,000 officials, then search the directory.

For each backend (SQLite in a fresh data directory; PostgreSQL in a fresh database on
127.0.0.1:5432), it
1. generates 20,000 fictitious officials with realistic same-name collisions
   (govmail.core.sample) and writes them as one staff list (.xlsx and .csv);
2. times ``govmail import officials FILE --agency bench`` end to end, as an operator
   runs it (a new process: start-up, parsing, naming, one transaction);
3. runs 500 directory searches of the kinds people type ("nguyen van", "phuong",
   "ldphuong", "chuyen vien tai chinh") through the service function and reports
   p50/p95/p99 latency.
Usage: ``.venv/bin/python bench/directory_import.py [--n 20000] [--backends sqlite,postgres]``
Results are printed and written to bench/results/directory_import.json.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import asyncpg
import openpyxl

from govmail.config import load_config
from govmail.core.naming import personal_local_part
from govmail.core.sample import generate_officials
from govmail.core.vietnamese import fold
from govmail.directory.search import search_directory
from govmail.store.database import Database

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_BENCH_DB = "govmail_bench"
GOVMAIL = [sys.executable, "-m", "govmail"]


def write_staff_lists(n: int, folder: Path) -> tuple[Path, Path, list[str]]:
    officials = generate_officials(n)
    header = ["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác"]
    xlsx = folder / "staff.xlsx"
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Danh sách")
    sheet.append(header)
    for i, o in enumerate(officials, 1):
        sheet.append([i, o.full_name, o.position, o.department])
    book.save(xlsx)
    csv_path = folder / "staff.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(
            [i, o.full_name, o.position, o.department] for i, o in enumerate(officials, 1)
        )
    forms = [personal_local_part(o.full_name) for o in officials]
    return xlsx, csv_path, forms


def queries(names: list[str], rng: random.Random, count: int) -> list[str]:
    result = []
    for _ in range(count):
        name = rng.choice(names)
        words = fold(name).split()
        kind = rng.randrange(5)
        if kind == 0:
            result.append(" ".join(words[:2]))  # "nguyen van"
        elif kind == 1:
            result.append(words[-1])  # given name
        elif kind == 2:
            result.append(" ".join(words))  # whole name
        elif kind == 3:
            result.append(personal_local_part(name))  # an address
        else:
            result.append(rng.choice(["chuyen vien", "ke toan", "van phong", "truong phong"]))
    return result


def run(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


async def reset_pg() -> str:
    conn = await asyncpg.connect(PG_ADMIN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{PG_BENCH_DB}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{PG_BENCH_DB}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{PG_BENCH_DB}"


async def search_latencies(data: Path, qs: list[str]) -> list[float]:
    cfg = load_config(data)
    db = Database(cfg.effective_database_url)
    try:
        for q in qs[:20]:  # warm the connection pool and caches
            await search_directory(db, cfg, q)
        times = []
        for q in qs:
            start = time.perf_counter()
            await search_directory(db, cfg, q)
            times.append((time.perf_counter() - start) * 1000)
        return times
    finally:
        await db.dispose()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_backend(
    backend: str, n: int, files: tuple[Path, Path], names: list[str], work: Path
) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != "GOVMAIL_DATABASE_URL"}
    figures: dict[str, object] = {"backend": backend, "officials": n}
    for fmt, staff in zip(("xlsx", "csv"), files, strict=True):
        data = work / f"data-{backend}-{fmt}"
        if backend == "postgres":
            env["GOVMAIL_DATABASE_URL"] = asyncio.run(reset_pg())
        run([*GOVMAIL, "init", "--data", str(data)], env)
        run(
            [
                *GOVMAIL,
                "agency",
                "add",
                "--name",
                "Cơ quan đo hiệu năng",
                "--abbr",
                "bench",
                "--data",
                str(data),
            ],
            env,
        )
        seconds = run(
            [*GOVMAIL, "import", "officials", str(staff), "--agency", "bench", "--data", str(data)],
            env,
        )
        rerun = run(
            [*GOVMAIL, "import", "officials", str(staff), "--agency", "bench", "--data", str(data)],
            env,
        )
        figures[f"import_{fmt}_s"] = round(seconds, 2)
        figures[f"reimport_{fmt}_s"] = round(rerun, 2)
    os.environ.update({k: v for k, v in env.items() if k == "GOVMAIL_DATABASE_URL"})
    qs = queries(names, random.Random(1480), 500)
    times = asyncio.run(search_latencies(data, qs))
    os.environ.pop("GOVMAIL_DATABASE_URL", None)
    figures.update(
        search_p50_ms=round(percentile(times, 50), 2),
        search_p95_ms=round(percentile(times, 95), 2),
        search_p99_ms=round(percentile(times, 99), 2),
        search_mean_ms=round(statistics.mean(times), 2),
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="govmail-bench-") as tmp:
        work = Path(tmp)
        xlsx, csv_path, forms = write_staff_lists(args.n, work)
        names = [o.full_name for o in generate_officials(args.n)]
        common, times = Counter(forms).most_common(1)[0]
        print(
            f"{args.n} officials, {len(set(forms))} distinct regulation addresses "
            f"(most common: {common}, {times} times)"
        )
        for backend in args.backends.split(","):
            figures = bench_backend(backend, args.n, (xlsx, csv_path), names, work)
            results.append(figures)
            print(json.dumps(figures, ensure_ascii=False))
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "directory_import.json").write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
