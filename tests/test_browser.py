"""A requirement carried through the real pages in Debian's Chromium, every step by clicking.

The app runs in a thread on a free local port against the test database; Playwright drives the
system's Chromium (``executable_path``), never a downloaded browser. Screenshots of every step go
to ``test-output/browser/``. A missing Chromium is a failure, never a skip: ``make test`` runs
``make browser`` first, which installs Debian's package when it is missing.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import pytest
from conftest import PASSWORD
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker
from werkzeug.serving import make_server

from models import Request, System

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-output" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium():
    if CHROMIUM is None:
        pytest.fail("Chromium is not installed; `make browser` (run by `make test`) installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def live_server(app, world):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


class Person:
    """One person at the browser: signs in, opens pages, clicks, and keeps screenshots."""

    def __init__(self, browser, base: str, username: str):
        self.context = browser.new_context(
            locale="zh-CN", viewport={"width": 1280, "height": 900}, base_url=base
        )
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.username = username

    def sign_in(self) -> None:
        self.page.goto("/login")
        self.page.fill("#username", self.username)
        self.page.fill("#password", PASSWORD)
        self.page.click("#login-form button[type=submit]")
        self.page.wait_for_selector("#language-switch")

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def fire(self, event: str, fill: dict | None = None, select: dict | None = None) -> None:
        """Open the event's form by clicking its button, fill it in, and confirm."""
        self.page.click(f"summary[data-event={event}]")
        for name, value in (fill or {}).items():
            self.page.fill(f"#{event}-{name}", value)
        for name, value in (select or {}).items():
            self.page.select_option(f"#{event}-{name}", value)
        self.page.click(f"#event-{event} form button[type=submit]")
        self.page.wait_for_selector(".flash[role=status]")

    def badge(self) -> str:
        return self.page.inner_text("#state-badge").strip()

    def close(self) -> None:
        self.context.close()


def state_of(app, request_id: int) -> str:
    with sessionmaker(app.extensions["changeflow.engine"])() as session:
        return session.scalar(select(Request.state).where(Request.id == request_id))


