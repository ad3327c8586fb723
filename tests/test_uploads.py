"""Attachments in production: a fixed vocabulary of kinds, file types checked by extension and
content, the size limit on the API and the page, storage by SHA-256, integrity failures recorded
as security events, and removing a document (event ``detach``)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openpyxl
import pytest
from helpers import Flow
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker
from test_signin import csrf_token, sign_in

from models import Attachment, HistoryEntry, Request, SecurityEvent
from web import create_app
from workflow import attachments as attachment_ops
from workflow.engine import available_events
from workflow.errors import InvalidInput, NotFound
from workflow.security_log import record_security_event

API = "/api/v1"
MB = 1024 * 1024


# ---------------------------------------------------------------- sample files


def minimal_pdf() -> bytes:
    """A real one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def docx_bytes() -> bytes:
    return zip_bytes(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "word/document.xml": b'<?xml version="1.0"?><w:document/>',
        }
    )


def xlsx_bytes() -> bytes:
    return zip_bytes(
        {
            "[Content_Types].xml": b'<?xml version="1.0"?><Types/>',
            "xl/workbook.xml": b'<?xml version="1.0"?><workbook/>',
        }
    )


def openpyxl_bytes() -> bytes:
    book = openpyxl.Workbook()
    book.active.append(["用例", "结果"])
    book.active.append(["随访表单保存", "通过"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


EXE = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\0" * 48
    + (b"This program cannot be run in DOS mode.\r\r\n$")
)
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\0" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\0" * 20
GB18030_TEXT = "升级前测试报告：全部 124 个用例通过。\n".encode("gb18030")


# ---------------------------------------------------------------- helpers


@pytest.fixture
def flow(app, db, catalog, world):
    return Flow(app, db, catalog, world)


@pytest.fixture
def draft(flow, db) -> int:
    """An upgrade in draft raised by vendor A's engineer; the test's session is closed."""
    request = flow.create("upgrade")
    db.commit()
    db.close()
    return request.id


def upload(client, world, request_id, content, name, kind="test_report", user="vendor_engineer"):
    return client.post(
        f"{API}/requests/{request_id}/attachments",
        headers=world.auth(user),
        data={"file": (io.BytesIO(content), name), "kind": kind},
        content_type="multipart/form-data",
    )


def remove(client, world, attachment_id, user="vendor_engineer", **body):
    return client.delete(
        f"{API}/attachments/{attachment_id}", headers=world.auth(user), json=body or None
    )


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The response has ``status`` and the SPEC §4 error shape; returns the error object."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code, error
    return error


def fresh(app):
    """A session of its own, to read what was committed."""
    return sessionmaker(app.extensions["changeflow.engine"], expire_on_commit=False)()


def stored_files(app) -> list[Path]:
    storage = Path(app.config["ATTACHMENTS_DIR"])
    return sorted(p for p in storage.rglob("*") if p.is_file()) if storage.exists() else []


def nothing_recorded(app, request_id: int, version: int = 1) -> None:
    """A refused upload left no row, no history entry, no new version and no file."""
    with fresh(app) as s:
        assert s.scalar(select(func.count()).select_from(Attachment)) == 0
        assert s.get(Request, request_id).version == version
        entries = s.scalars(select(HistoryEntry.event).where(HistoryEntry.request_id == request_id))
        assert list(entries) == ["create"]
    assert stored_files(app) == []


# ---------------------------------------------------------------- size limit (413)


@pytest.fixture
def default_app(app, database_url, monkeypatch):
    """The app with its own default upload limit (50 MB), on the test database."""
    monkeypatch.delenv("CHANGEFLOW_MAX_UPLOAD_MB", raising=False)
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test",
            "ATTACHMENTS_DIR": app.config["ATTACHMENTS_DIR"],
        }
    )
    assert application.config["MAX_UPLOAD_BYTES"] == 50 * MB
    assert application.config["MAX_CONTENT_LENGTH"] == 51 * MB
    yield application
    application.extensions["changeflow.engine"].dispose()


