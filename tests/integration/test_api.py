"""The JSON API against a real ``govmail serve``: OpenAPI docs, bearer tokens and their
refusals, an agency IT officer filing requests (JSON and spreadsheet upload) that only the
centre may decide, the collision screen, password resets, the audit log, incidents,
directory upkeep, and throttling of token guessing."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from openpyxl import Workbook

from tests.integration.clihelp import add_official, cli
from tests.integration.mailserver import AN, BINH, DOMAIN, TTR, db_scalar, served, set_option

CUONG = f"tvcuong@{DOMAIN}"
STP = f"stp@{DOMAIN}"
ROWS_01 = [
    {"name": "Phạm Thị Hoa", "position": "Chuyên viên", "department": "Phòng Nghiệp vụ 1"},
    {"name": "Đỗ Minh Khôi", "position": "Phó Trưởng phòng", "department": "Văn phòng"},
]


@dataclass
class Api:
    """Clients of one server's API: the agency IT officer (nvan@, for ttr), the centre's
    administrator (ltbinh@), and none (no token)."""

    data_dir: Path
    officer: httpx.Client
    centre: httpx.Client
    anonymous: httpx.Client

    def submit(self, rows: list[dict[str, Any]] | None = None, **extra: Any) -> int:
        body = {"form": "01", "agency": "ttr", "rows": ROWS_01 if rows is None else rows}
        reply = self.officer.post("/api/requests", json={**body, **extra})
        assert reply.status_code == 201, reply.text
        return int(reply.json()["id"])


def _token(data_dir: Path, name: str, address: str) -> str:
    result = cli(data_dir, "token", "create", name, "--address", address, "--json")
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["token"])


def _client(base: str, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=base, headers=headers, timeout=30)


@pytest.fixture
def staffed(province: Path) -> Path:
    """The province with a second agency (Sở Tư pháp, stp@, one official tvcuong@), nvan@
    as Thanh tra tỉnh's IT officer and ltbinh@ as a centre administrator."""
    d = province
    assert cli(d, "agency", "add", "--name", "Sở Tư pháp", "--abbr", "stp").exit_code == 0
    assert add_official(d, "Trần Văn Cường", "stp").exit_code == 0
    assert cli(d, "role", "grant", AN, "it_officer", "--agency", "ttr").exit_code == 0
    assert cli(d, "role", "grant", BINH, "centre_admin").exit_code == 0
    return d


@pytest.fixture
def api(staffed: Path) -> Iterator[Api]:
    officer, centre = _token(staffed, "cong-tt", AN), _token(staffed, "trung-tam", BINH)
    with served(staffed) as server:
        base = f"http://127.0.0.1:{server.port('web')}"
        clients = [_client(base, officer), _client(base, centre), _client(base)]
        try:
            yield Api(staffed, *clients)
        finally:
            for client in clients:
                client.close()