def test_requirement_from_submission_to_closing(app, world, live_server, chromium):
    # The department raises the requirement and submits it.
    dept = Person(chromium, live_server, "dept_user")
    dept.sign_in()
    dept.shot("01-dashboard-department")
    dept.page.click("a[href='/requests']")
    dept.page.click("a[href='/requests/new/requirement']")
    dept.page.select_option("#contract_id", str(world.contract.id))
    dept.page.fill("#title", "随访满意度统计报表")
    dept.page.select_option("#req_type", "report")
    dept.page.fill("#module", "统计分析")
    dept.shot("02-create-form")
    dept.page.click("#create-form button[type=submit]")
    dept.page.wait_for_selector("#state-badge")
    request_id = int(dept.page.url.rstrip("/").rsplit("/", 1)[1])
    assert dept.badge() == "草稿"
    dept.fire("submit")
    assert dept.badge() == "已提交" and state_of(app, request_id) == "submitted"
    # Triage is IT's: the department sees the button disabled, with the reason.
    assert dept.page.is_disabled("#event-triage button")
    assert "信息科工作人员" in dept.page.inner_text("#why-triage")
    dept.shot("03-submitted-disabled-reason")
    dept.close()

    it = Person(chromium, live_server, "it_staff")
    it.sign_in()
    assert it.page.locator(f"#awaiting a[href='/requests/{request_id}']").count() == 1
    it.shot("04-dashboard-it-awaiting-triage")
    it.page.click(f"#awaiting a[href='/requests/{request_id}']")
    it.fire("triage", select={"priority": "high"})
    assert it.badge() == "已分派" and state_of(app, request_id) == "triaged"
    it.shot("05-triaged")
    it.close()

    vendor = Person(chromium, live_server, "vendor_engineer")
    vendor.sign_in()
    vendor.page.goto(f"/requests/{request_id}")
    vendor.fire(
        "estimate",
        fill={
            "estimate_days": "3",
            "analysis": "新增随访满意度统计，按科室与月份汇总。",
            "modification_plan": "新增报表页面与统计查询。",
            "promised_date": "2026-12-20",
        },
    )
    assert vendor.badge() == "已评估" and state_of(app, request_id) == "estimated"
    vendor.shot("06-estimated")
    vendor.close()

    signer = Person(chromium, live_server, "it_signer")
    signer.sign_in()
    signer.page.goto(f"/requests/{request_id}")
    signer.fire("it_confirm")
    assert signer.badge() == "信息科已确认" and state_of(app, request_id) == "it_confirmed"
    signer.close()

    # The vendor manager reads in English: the switch changes every label, then confirms.
    manager = Person(chromium, live_server, "vendor_manager")
    manager.sign_in()
    manager.page.goto(f"/requests/{request_id}")
    assert manager.page.inner_text("#next-steps h2") == "下一步"
    manager.page.click("#language-switch button")
    manager.page.wait_for_selector("html[lang=en]")
    assert manager.page.inner_text("#next-steps h2") == "Next steps"
    assert manager.badge() == "Confirmed by IT"
    manager.shot("07-english")
    manager.fire("vendor_confirm")
    assert manager.badge() == "Confirmed by both sides"
    assert state_of(app, request_id) == "confirmed"
    # The diagram is drawn by the vendored Mermaid, with the current state highlighted.
    manager.page.wait_for_selector("html[data-diagrams=ready]")
    assert manager.page.locator("#workflow svg .current").count() >= 1
    manager.shot("08-confirmed-by-both-sides")
    manager.fire("start_development")
    manager.fire(
        "deliver", fill={"delivery_note": "Report page deployed to test.", "actual_days": "3"}
    )
    assert manager.badge() == "Delivered" and state_of(app, request_id) == "delivered"
    manager.close()

    dept = Person(chromium, live_server, "dept_user")
    dept.sign_in()
    assert dept.page.locator(f"#awaiting a[href='/requests/{request_id}']").count() == 1
    dept.page.click(f"#awaiting a[href='/requests/{request_id}']")
    dept.fire("dept_accept")
    assert dept.badge() == "科室已验收"
    dept.close()

    it = Person(chromium, live_server, "it_staff")
    it.sign_in()
    it.page.goto(f"/requests/{request_id}")
    it.fire("it_accept")
    it.fire("close", fill={"comment": "验收通过，归档。"})
    assert it.badge() == "已关闭" and state_of(app, request_id) == "closed"
    assert "此申请已结束" in it.page.inner_text("#next-steps")
    it.shot("09-closed")
    it.close()


def test_agreement_path_and_the_vendors_quota_page(app, db, catalog, world, live_server, chromium):
    """9 days against a 7-day pool: 7 free, 2 under a supplementary agreement, all by clicking
    from the second confirmation on; the vendor then reads the quota page and its burn-down."""
    from helpers import PATHS, Flow, estimate_input

    flow = Flow(app, db, catalog, world)
    request = flow.create("requirement", title="随访数据接口改造")
    flow.run(request, PATHS["requirement"]["triaged"], "dept_user")
    flow.fire(request, "estimate", "vendor_engineer", estimate_input("9"))
    flow.fire(request, "it_confirm", "it_signer")
    request_id, contract_id = request.id, world.contract.id
    db.commit()
    db.close()

    manager = Person(chromium, live_server, "vendor_manager")
    manager.sign_in()
    manager.page.goto(f"/requests/{request_id}")
    manager.fire("vendor_confirm")
    assert manager.badge() == "待签补充协议" and state_of(app, request_id) == "awaiting_agreement"
    # Recording the agreement waits for the signed document.
    manager.close()

    signer = Person(chromium, live_server, "it_signer")
    signer.sign_in()
    signer.page.goto(f"/requests/{request_id}")
    assert signer.page.is_disabled("#event-record_agreement button")
    assert "补充协议" in signer.page.inner_text("#why-record_agreement")
    signer.page.select_option("#kind", "supplementary_agreement")
    signer.page.set_input_files(
        "#file",
        {"name": "补充协议.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 agreement"},
    )
    signer.page.click("#upload-form button[type=submit]")
    signer.page.wait_for_selector(".flash[role=status]")
    signer.fire("record_agreement", fill={"paid_days": "2", "fee_fen": "360000"})
    assert signer.badge() == "双方已确认" and state_of(app, request_id) == "confirmed"
    signer.shot("10-agreement-recorded")
    signer.close()

    vendor = Person(chromium, live_server, "vendor_engineer")
    vendor.sign_in()
    assert vendor.page.inner_text("#quota tr[data-contract='C-A'] td.remaining").strip() == "0"
    vendor.page.click(f"#quota a[href='/contracts/{contract_id}/quota']")
    assert vendor.page.inner_text("#remaining").strip() == "0"
    assert vendor.page.locator("#burn-down polyline").count() == 1
    vendor.shot("11-vendor-quota-page")
    vendor.close()