class TestSizeLimit:
    def test_51_mb_on_the_api_is_413(self, default_app, world, draft):
        client = default_app.test_client()
        response = upload(client, world, draft, b"%PDF-1.4 " + b"\0" * (51 * MB), "big.pdf")
        error = assert_error(response, 413, "too_large")
        assert error["message"] == "The upload is larger than the limit of 50 MB."
        assert error["details"] == {"max_bytes": 50 * MB}
        nothing_recorded(default_app, draft)

    def test_51_mb_on_the_page_is_413(self, default_app, world, draft):
        client = default_app.test_client()
        sign_in(client, "vendor_engineer")
        token = csrf_token(client, f"/requests/{draft}")
        response = client.post(
            f"/requests/{draft}/attachments",
            data={
                "csrf_token": token,
                "kind": "test_report",
                "file": (io.BytesIO(b"%PDF-1.4 " + b"\0" * (51 * MB)), "big.pdf"),
            },
            content_type="multipart/form-data",
        )
        assert response.status_code == 413
        assert "文件过大" in response.get_data(as_text=True) or "File too large" in (
            response.get_data(as_text=True)
        )
        nothing_recorded(default_app, draft)

    def test_one_byte_over_the_limit_on_the_page_is_413(self, app, client, world, draft):
        # Under the request limit (limit + 1 MB), over the file limit: the workflow refuses.
        sign_in(client, "vendor_engineer")
        token = csrf_token(client, f"/requests/{draft}")
        content = b"%PDF-1.4 " + b"\0" * (app.config["MAX_UPLOAD_BYTES"] - 8)
        assert len(content) == app.config["MAX_UPLOAD_BYTES"] + 1
        response = client.post(
            f"/requests/{draft}/attachments",
            data={
                "csrf_token": token,
                "kind": "test_report",
                "file": (io.BytesIO(content), "b.pdf"),
            },
            content_type="multipart/form-data",
        )
        assert response.status_code == 413
        nothing_recorded(app, draft)


# ---------------------------------------------------------------- file types