def _xlsx(rows: list[tuple[str, ...]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["STT", "Họ và tên", "Chức vụ", "Bộ phận công tác"])
    for number, row in enumerate(rows, 1):
        sheet.append([number, *row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _by_token(actor: str, name: str) -> bool:
    """Whether the audit log's "who" is the API token called ``name`` (api:<id>:<name>)."""
    return actor.startswith("api:") and actor.rsplit(":", 1)[-1] == name


def _error(reply: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["error"]["code"] == code
    assert body["error"]["message_vi"] and body["error"]["message_en"]
    return body


# --- documentation and authentication ---------------------------------------------------


def test_docs_and_schema_describe_every_use_case(api: Api) -> None:
    docs = api.anonymous.get("/api/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in docs.text and "/api/openapi.json" in docs.text
    assert "<script>" not in docs.text  # the page's CSP allows no inline script
    # Served from this system itself (on-premises): nothing from another site.
    assert "http" not in docs.headers["content-security-policy"]
    bundle = api.anonymous.get("/api/docs/ui/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    assert "SwaggerUIBundle" in api.anonymous.get("/api/docs/start.js").text

    schema = api.anonymous.get("/api/openapi.json").json()
    assert schema["servers"][0]["url"] == "/api"
    for path in (
        "/requests",
        "/requests/upload",
        "/requests/{request_id}/approve",
        "/requests/{request_id}/pdf",
        "/passwords/reset",
        "/delegations",
        "/roles",
        "/audit",
        "/audit/export",
        "/incidents/{incident_id}",
        "/agencies/{ref}/merge",
        "/mailboxes/{address}/quota",
    ):
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    approve = schema["paths"]["/requests/{request_id}/approve"]["post"]
    assert "CollisionsOut" in json.dumps(approve["responses"]["409"])
    assert "Họ và tên" in json.dumps(schema["components"]["schemas"]["RowIn"], ensure_ascii=False)


def test_no_token_or_an_unknown_one_is_refused(api: Api) -> None:
    missing = _error(api.anonymous.get("/api/requests"), 401, "unauthorized")
    assert "Bearer" in missing["error"]["message_en"]
    assert api.anonymous.get("/api/requests").headers["www-authenticate"].startswith("Bearer")
    for header in ("Bearer gmt_not-a-real-token", "Bearer nonsense", "Basic bnZhbjp4"):
        reply = api.anonymous.get("/api/requests", headers={"Authorization": header})
        _error(reply, 401, "unauthorized")
        assert reply.headers["www-authenticate"].startswith("Bearer")
    # No cookie makes up for a missing token: the API has no sessions.
    api.anonymous.cookies.set("govmail_session", "x")
    assert api.anonymous.get("/api/requests").status_code == 401


def test_a_revoked_token_stops_working_at_once(api: Api) -> None:
    secret = _token(api.data_dir, "tam-thoi", AN)
    with _client(str(api.officer.base_url), secret) as client:
        assert client.get("/api/requests").status_code == 200
        listed = json.loads(cli(api.data_dir, "token", "list", "--json").output)
        token_id = next(t["id"] for t in listed if t["name"] == "tam-thoi")
        assert cli(api.data_dir, "token", "revoke", str(token_id)).exit_code == 0
        reply = client.get("/api/requests")
        _error(reply, 401, "unauthorized")
        assert 'error="invalid_token"' in reply.headers["www-authenticate"]


def test_failed_tokens_from_one_address_are_throttled(staffed: Path) -> None:
    set_option(staffed, "max_failures_per_ip", 4, section="auth")
    good = _token(staffed, "cong-tt", AN)
    with served(staffed) as server:
        base = f"http://127.0.0.1:{server.port('web')}"
        with _client(base, "gmt_guess") as guesser, _client(base, good) as officer:
            assert officer.get("/api/requests").status_code == 200
            for _ in range(4):
                assert guesser.get("/api/requests").status_code == 401
            reply = guesser.get("/api/requests")
            _error(reply, 429, "too_many_requests")
            assert int(reply.headers["retry-after"]) > 0
            # Everything from that address waits, a right token too.
            assert officer.get("/api/requests").status_code == 429


# --- requests -------------------------------------------------------------------------


def test_it_officer_submits_form_01_as_json(api: Api) -> None:
    reply = api.officer.post(
        "/api/requests",
        json={
            "form": "01",
            "agency": "ttr",
            "rows": ROWS_01,
            "payload": {"requester": {"name": "Nguyễn Văn An", "phone": "0258 3822 111"}},
            "decision_date": "2020-01-02",
        },
    )
    assert reply.status_code == 201, reply.text
    made = reply.json()
    assert made["status"] == "pending" and made["late"] is True  # R21: long after 2020

    shown = api.officer.get(f"/api/requests/{made['id']}").json()
    assert shown["form"] == "01" and shown["agency"] == TTR
    assert shown["title"].startswith("Mẫu 01") and shown["status_label"] == "Chờ xử lý"
    assert [r["name"] for r in shown["rows"]] == ["Phạm Thị Hoa", "Đỗ Minh Khôi"]
    assert _by_token(shown["submitted_by"], "cong-tt")
    assert [e["status"] for e in shown["events"]] == ["submitted"]
    assert shown["payload"]["requester"]["name"] == "Nguyễn Văn An"


def test_it_officer_uploads_form_01_as_xlsx_and_csv(api: Api) -> None:
    xlsx = _xlsx([("Phạm Thị Hoa", "Chuyên viên", "Phòng Nghiệp vụ 1")])
    reply = api.officer.post(
        "/api/requests/upload",
        data={"form": "01", "agency": "ttr", "decision_date": date.today().isoformat()},
        files={"file": ("danh-sach.xlsx", xlsx, "application/octet-stream")},
    )
    assert reply.status_code == 201, reply.text
    assert reply.json()["late"] is False
    first = api.officer.get(f"/api/requests/{reply.json()['id']}").json()
    assert first["rows"][0]["department"] == "Phòng Nghiệp vụ 1"

    text = "\ufeffHọ và tên,Chức vụ,Bộ phận công tác\nĐỗ Minh Khôi,Chuyên viên,Văn phòng\n"
    reply = api.officer.post(
        "/api/requests/upload",
        data={"form": "1", "agency": "ttr"},
        files={"file": ("ds.csv", text.encode(), "text/csv")},
    )
    assert reply.status_code == 201, reply.text
    second = api.officer.get(f"/api/requests/{reply.json()['id']}").json()
    assert second["rows"][0]["name"] == "Đỗ Minh Khôi"


def test_a_broken_upload_lists_its_problems(api: Api) -> None:
    text = "Họ và tên,Chức vụ,Bộ phận công tác\n,Chuyên viên,Văn phòng\n=1+1,Chuyên viên,VP\n"
    reply = api.officer.post(
        "/api/requests/upload",
        data={"form": "01", "agency": "ttr"},
        files={"file": ("ds.csv", text.encode(), "text/csv")},
    )
    problems = _error(reply, 422, "invalid_input")["error"]["problems"]
    assert {p["row"] for p in problems} >= {2, 3}
    assert all(p["reason_vi"] and p["reason_en"] for p in problems)

    reply = api.officer.post(
        "/api/requests/upload",
        data={"form": "01", "agency": "ttr"},
        files={"file": ("ds.txt", b"x", "text/plain")},
    )
    assert _error(reply, 422, "invalid_input")["error"]["problems"][0]["row"] == 0


def test_malformed_rows_are_refused_with_every_problem(api: Api) -> None:
    rows = [
        {"name": "", "position": "Chuyên viên", "department": "Văn phòng"},
        ROWS_01[0],
        ROWS_01[0],
    ]
    reply = api.officer.post("/api/requests", json={"form": "01", "agency": "ttr", "rows": rows})
    problems = _error(reply, 422, "invalid_input")["error"]["problems"]
    assert [p["row"] for p in problems] == [1, 3]
    assert problems[1]["reason_vi"] == "Trùng với dòng 2."
    # A body that does not match the schema at all: the same error shape.
    reply = api.officer.post("/api/requests", json={"form": "01", "rows": "nhiều dòng"})
    fields = _error(reply, 422, "invalid_input")["error"]["fields"]
    assert any(f["field"].endswith("rows") for f in fields)
    assert api.centre.get("/api/requests?limit=1").json() == []


def test_a_duplicate_submission_is_refused(api: Api) -> None:
    api.submit()
    reply = api.officer.post("/api/requests", json={"form": "01", "agency": "ttr", "rows": ROWS_01})
    _error(reply, 409, "conflict")
    assert len(api.centre.get("/api/requests").json()) == 1


def test_it_officer_sees_only_its_agency(api: Api) -> None:
    mine = api.submit()
    rows = api.data_dir / "stp.csv"
    rows.write_text("Họ và tên,Chức vụ,Bộ phận công tác\nLý Văn Tài,Chuyên viên,VP\n")
    filed = cli(
        api.data_dir, "request", "submit", "--agency", "stp", "--form", "01", "--file", str(rows)
    )
    assert filed.exit_code == 0, filed.output
    theirs = int(filed.output.split()[0])

    assert [r["id"] for r in api.officer.get("/api/requests").json()] == [mine]
    assert {r["id"] for r in api.centre.get("/api/requests").json()} == {mine, theirs}
    assert [r["id"] for r in api.centre.get("/api/requests?agency=stp").json()] == [theirs]
    _error(api.officer.get(f"/api/requests/{theirs}"), 403, "forbidden")
    _error(api.officer.get(f"/api/requests/{theirs}/pdf"), 403, "forbidden")
    reply = api.officer.post("/api/requests", json={"form": "01", "agency": "stp", "rows": ROWS_01})
    _error(reply, 403, "forbidden")
    _error(api.centre.get("/api/requests/9999"), 404, "not_found")


def test_it_officer_cannot_decide(api: Api) -> None:
    request_id = api.submit()
    _error(api.officer.post(f"/api/requests/{request_id}/approve"), 403, "forbidden")
    reply = api.officer.post(f"/api/requests/{request_id}/reject", json={"reason": "Không"})
    _error(reply, 403, "forbidden")
    _error(api.officer.get(f"/api/requests/{request_id}/preview"), 403, "forbidden")
    assert api.officer.get(f"/api/requests/{request_id}").json()["status"] == "pending"


def test_centre_resolves_a_collision_then_approves(api: Api) -> None:
    # Nguyễn Văn An's regulation address nvan@ is taken by the officer himself.
    request_id = api.submit(
        [{"name": "Nguyễn Văn An", "position": "Chuyên viên", "department": "Phòng 2"}, ROWS_01[0]]
    )
    preview = api.centre.get(f"/api/requests/{request_id}/preview").json()
    assert preview["1"]["address"] == AN and preview["1"]["proposals"]
    assert preview["2"] == {"address": f"pthoa@{DOMAIN}", "proposals": []}

    reply = api.centre.post(f"/api/requests/{request_id}/approve", json={})
    body = _error(reply, 409, "address_collisions")
    proposals = body["collisions"]["1"]
    assert proposals == preview["1"]["proposals"] and list(body["collisions"]) == ["1"]
    assert db_scalar(api.data_dir, "select count(*) from people") == 3  # nothing changed

    chosen = proposals[0]
    picked = api.centre.get(
        f"/api/requests/{request_id}/preview", params={"address": f"1={chosen}"}
    )
    assert picked.json()["1"] == {"address": f"{chosen}@{DOMAIN}", "proposals": []}
    reply = api.centre.post(
        f"/api/requests/{request_id}/approve", json={"addresses": {"1": chosen}}
    )
    assert reply.status_code == 200, reply.text
    done = reply.json()
    assert done["created"] == [f"{chosen}@{DOMAIN}", f"pthoa@{DOMAIN}"]
    assert set(done["passwords"]) == set(done["created"])
    assert done["changed"] == [] and done["deleted"] == [] and done["archives"] == []

    shown = api.officer.get(f"/api/requests/{request_id}").json()
    assert shown["status"] == "approved" and _by_token(shown["decided_by"], "trung-tam")
    assert "passwords" not in shown["result"]


def test_approving_twice_is_a_conflict(api: Api) -> None:
    request_id = api.submit()
    assert api.centre.post(f"/api/requests/{request_id}/approve").status_code == 200
    again = _error(api.centre.post(f"/api/requests/{request_id}/approve"), 409, "conflict")
    assert again["error"]["status"] == "approved"
    reply = api.centre.post(f"/api/requests/{request_id}/approve", json={"addresses": {"x": "y"}})
    _error(reply, 422, "invalid_input")


def test_withdraw_and_reject(api: Api) -> None:
    first = api.submit()
    withdrawn = api.officer.post(f"/api/requests/{first}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    _error(api.officer.post(f"/api/requests/{first}/withdraw"), 409, "conflict")

    second = api.submit()  # the same rows again: the first is no longer open
    _error(
        api.centre.post(f"/api/requests/{second}/reject", json={"reason": " "}),
        422,
        "invalid_input",
    )
    rejected = api.centre.post(
        f"/api/requests/{second}/reject", json={"reason": "Thiếu chữ ký thủ trưởng."}
    ).json()
    assert rejected["status"] == "rejected" and rejected["reason"] == "Thiếu chữ ký thủ trưởng."
    assert [e["status"] for e in rejected["events"]] == ["submitted", "rejected"]
    assert api.officer.get("/api/requests?status=open").json() == []
    # Only the Director endorses (R10).
    _error(api.centre.post(f"/api/requests/{second}/endorse"), 403, "forbidden")


def test_request_pdf(api: Api) -> None:
    request_id = api.submit()
    reply = api.officer.get(f"/api/requests/{request_id}/pdf")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"] == "application/pdf"
    assert reply.content.startswith(b"%PDF-")
    assert f"yeu-cau-{request_id}.pdf" in reply.headers["content-disposition"]


# --- accounts ---------------------------------------------------------------------------


def test_password_reset_by_the_centre_only(api: Api) -> None:
    _error(api.officer.post("/api/passwords/reset", json={"address": CUONG}), 403, "forbidden")
    reply = api.centre.post("/api/passwords/reset", json={"address": "tvcuong"})
    assert reply.status_code == 200, reply.text
    done = reply.json()
    assert done["address"] == CUONG and len(done["password"]) >= 8
    assert db_scalar(
        api.data_dir,
        "select must_change_password from mailboxes m join addresses a"
        " on a.mailbox_id = m.id where a.local_part = 'tvcuong'",
    ) in (True, 1)
    reply = api.centre.post("/api/passwords/reset", json={"address": f"khongco@{DOMAIN}"})
    _error(reply, 404, "not_found")


def test_delegations_and_roles(api: Api) -> None:
    grant = {"agency": "ttr", "person": BINH}
    _error(api.officer.post("/api/delegations", json=grant), 403, "forbidden")
    reply = api.centre.post("/api/delegations", json=grant)
    assert reply.status_code == 201, reply.text
    assert reply.json() == {"agency_address": TTR, "person_address": BINH, "active": True}
    gone = api.centre.request("DELETE", "/api/delegations", json=grant)
    assert gone.status_code == 200 and gone.json()["active"] is False

    _error(api.officer.get("/api/roles"), 403, "forbidden")
    roles = api.centre.get("/api/roles").json()
    assert {"address": AN, "role": "it_officer", "agency": TTR} in roles
    new = {"address": CUONG, "role": "it_officer", "agency": "stp"}
    assert api.centre.post("/api/roles", json=new).json()["agency"] == STP
    _error(api.centre.post("/api/roles", json=new), 409, "conflict")
    _error(
        api.centre.post("/api/roles", json={"address": CUONG, "role": "vua"}), 422, "invalid_input"
    )
    assert api.centre.request("DELETE", "/api/roles", json=new).status_code == 200
    assert new not in api.centre.get("/api/roles").json()


# --- audit log, incidents, directory -------------------------------------------------------


def test_audit_list_shape(api: Api) -> None:
    request_id = api.submit()
    _error(api.officer.get("/api/audit"), 403, "forbidden")
    entries = api.centre.get("/api/audit", params={"action": "request."}).json()
    assert len(entries) == 1
    entry = entries[0]
    assert set(entry) == {"at", "actor", "action", "target", "details", "source"}
    assert _by_token(entry["actor"], "cong-tt") and entry["action"] == "request.submit"
    assert entry["target"] == f"request/{request_id}" and entry["source"] == "127.0.0.1"
    assert entry["details"]["form"] == "01" and entry["details"]["rows"] == 2
    newest = api.centre.get("/api/audit", params={"limit": 2}).json()
    assert len(newest) == 2 and newest[0]["at"] >= newest[1]["at"]
    assert api.centre.get("/api/audit", params={"actor": "khong-ai"}).json() == []
    _error(api.centre.get("/api/audit", params={"limit": 0}), 422, "invalid_input")


def test_audit_export_streams_csv_and_jsonl(api: Api) -> None:
    api.submit()
    _error(api.officer.get("/api/audit/export"), 403, "forbidden")
    with api.centre.stream("GET", "/api/audit/export", params={"format": "csv"}) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/csv")
        text = reply.read().decode("utf-8")
    assert text.startswith("\ufeffat,actor,action,target,source,details")
    lines = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert any(row[2] == "request.submit" and _by_token(row[1], "cong-tt") for row in lines[1:])

    reply = api.centre.get("/api/audit/export", params={"format": "jsonl", "action": "role."})
    entries = [json.loads(line) for line in reply.text.splitlines()]
    assert [e["action"] for e in entries] == ["role.grant", "role.grant"]  # oldest first
    assert api.centre.get("/api/audit/export", params={"format": "xml"}).status_code == 422


def test_audit_export_streams_a_long_log_page_by_page(api: Api) -> None:
    _bulk_audit(api.data_dir, 2345)  # more than two of export_audit's pages
    params = {"format": "jsonl", "action": "test.bulk"}
    with api.centre.stream("GET", "/api/audit/export", params=params) as reply:
        assert reply.status_code == 200
        targets = [json.loads(line)["target"] for line in reply.iter_lines() if line]
    assert targets == [f"muc/{i}" for i in range(2345)]


def _bulk_audit(data_dir: Path, count: int) -> None:
    """``count`` audit entries one millisecond apart, written behind the server's back."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from govmail.config import load_config
    from govmail.store.database import Database
    from govmail.store.schema import audit_log

    start = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        {
            "at": start + timedelta(milliseconds=i),
            "actor": "cli:test",
            "action": "test.bulk",
            "target": f"muc/{i}",
            "details": {"i": i},
            "source": "cli",
        }
        for i in range(count)
    ]

    async def write() -> None:
        db = Database(load_config(data_dir).effective_database_url)
        try:
            async with db.write() as conn:
                await conn.execute(insert(audit_log), rows)
        finally:
            await db.dispose()

    asyncio.run(write())


def test_incidents(api: Api) -> None:
    reply = api.officer.post(
        "/api/incidents",
        json={"subject": "Không gửi được thư", "description": "Lỗi 554 khi gửi ra ngoài."},
    )
    assert reply.status_code == 201, reply.text
    incident = reply.json()
    assert incident["status"] == "open" and _by_token(incident["reported_by"], "cong-tt")
    assert [i["id"] for i in api.officer.get("/api/incidents").json()] == [incident["id"]]

    path = f"/api/incidents/{incident['id']}"
    _error(api.officer.patch(path, json={"status": "resolved"}), 403, "forbidden")
    moved = api.centre.patch(path, json={"status": "in_progress", "resolution": "Đang kiểm tra."})
    assert moved.status_code == 200 and moved.json()["status_label"] == "Đang xử lý"
    _error(api.centre.patch(path, json={"status": "in_progress"}), 409, "conflict")
    assert api.centre.patch(path, json={"status": "lost"}).status_code == 422
    assert api.officer.get(path).json()["resolution"] == "Đang kiểm tra."
    _error(
        api.officer.post("/api/incidents", json={"subject": " ", "description": "x"}),
        422,
        "invalid_input",
    )


def test_directory_upkeep_by_the_centre(api: Api) -> None:
    _error(api.officer.get("/api/agencies"), 403, "forbidden")
    tree = api.centre.get("/api/agencies").json()
    assert {a["address"] for a in tree} == {TTR, STP}
    assert all(a["children"] == [] for a in tree)

    moved = api.centre.post("/api/agencies/stp/move", json={"parent": "ttr"})
    assert moved.status_code == 200 and moved.json()["parent_address"] == TTR
    tree = api.centre.get("/api/agencies").json()
    assert [c["address"] for c in tree[0]["children"]] == [STP]
    _error(api.centre.post("/api/agencies/ttr/move", json={"parent": "stp"}), 409, "conflict")

    renamed = api.centre.post("/api/agencies/stp/rename", json={"name": "Sở Tư pháp tỉnh"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Sở Tư pháp tỉnh"
    _error(api.centre.post("/api/agencies/stp/dissolve"), 409, "conflict")  # still has people

    quota = api.centre.put(f"/api/mailboxes/{AN}/quota", json={"mb": 4096})
    assert quota.json() == {"address": AN, "quota_mb": 4096, "used_bytes": 0}
    _error(api.centre.put(f"/api/mailboxes/{AN}/quota", json={"mb": 1}), 422, "invalid_input")
    _error(api.officer.put(f"/api/mailboxes/{AN}/quota", json={"mb": 4096}), 403, "forbidden")

    merged = api.centre.post("/api/agencies/stp/merge", json={"into": "ttr"})
    assert merged.status_code == 200, merged.text
    assert merged.json()["merged"] == STP and merged.json()["people"] == 1
    assert STP in merged.json()["aliases"]
    _error(api.centre.post("/api/agencies/khongco/rename", json={"name": "X"}), 404, "not_found")


def test_unknown_paths_answer_json(api: Api) -> None:
    _error(api.centre.get("/api/khong-co"), 404, "not_found")
    _error(api.centre.put("/api/requests"), 405, "method_not_allowed")