def test_upgrade_from_draft_to_closed_in_the_browser(app, world, live_server, chromium, tmp_path):
    """Z4 by clicking: the vendor raises an upgrade and hands over the test report, IT signs it
    with the password typed again, the vendor deploys exactly the signed version, IT verifies it
    and the system runs the new version; the sign-off sheet shows the digest and the PDF's hash;
    closing waits for the upgrade report (Z7)."""
    report = tmp_path / "test-report.pdf"
    report.write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n")
    report_sha256 = hashlib.sha256(report.read_bytes()).hexdigest()

    vendor = Person(chromium, live_server, "vendor_engineer")
    vendor.sign_in()
    vendor.page.goto("/requests/new/upgrade")
    vendor.page.select_option("#contract_id", str(world.contract.id))
    vendor.page.select_option("#system_id", str(world.system.id))
    vendor.page.fill("#title", "System A 升级到 1.1.0")
    vendor.page.fill("#to_version", "1.1.0")
    vendor.shot("upgrade-01-create-form")
    vendor.page.click("#create-form button[type=submit]")
    vendor.page.wait_for_selector("#state-badge")
    request_id = int(vendor.page.url.rstrip("/").rsplit("/", 1)[1])
    assert vendor.badge() == "草稿" and state_of(app, request_id) == "draft"

    # Z4: no review without the test report. The page says so beside the disabled button, and
    # the server refuses a form sent anyway (as from a page loaded in another tab).
    assert vendor.page.is_disabled("#event-submit_for_review button")
    assert "测试报告" in vendor.page.inner_text("#why-submit_for_review")
    vendor.page.evaluate(
        """(action) => {
            const form = document.createElement("form");
            form.method = "post";
            form.action = action;
            for (const name of ["csrf_token", "version"]) {
                const input = document.createElement("input");
                input.type = "hidden";
                input.name = name;
                input.value = document.querySelector(`#documents input[name=${name}]`).value;
                form.appendChild(input);
            }
            document.body.appendChild(form);
            form.submit();
        }""",
        f"/requests/{request_id}/events/submit_for_review",
    )
    vendor.page.wait_for_selector("#form-error")
    assert "测试报告" in vendor.page.inner_text("#form-error")
    assert vendor.badge() == "草稿" and state_of(app, request_id) == "draft"
    vendor.shot("upgrade-02-refused-without-test-report")

    vendor.page.goto(f"/requests/{request_id}")
    vendor.page.select_option("#kind", "test_report")
    vendor.page.set_input_files("#file", str(report))
    vendor.page.click("#upload-form button[type=submit]")
    vendor.page.wait_for_selector(".flash[role=status]")
    assert report_sha256 in vendor.page.inner_text("#documents")
    vendor.fire("submit_for_review")
    assert vendor.badge() == "审核中" and state_of(app, request_id) == "under_review"
    vendor.shot("upgrade-03-under-review")
    vendor.close()

    # IT signs: the password is typed again; a wrong one signs nothing.
    signer = Person(chromium, live_server, "it_signer")
    signer.sign_in()
    signer.page.goto(f"/requests/{request_id}")
    signer.page.click("summary[data-event=sign]")
    signer.page.fill("#sign-password", "not the password")
    signer.page.click("#event-sign form button[type=submit]")
    signer.page.wait_for_selector("#form-error")
    assert "密码错误" in signer.page.inner_text("#form-error")
    assert signer.page.is_visible("#sign-password")  # still asked for: nothing was recorded
    assert signer.badge() == "审核中" and state_of(app, request_id) == "under_review"
    signer.shot("upgrade-04-wrong-password")
    # The refused form is shown open again, its password input empty.
    signer.page.fill("#sign-password", PASSWORD)
    signer.page.click("#event-sign form button[type=submit]")
    signer.page.wait_for_selector(".flash[role=status]")
    assert signer.badge() == "已签字" and state_of(app, request_id) == "signed"
    signer.shot("upgrade-05-signed")
    signer.close()

    vendor = Person(chromium, live_server, "vendor_engineer")
    vendor.sign_in()
    vendor.page.goto(f"/requests/{request_id}")
    vendor.fire("schedule", fill={"window_start": "2026-12-01T22:00"})
    assert vendor.badge() == "已排期" and state_of(app, request_id) == "scheduled"
    # Deploying another version than the signed one is refused, naming both.
    vendor.page.click("summary[data-event=deploy]")
    vendor.page.fill("#deploy-deployed_version", "1.2.0")
    vendor.page.click("#event-deploy form button[type=submit]")
    vendor.page.wait_for_selector("#form-error")
    refusal = vendor.page.inner_text("#form-error")
    assert "1.2.0" in refusal and "1.1.0" in refusal
    assert vendor.badge() == "已排期" and state_of(app, request_id) == "scheduled"
    vendor.shot("upgrade-06-deploy-refused-other-version")
    vendor.page.fill("#deploy-deployed_version", "1.1.0")
    vendor.page.click("#event-deploy form button[type=submit]")
    vendor.page.wait_for_selector(".flash[role=status]")
    assert vendor.badge() == "已部署" and state_of(app, request_id) == "deployed"
    vendor.shot("upgrade-07-deployed")
    vendor.close()

    it = Person(chromium, live_server, "it_staff")
    it.sign_in()
    it.page.goto(f"/requests/{request_id}")
    it.fire("verify")
    assert it.badge() == "已验证" and state_of(app, request_id) == "verified"
    with sessionmaker(app.extensions["changeflow.engine"])() as session:
        assert session.get(System, world.system.id).current_version == "1.1.0"
    it.shot("upgrade-08-verified")

    # The printable sheet: the signature's digest and the SHA-256 of the signed PDF.
    it.page.click("#signoff-link")
    it.page.wait_for_selector("#signoff-sheet")
    assert len(it.page.inner_text("#signature-digest").strip()) >= 32
    assert it.page.locator("#signature .badge.ok").count() == 1
    assert report_sha256 in it.page.inner_text("#signed-documents")
    assert "1.1.0" in it.page.inner_text("#signed-version")
    it.shot("upgrade-09-signoff-sheet")

    # Z7: closing waits for the upgrade report; with it attached, IT closes.
    it.page.goto(f"/requests/{request_id}")
    assert it.page.is_disabled("#event-close button")
    assert "升级报告" in it.page.inner_text("#why-close")
    upgrade_report = tmp_path / "upgrade-report.pdf"
    upgrade_report.write_bytes(b"%PDF-1.4\n% upgrade report 1.1.0\n%%EOF\n")
    it.page.select_option("#kind", "upgrade_report")
    it.page.set_input_files("#file", str(upgrade_report))
    it.page.click("#upload-form button[type=submit]")
    it.page.wait_for_selector(".flash[role=status]")
    it.fire("close")
    assert it.badge() == "已关闭" and state_of(app, request_id) == "closed"
    it.shot("upgrade-10-closed")
    it.close()