class TestFileTypes:
    def test_exe_named_pdf_is_refused_in_words(self, app, client, world, draft):
        response = upload(client, world, draft, EXE, "report.pdf")
        error = assert_error(response, 422, "invalid_input")
        assert error["message"] == "The file 'report.pdf' is not a PDF document."
        assert error["details"]["fields"]["file"] == [error["message"]]
        assert error["details"]["file_type"]["problem"] == "content_mismatch"
        nothing_recorded(app, draft)

    @pytest.mark.parametrize(
        ("name", "content", "content_type"),
        [
            ("report.pdf", minimal_pdf(), "application/pdf"),
            (
                "cases.docx",
                docx_bytes(),
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
            (
                "cases.xlsx",
                xlsx_bytes(),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            (
                "用例.XLSX",
                openpyxl_bytes(),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            ("screen.png", PNG, "image/png"),
            ("photo.jpg", JPEG, "image/jpeg"),
            ("photo.jpeg", JPEG, "image/jpeg"),
            ("logs.zip", zip_bytes({"app.log": b"started\n"}), "application/zip"),
            ("报告.txt", GB18030_TEXT, "text/plain"),
            ("notes.txt", "全部通过 ✓\n".encode(), "text/plain"),
            ("change.sql", b"ALTER TABLE patient ADD COLUMN note;\n", "application/sql"),
        ],
    )
    def test_accepted_types(self, app, client, world, draft, name, content, content_type):
        response = upload(client, world, draft, content, name)
        assert response.status_code == 201, response.get_json()
        meta = response.get_json()
        assert meta["filename"] == name and meta["content_type"] == content_type
        download = client.get(f"{API}/attachments/{meta['id']}", headers=world.auth("it_staff"))
        assert download.data == content
        assert download.headers["Content-Type"].startswith(content_type)

    def test_gb18030_sample_is_not_utf8(self):
        with pytest.raises(UnicodeDecodeError):
            GB18030_TEXT.decode("utf-8")

    @pytest.mark.parametrize(
        ("name", "content", "says"),
        [
            ("cases.docx", zip_bytes({"readme.txt": b"no word document"}), "Word document"),
            ("cases.xlsx", docx_bytes(), "Excel workbook"),
            ("cases.docx", minimal_pdf(), "Word document"),
            ("logs.zip", b"PK\x03\x04 truncated, no central directory", "ZIP archive"),
            ("setup.zip", EXE + zip_bytes({"a.txt": b"x"}), "ZIP archive"),  # self-extracting
            ("notes.txt", b"plain start\x00\x01\x02 binary", "plain text"),
            ("change.sql", EXE, "SQL script"),
            ("notes.txt", b"\xff\xfe\x80\x80 not text", "plain text"),
            ("screen.png", JPEG, "PNG image"),
            ("photo.jpg", PNG, "JPEG image"),
            ("report.pdf", b"", "PDF document"),
        ],
    )
    def test_content_not_matching_the_extension_is_refused(
        self, app, client, world, draft, name, content, says
    ):
        error = assert_error(upload(client, world, draft, content, name), 422, "invalid_input")
        assert error["message"].startswith(f"The file '{name}' is not ")
        assert says in error["message"]
        assert error["details"]["fields"]["file"]
        nothing_recorded(app, draft)

    @pytest.mark.parametrize(
        ("name", "content"),
        [
            ("page.html", b"<html><script>alert(1)</script></html>"),
            ("app.js", b"alert(1)"),
            ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>'),
            ("setup.exe", EXE),
            ("report.pdf.exe", EXE),
            ("README", b"no extension"),
        ],
    )
    def test_unknown_extension_is_refused(self, app, client, world, draft, name, content):
        error = assert_error(upload(client, world, draft, content, name), 422, "invalid_input")
        assert f"'{name}'" in error["message"] and "PDF" in error["message"]
        assert error["details"]["file_type"]["problem"] == "unknown_type"
        assert "pdf" in error["details"]["file_type"]["accepted"]
        nothing_recorded(app, draft)

    def test_the_page_explains_a_refused_file_in_chinese(self, app, client, world, draft):
        sign_in(client, "vendor_engineer")
        token = csrf_token(client, f"/requests/{draft}")
        response = client.post(
            f"/requests/{draft}/attachments",
            data={"csrf_token": token, "kind": "test_report", "file": (io.BytesIO(EXE), "r.pdf")},
            content_type="multipart/form-data",
        )
        assert response.status_code == 422
        assert "内容与文件名不符" in response.get_data(as_text=True)
        nothing_recorded(app, draft)

    def test_refusal_happens_in_the_workflow_layer(self, app, flow, db):
        request = flow.create("upgrade")
        with pytest.raises(InvalidInput) as caught:
            flow.attach(request, "vendor_engineer", "test_report", EXE)
        assert caught.value.details["fields"]["file"]
        assert request.version == 1
        assert stored_files(app) == []


# ---------------------------------------------------------------- kinds


class TestKinds:
    def test_unknown_kind_is_422_listing_the_known_ones(self, app, client, world, draft):
        response = upload(client, world, draft, minimal_pdf(), "r.pdf", kind="photo_of_cat")
        error = assert_error(response, 422, "invalid_input")
        assert "photo_of_cat" in error["message"]
        for kind in attachment_ops.DOCUMENT_KINDS:
            assert kind in error["message"]
        assert error["details"]["fields"]["kind"]
        nothing_recorded(app, draft)

    def test_vocabulary_and_labels_agree(self, client, world, draft):
        from web.i18n import DOCUMENT_KINDS

        assert tuple(DOCUMENT_KINDS) == attachment_ops.DOCUMENT_KINDS
        for kind in (
            "structure_document",
            "backup_record",
            "quotation",
            "test_report",
            "other",
        ):
            assert kind in attachment_ops.DOCUMENT_KINDS
        sign_in(client, "vendor_engineer")
        page = client.get(f"/requests/{draft}").get_data(as_text=True)
        for label in ("表结构文档", "备份记录", "报价单", "测试报告"):
            assert label in page


# ---------------------------------------------------------------- storage


class TestStorage:
    def test_path_in_the_name_is_only_a_display_name(self, app, client, world, draft, tmp_path):
        content = b"root:x:0:0:root:/root:/bin/bash\n"
        response = upload(client, world, draft, content, "../../etc/passwd.txt")
        assert response.status_code == 201, response.get_json()
        meta = response.get_json()
        assert meta["filename"] == "passwd.txt"
        storage = Path(app.config["ATTACHMENTS_DIR"]).resolve()
        assert [p.resolve() for p in stored_files(app)] == [
            storage / meta["sha256"][:2] / meta["sha256"]
        ]
        # Nothing was written next to or above the storage folder.
        assert [p for p in tmp_path.rglob("passwd*")] == []
        assert not (storage.parent.parent / "etc").exists()
        download = client.get(f"{API}/attachments/{meta['id']}", headers=world.auth("it_staff"))
        assert download.data == content
        assert download.headers["Content-Disposition"].startswith("attachment")
        assert "passwd.txt" in download.headers["Content-Disposition"]
        assert "/" not in download.headers["Content-Disposition"]
        assert download.headers["X-Content-Type-Options"] == "nosniff"


# ---------------------------------------------------------------- integrity


def _upload_pdf(client, world, request_id) -> dict:
    response = upload(client, world, request_id, minimal_pdf(), "report.pdf")
    assert response.status_code == 201, response.get_json()
    return response.get_json()


class TestIntegrity:
    @pytest.mark.parametrize("damage", ["alter", "delete"])
    def test_damaged_file_is_withheld_and_recorded(self, app, client, world, draft, damage):
        meta = _upload_pdf(client, world, draft)
        blob = Path(app.config["ATTACHMENTS_DIR"]) / meta["sha256"][:2] / meta["sha256"]
        if damage == "alter":
            blob.write_bytes(minimal_pdf().replace(b"200 200", b"999 999"))
        else:
            blob.unlink()
        response = client.get(f"{API}/attachments/{meta['id']}", headers=world.auth("it_staff"))
        error = assert_error(response, 409, "integrity_failed")
        assert error["message"] == (
            "The stored file no longer matches its SHA-256 and is withheld; IT has been told."
        )
        assert error["details"]["attachment_id"] == meta["id"]
        with fresh(app) as s:
            events = s.scalars(select(SecurityEvent)).all()
        assert [(e.kind, e.subject, e.actor_name) for e in events] == [
            (
                "attachment_integrity_failed",
                f"attachment {meta['id']} of request {draft}",
                "it_staff",
            )
        ]
        assert events[0].actor_id == world.users["it_staff"].id and events[0].at is not None
        # The auditor sees it.
        sign_in(client, "auditor")
        page = client.get("/audit")
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        table = html[html.index('id="security-events"') :]
        assert f"attachment {meta['id']} of request {draft}" in table.split("</table>")[0]

    def test_intact_file_downloads_and_records_nothing(self, app, client, world, draft):
        meta = _upload_pdf(client, world, draft)
        response = client.get(f"{API}/attachments/{meta['id']}", headers=world.auth("it_staff"))
        assert response.status_code == 200 and response.data == minimal_pdf()
        assert response.headers["X-Checksum-SHA256"] == meta["sha256"]
        with fresh(app) as s:
            assert s.scalar(select(func.count()).select_from(SecurityEvent)) == 0

    def test_security_events_are_only_flushed(self, app, db, world):
        record_security_event(db, "test_event", world.users["it_staff"], "subject", "detail")
        assert db.scalar(select(func.count()).select_from(SecurityEvent)) == 1
        db.rollback()
        assert db.scalar(select(func.count()).select_from(SecurityEvent)) == 0

    def test_only_the_auditor_reads_security_events(self, client, world):
        sign_in(client, "it_staff")
        assert client.get("/audit").status_code == 403


# ---------------------------------------------------------------- removing documents


def options(db, request, user):
    return {o.event.name: o for o in available_events(db, request, user)}


class TestRemoval:
    def test_uploader_removes_through_the_api(self, app, client, world, draft):
        meta = _upload_pdf(client, world, draft)
        response = remove(client, world, meta["id"], version=2)
        assert response.status_code == 200, response.get_json()
        body = response.get_json()
        assert body["version"] == 3 and body["attachments"] == []
        with fresh(app) as s:
            request = s.get(Request, draft)
            entry = s.scalars(
                select(HistoryEntry)
                .where(HistoryEntry.request_id == draft)
                .order_by(HistoryEntry.seq.desc())
            ).first()
            assert (entry.event, entry.seq) == ("detach", 3)
            assert entry.fields == {
                "kind": "test_report",
                "filename": "report.pdf",
                "sha256": meta["sha256"],
            }
            assert s.get(Attachment, meta["id"]).removed_at is not None
            # has_attachment no longer counts it: submitting needs a test report again.
            submit = options(s, request, world.users["vendor_engineer"])["submit_for_review"]
            assert submit.allowed is False
            assert [r["guard"] for r in submit.reasons] == ["has_attachment"]
        # The bytes stay: the history names their SHA-256.
        assert len(stored_files(app)) == 1

    def test_without_a_body_and_by_it_staff(self, client, world, draft):
        meta = _upload_pdf(client, world, draft)
        response = client.delete(f"{API}/attachments/{meta['id']}", headers=world.auth("it_staff"))
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["attachments"] == []

    @pytest.mark.parametrize(
        ("user", "status", "code"),
        [("other_vendor", 404, "not_found"), ("vendor_manager", 403, "forbidden")],
    )
    def test_others_may_not_remove(self, app, client, world, draft, user, status, code):
        meta = _upload_pdf(client, world, draft)
        assert_error(remove(client, world, meta["id"], user=user), status, code)
        with fresh(app) as s:
            assert s.get(Attachment, meta["id"]).removed_at is None
            assert s.get(Request, draft).version == 2

    def test_the_auditor_may_not_remove(self, client, world, draft):
        meta = _upload_pdf(client, world, draft)
        assert_error(remove(client, world, meta["id"], user="auditor"), 403, "forbidden")

    def test_removing_twice_is_refused(self, app, client, world, draft):
        meta = _upload_pdf(client, world, draft)
        assert remove(client, world, meta["id"]).status_code == 200
        error = assert_error(remove(client, world, meta["id"]), 404, "not_found")
        assert "already been removed" in error["message"]
        with fresh(app) as s:
            assert s.get(Request, draft).version == 3

    def test_stale_version_is_refused(self, app, client, world, draft):
        meta = _upload_pdf(client, world, draft)
        assert_error(remove(client, world, meta["id"], version=1), 409, "stale_version")
        with fresh(app) as s:
            assert s.get(Attachment, meta["id"]).removed_at is None

    @pytest.mark.parametrize(
        "body", [{"version": "two"}, {"version": 2, "why": "x"}, {"version": 0}]
    )
    def test_bad_body_is_422(self, client, world, draft, body):
        meta = _upload_pdf(client, world, draft)
        response = client.delete(
            f"{API}/attachments/{meta['id']}", headers=world.auth("vendor_engineer"), json=body
        )
        assert_error(response, 422, "invalid_input")

    def test_malformed_json_is_422(self, client, world, draft):
        meta = _upload_pdf(client, world, draft)
        response = client.delete(
            f"{API}/attachments/{meta['id']}",
            headers=world.auth("vendor_engineer"),
            data="{version",
            content_type="application/json",
        )
        assert_error(response, 422, "invalid_input")

    def test_final_request_is_409(self, app, flow, db, client, world):
        request = flow.create("upgrade")
        attachment = flow.attach(request, "vendor_engineer", "test_report")
        flow.fire(request, "withdraw", "vendor_engineer")
        db.commit()
        db.close()
        assert_error(remove(client, world, attachment.id), 409, "invalid_transition")
        with fresh(app) as s:
            assert s.get(Attachment, attachment.id).removed_at is None

    def test_removal_after_signing_voids_the_signature(self, flow):
        request = flow.create("upgrade")
        report = flow.attach(request, "vendor_engineer", "test_report")
        flow.attach(request, "vendor_engineer", "test_cases")
        flow.fire(request, "submit_for_review", "vendor_engineer")
        flow.fire(request, "sign", "it_signer")
        assert "signature" in request.data
        attachment_ops.remove_attachment(
            flow.db, request, flow.user("vendor_engineer"), report.id, request.version
        )
        assert request.state == "under_review" and "signature" not in request.data
        entry = flow.history(request)[-1]
        assert (entry.event, entry.from_state, entry.to_state) == (
            "detach",
            "signed",
            "under_review",
        )
        assert "document 'test_report.pdf' removed" in entry.comment

    def test_another_requests_document_is_not_found(self, flow):
        one, two = flow.create("upgrade"), flow.create("upgrade")
        attachment = flow.attach(one, "vendor_engineer", "test_report")
        with pytest.raises(NotFound):
            attachment_ops.remove_attachment(
                flow.db, two, flow.user("vendor_engineer"), attachment.id
            )
        assert two.version == 1 and attachment.removed_at is None

    def test_remove_button_on_the_page(self, app, client, world, draft):
        meta = _upload_pdf(client, world, draft)
        sign_in(client, "vendor_engineer")
        page = client.get(f"/requests/{draft}").get_data(as_text=True)
        action = f"/requests/{draft}/attachments/{meta['id']}/remove"
        assert action in page
        # Without the CSRF token nothing happens.
        assert client.post(action, data={"version": "2"}).status_code == 400
        token = csrf_token(client, f"/requests/{draft}")
        response = client.post(action, data={"csrf_token": token, "version": "2"})
        assert response.status_code == 302
        page = client.get(f"/requests/{draft}").get_data(as_text=True)
        assert (
            action not in page
            and "report.pdf" not in page.split('id="documents"')[1].split("</section>")[0]
        )
        with fresh(app) as s:
            assert s.get(Request, draft).version == 3
            assert s.get(Attachment, meta["id"]).removed_at is not None

    def test_no_remove_button_for_others(self, client, world, draft):
        meta = _upload_pdf(client, world, draft)
        sign_in(client, "vendor_manager")
        page = client.get(f"/requests/{draft}").get_data(as_text=True)
        assert "report.pdf" in page
        assert f"/attachments/{meta['id']}/remove" not in page
        token = csrf_token(client, f"/requests/{draft}")
        response = client.post(
            f"/requests/{draft}/attachments/{meta['id']}/remove",
            data={"csrf_token": token, "version": "2"},
        )
        assert response.status_code == 403
        assert "只有上传者或信息科人员可以删除此文件" in response.get_data(as_text=True)
