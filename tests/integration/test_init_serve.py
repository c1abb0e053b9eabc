"""``govmail init`` and ``govmail serve`` as an operator runs them: real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from cryptography import x509

import govmail
from govmail.core.naming import personal_local_part
from tests.integration.clihelp import cli

GOVMAIL = [sys.executable, "-m", "govmail"]


def test_init_creates_config_certificate_and_database(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "data"
    result = cli(data, "init", "--domain", "danang.gov.vn", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["domain"] == "danang.gov.vn"
    config = tomllib.loads((data / "govmail.toml").read_text(encoding="utf-8"))
    assert config["mail"]["domain"] == "danang.gov.vn"
    cert = x509.load_pem_x509_certificate((data / "tls" / "cert.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "mail.danang.gov.vn" in names.get_values_for_type(x509.DNSName)
    assert (data / "tls" / "key.pem").stat().st_mode & 0o077 == 0
    # Reserved names are taken in the database from the start.
    assert cli(data, "agency", "add", "--name", "Bưu điện", "--abbr", "postmaster").exit_code == 1
    # A second init never overwrites an installation.
    again = cli(data, "init")
    assert again.exit_code == 1 and "đã được khởi tạo" in again.stderr


def test_init_rejects_bad_domain(tmp_path: Path) -> None:
    result = cli(tmp_path / "d", "init", "--domain", "not a domain")
    assert result.exit_code == 1
    assert not (tmp_path / "d" / "govmail.toml").exists()


def test_demo_province_is_realistic(tmp_path: Path, backend: str) -> None:
    data = tmp_path / "data"
    result = cli(data, "init", "--demo", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert 250 <= summary["demo_people"] <= 350
    tree = json.loads(cli(data, "agency", "list", "--json").stdout)
    assert any(a["depth"] == 1 and "_" in a["address"] for a in tree)  # communes' sub-units
    entries = json.loads(cli(data, "directory", "search", "a", "--json", "--limit", "1000").stdout)
    people = [e for e in entries if e["kind"] == "personal"]
    forms = Counter(personal_local_part(p["name"]) for p in people)
    assert max(forms.values()) >= 2  # same-name people, as in every real province
    assert len({p["address"] for p in people}) == len(people)


def test_no_data_dir_gives_clear_error(tmp_path: Path) -> None:
    result = cli(tmp_path / "missing", "agency", "list")
    assert result.exit_code == 1
    assert "govmail init" in result.stderr


def test_govmail_data_environment_variable_is_the_default(tmp_path: Path) -> None:
    data = tmp_path / "fromenv"
    env = {**os.environ, "GOVMAIL_DATA": str(data)}
    env.pop("GOVMAIL_DATABASE_URL", None)
    subprocess.run([*GOVMAIL, "init"], env=env, check=True, capture_output=True, timeout=60)
    listed = subprocess.run(
        [*GOVMAIL, "agency", "list", "--json"], env=env, check=True, capture_output=True, timeout=60
    )
    assert json.loads(listed.stdout) == []


def test_serve_answers_healthz_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "GOVMAIL_DATABASE_URL"}
    subprocess.run(
        [*GOVMAIL, "init", "--demo", "--data", str(data)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    with subprocess.Popen(
        [*GOVMAIL, "serve", "--web", "127.0.0.1:0", "--data", str(data)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        _check_serving(proc)


def _check_serving(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdout is not None
        announced = []
        for line in proc.stdout:
            announced.append(line)
            if line.startswith("Dừng"):
                break
        web = next(line.split()[1] for line in announced if line.strip().startswith("web"))
        assert any("Demo@1480" in line for line in announced), announced
        with urllib.request.urlopen(f"{web}healthz", timeout=10) as response:
            assert response.status == 200
            assert json.loads(response.read()) == {
                "status": "ok",
                "database": "ok",
                "domain": "khanhhoa.gov.vn",
                "version": govmail.__version__,
            }
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_failed_init_leaves_no_config_and_can_be_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("GOVMAIL_DATABASE_URL", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    failed = cli(data, "init")
    assert failed.exit_code == 1
    assert "Không kết nối được cơ sở dữ liệu" in failed.stderr
    assert not (data / "govmail.toml").exists()
    monkeypatch.delenv("GOVMAIL_DATABASE_URL")
    assert cli(data, "init").exit_code == 0


def test_data_directory_is_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "init").exit_code == 0
    assert data.stat().st_mode & 0o077 == 0
    for name in ("govmail.toml", "govmail.db", "tls/key.pem"):
        assert (data / name).stat().st_mode & 0o077 == 0, name


def test_commands_never_create_a_missing_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli(data, "init").exit_code == 0
    (data / "govmail.db").unlink()
    result = cli(data, "agency", "list")
    assert result.exit_code == 1 and "govmail init" in result.stderr
    assert not (data / "govmail.db").exists()


def test_serve_on_a_busy_port_says_so(tmp_path: Path) -> None:
    import socket

    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "GOVMAIL_DATABASE_URL"}
    subprocess.run(
        [*GOVMAIL, "init", "--data", str(data)],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*GOVMAIL, "serve", "--web", f"127.0.0.1:{port}", "--data", str(data)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert "Không mở được cổng web" in result.stderr and "Traceback" not in result.stderr


def test_database_errors_are_explained_not_dumped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    data = tmp_path / "data"
    assert cli(data, "init").exit_code == 0
    monkeypatch.setenv(
        "GOVMAIL_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/khongco_db"
    )
    missing = cli(data, "agency", "list")
    assert missing.exit_code == 1 and "Không kết nối được cơ sở dữ liệu" in missing.stderr
    monkeypatch.setenv("GOVMAIL_DATABASE_URL", "khongphai://url")
    bad_url = cli(data, "agency", "list")
    assert bad_url.exit_code == 1 and "không hợp lệ" in bad_url.stderr


def test_demo_refuses_a_database_that_already_has_agencies(
    tmp_path: Path, pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two data directories on one (shared) PostgreSQL database.
    monkeypatch.setenv("GOVMAIL_DATABASE_URL", pg_database_url)
    assert cli(tmp_path / "a", "init", "--demo").exit_code == 0
    again = cli(tmp_path / "b", "init", "--demo")
    assert again.exit_code == 1 and "trống" in again.stderr