SCHEMA_CHANGE_SQL = (
    "-- 随访表：新增备注列，删除停用列\n"
    "ALTER TABLE fu_visit ADD COLUMN note VARCHAR(200);\n"
    "ALTER TABLE fu_visit DROP COLUMN old_note;\n"
)
SCHEMA_ROLLBACK_SQL = (
    "ALTER TABLE fu_visit ADD COLUMN old_note VARCHAR(200);\n"  # restores the dropped column
    "ALTER TABLE fu_visit DROP COLUMN note;\n"
)


def test_schema_change_from_submission_to_execution_in_the_browser(
    app, world, live_server, chromium
):
    """D1 by clicking: the vendor submits DDL, the DBA sees each finding beside its statement,
    waives the error in writing, approves with the password typed again, and the execution
    record is accepted only for the approved bytes (the textarea's CRLF is the same SQL)."""
    vendor = Person(chromium, live_server, "vendor_engineer")
    vendor.sign_in()
    vendor.page.goto("/requests/new/schema_change")
    vendor.page.select_option("#contract_id", str(world.contract.id))
    vendor.page.fill("#title", "随访表增加备注列")
    vendor.page.fill("#database_name", "followup")
    vendor.page.select_option("#dialect", "mysql")
    vendor.page.fill("#change_sql", SCHEMA_CHANGE_SQL)
    vendor.page.fill("#rollback_sql", SCHEMA_ROLLBACK_SQL)
    vendor.page.fill("#reason", "随访记录需要备注。")
    vendor.page.click("#create-form button[type=submit]")
    vendor.page.wait_for_selector("#state-badge")
    request_id = int(vendor.page.url.rstrip("/").rsplit("/", 1)[1])
    vendor.fire("submit_for_review")
    assert vendor.badge() == "审核中" and state_of(app, request_id) == "under_review"
    vendor.close()

    dba = Person(chromium, live_server, "it_dba")
    dba.sign_in()
    dba.page.goto(f"/requests/{request_id}")
    dba.page.click("#review-link")
    dba.page.wait_for_selector("#statements")
    assert "删除列 fu_visit.old_note" in dba.page.inner_text("#statement-2")
    assert dba.page.locator("#statement-1 .finding").count() == 0
    assert dba.page.inner_text("#risk").strip() == "错误"
    dba.shot("schema-01-review-findings")

    # Approval waits for a written waiver of the error finding; the page says which one.
    dba.page.goto(f"/requests/{request_id}")
    assert dba.page.is_disabled("#event-approve button")
    assert "2-drop-column" in dba.page.inner_text("#why-approve")
    assert "书面豁免" in dba.page.inner_text("#why-approve")

    dba.page.goto(f"/requests/{request_id}/review")
    finding = dba.page.locator("#finding-2-drop-column")
    finding.locator("summary").click()
    finding.locator("textarea").fill("old_note 自 2024 年停用，已核对无引用。")
    finding.locator("button[type=submit]").click()
    dba.page.wait_for_selector(".flash[role=status]")
    assert "已书面豁免" in dba.page.inner_text("#finding-2-drop-column")
    dba.shot("schema-02-waived")

    dba.page.goto(f"/requests/{request_id}")
    dba.page.click("summary[data-event=approve]")
    if dba.page.is_visible("#approve-password"):
        dba.page.fill("#approve-password", PASSWORD)
    dba.page.click("#event-approve form button[type=submit]")
    dba.page.wait_for_selector(".flash[role=status]")
    assert dba.badge() == "已批准" and state_of(app, request_id) == "approved"
    dba.close()

    # Only the approved bytes: other SQL is refused naming both hashes.
    approved_sha = hashlib.sha256(SCHEMA_CHANGE_SQL.encode()).hexdigest()
    vendor = Person(chromium, live_server, "vendor_engineer")
    vendor.sign_in()
    vendor.page.goto(f"/requests/{request_id}")
    vendor.page.click("summary[data-event=execute]")
    other = SCHEMA_CHANGE_SQL.replace("200", "20")
    vendor.page.fill("#execute-executed_sql", other)
    vendor.page.fill("#execute-backup_reference", "BK-20261125-01")
    vendor.page.select_option("#execute-result", "success")
    vendor.page.click("#event-execute form button[type=submit]")
    vendor.page.wait_for_selector("#form-error")
    refusal = vendor.page.inner_text("#form-error")
    assert approved_sha in refusal and hashlib.sha256(other.encode()).hexdigest() in refusal
    assert state_of(app, request_id) == "approved"
    vendor.shot("schema-03-other-bytes-refused")
    vendor.page.fill("#execute-executed_sql", SCHEMA_CHANGE_SQL)
    vendor.page.fill("#execute-backup_reference", "BK-20261125-01")
    vendor.page.select_option("#execute-result", "success")
    vendor.page.click("#event-execute form button[type=submit]")
    vendor.page.wait_for_selector(".flash[role=status]")
    assert vendor.badge() == "已执行" and state_of(app, request_id) == "executed"

    vendor.page.goto(f"/requests/{request_id}/review/sheet")
    assert approved_sha in vendor.page.inner_text("#sheet-change-sha256")
    assert vendor.page.locator("#approval-intact").count() == 1
    assert approved_sha in vendor.page.inner_text("#execution")
    vendor.shot("schema-04-review-sheet")
    vendor.close()
