"""One demo hospital: departments, two vendors, five contracts (one per seed contract),
systems with release histories, one account per role and requests in several states.

Loading twice changes nothing: every row is looked up by its natural key first.
Demo accounts are flagged ``is_demo`` and can only sign in while the app runs in demo mode.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Contract, Department, Release, Request, System, User, Vendor, utcnow
from workflow.accounts import create_user
from workflow.engine import Catalog, create_request, fire

DEMO_PASSWORD = "changeflow-demo"

DEPARTMENTS = [
    ("it", "信息科", "IT department"),
    ("cardiology", "心内科", "Cardiology"),
    ("lab", "检验科", "Laboratory"),
    ("outpatient", "门诊部", "Outpatient department"),
    ("insurance", "医保办", "Medical insurance office"),
]
VENDORS = [("vendor_a", "广州随访科技有限公司"), ("vendor_b", "华中智慧医疗信息有限公司")]
# code, name, vendor, policy template, start, end, system code, system name, releases
CONTRACTS = [
    (
        "Z-2026-001",
        "患者随访系统维保合同",
        "vendor_a",
        "zhanjiang_followup",
        date(2026, 1, 1),
        date(2026, 12, 31),
        "followup",
        "患者随访系统",
        [("3.2.0", date(2025, 9, 1)), ("3.3.0", date(2026, 3, 15)), ("3.4.0", date(2026, 9, 20))],
    ),
    (
        "W-2026-002",
        "DRG 系统运维服务合同",
        "vendor_b",
        "wuhan_drg",
        date(2026, 3, 1),
        date(2027, 2, 28),
        "drg",
        "DRG 分组与绩效系统",
        [("5.0.1", date(2025, 12, 1)), ("5.1.0", date(2026, 6, 30))],
    ),
    (
        "D-2026-003",
        "数字孪生可视化系统维保合同",
        "vendor_a",
        "digital_twin",
        date(2026, 2, 1),
        date(2027, 1, 31),
        "twin",
        "数字孪生可视化平台",
        [("1.0.0", date(2025, 11, 11)), ("1.1.0", date(2026, 8, 8))],
    ),
    (
        "Q-2026-004",
        "电子票据系统运维合同",
        "vendor_b",
        "qinghai_einvoice",
        date(2026, 1, 1),
        date(2026, 12, 31),
        "einvoice",
        "医疗电子票据系统",
        [("2.3.0", date(2025, 10, 10)), ("2.4.0", date(2026, 5, 20))],
    ),
    (
        "X-2026-005",
        "HIS 整体运维服务合同",
        "vendor_b",
        "xiayi_his",
        date(2026, 1, 1),
        date(2028, 12, 31),
        "his",
        "医院信息系统（HIS）",
        [("8.5.2", date(2025, 8, 1)), ("8.6.0", date(2026, 4, 1)), ("8.7.0", date(2026, 10, 15))],
    ),
]
# username, roles, department, vendor
ACCOUNTS = [
    ("dept_user", ["dept_user"], "cardiology", None),
    ("it_staff", ["it_staff"], None, None),
    ("it_signer", ["it_signer"], None, None),
    ("it_dba", ["it_dba"], None, None),
    ("vendor_engineer", ["vendor_engineer"], None, "vendor_a"),
    ("vendor_manager", ["vendor_manager"], None, "vendor_a"),
    ("sys_admin", ["sys_admin"], None, None),
    ("sec_admin", ["sec_admin"], None, None),
    ("auditor", ["auditor"], None, None),
]


def _get_or_add(session: Session, model, code: str, **values):
    row = session.scalar(select(model).where(model.code == code))
    if row is None:
        row = model(code=code, **values)
        session.add(row)
        session.flush()
    return row


def _demo_requests(
    session: Session,
    catalog: Catalog,
    users: dict,
    contracts: dict,
    systems: dict,
    attachments_dir: Path | None,
) -> int:
    """Requests walked through real events, so their history is genuine."""
    made = 0
    cardiology = session.scalar(select(Department).where(Department.code == "cardiology"))

    def raise_request(
        title, kind, who, contract, steps, system=None, fields=None, docs=(), minutes_ago=0
    ):
        nonlocal made
        # A fault reported a while ago shows its clocks part-used (or breached) on the dashboard;
        # its steps follow one minute apart after the report.
        reported = utcnow() - timedelta(minutes=minutes_ago)
        if session.scalar(select(Request.id).where(Request.title == title)) is not None:
            return
        req = create_request(
            session,
            catalog,
            users[who],
            kind=kind,
            contract_id=contracts[contract].id,
            system_id=systems[system].id if system else None,
            department_id=cardiology.id if who == "dept_user" else None,
            title=title,
            description=f"演示数据 / demo: {title}",
            fields=fields or {},
            now=reported,
        )
        for kind_, name, body in docs:
            if attachments_dir is not None:
                from workflow.attachments import add_attachment

                add_attachment(
                    session,
                    req,
                    users[who],
                    kind=kind_,
                    filename=name,
                    stream=io.BytesIO(body),
                    storage_dir=attachments_dir,
                    max_bytes=1 << 20,
                )
        for step, (event, actor, event_fields, comment) in enumerate(steps, start=1):
            at = reported + timedelta(minutes=step) if minutes_ago else None
            fire(session, req, event, users[actor], event_fields, req.version, comment, now=at)
        made += 1

    estimate = {
        "estimate_days": "3",
        "analysis": "需在随访表单增加字段",
        "modification_plan": "表单配置 + 报表调整",
        "promised_date": "2026-12-15",
    }
    raise_request(
        "随访表单增加出院诊断字段",
        "requirement",
        "dept_user",
        "Z-2026-001",
        [],
        system="followup",
        fields={"req_type": "new_feature", "module": "随访表单"},
    )
    raise_request(
        "心内科随访统计报表",
        "requirement",
        "dept_user",
        "Z-2026-001",
        [
            ("submit", "dept_user", {}, ""),
            ("triage", "it_staff", {"priority": "medium"}, "分派给厂商评估"),
            ("estimate", "vendor_engineer", estimate, ""),
        ],
        system="followup",
        fields={"req_type": "report", "module": "统计报表"},
    )
    raise_request(
        "随访短信模板支持变量",
        "requirement",
        "dept_user",
        "Z-2026-001",
        [
            ("submit", "dept_user", {}, ""),
            ("triage", "it_staff", {"priority": "high"}, ""),
            ("estimate", "vendor_engineer", {**estimate, "estimate_days": "2"}, ""),
            ("it_confirm", "it_signer", {}, "同意按评估实施"),
            ("vendor_confirm", "vendor_manager", {}, "确认"),
            ("start_development", "vendor_engineer", {}, ""),
        ],
        system="followup",
        fields={"req_type": "special_requirement", "module": "短信"},
    )
    raise_request(
        "随访系统升级到 3.4.0",
        "upgrade",
        "vendor_engineer",
        "Z-2026-001",
        [
            ("submit_for_review", "vendor_engineer", {}, "测试报告已上传"),
        ],
        system="followup",
        fields={"from_version": "3.3.0", "to_version": "3.4.0"},
        docs=[("test_report", "升级前测试报告-3.4.0.txt", "全部 124 个用例通过\n".encode())],
    )
    raise_request(
        "随访库增加随访结果索引",
        "schema_change",
        "vendor_engineer",
        "Z-2026-001",
        [
            ("submit_for_review", "vendor_engineer", {}, ""),
        ],
        fields={
            "database_name": "followup",
            "dialect": "mysql",
            "reason": "报表查询慢",
            "change_sql": (
                "-- 随访结果：按日期查询加索引，备注改短并必填，删除停用标志\n"
                "CREATE INDEX ix_result_date ON followup_result (result_date);\n"
                "ALTER TABLE followup_result MODIFY COLUMN remark VARCHAR(100) NOT NULL;\n"
                "ALTER TABLE followup_result DROP COLUMN legacy_flag;\n"
            ),
            "rollback_sql": (
                "ALTER TABLE followup_result ADD COLUMN legacy_flag TINYINT;\n"
                "ALTER TABLE followup_result MODIFY COLUMN remark VARCHAR(500) NULL;\n"
                "DROP INDEX ix_result_date ON followup_result;\n"
            ),
        },
    )
    raise_request(
        "心内科随访工作站无法登录",
        "incident",
        "dept_user",
        "Z-2026-001",
        [
            ("acknowledge", "vendor_engineer", {}, "已电话联系科室"),
            ("start_work", "vendor_engineer", {}, ""),
        ],
        fields={"severity": "L3", "location": "心内科护士站", "reported_via": "phone"},
    )
    raise_request(
        "随访短信发送失败",
        "incident",
        "dept_user",
        "Z-2026-001",
        [
            ("acknowledge", "vendor_engineer", {}, ""),
            ("start_work", "vendor_engineer", {}, ""),
            ("resolve", "vendor_engineer", {"resolution": "短信网关证书过期，已更新"}, ""),
            ("confirm_fixed", "dept_user", {"satisfaction": 95}, "已恢复"),
        ],
        fields={"severity": "L2", "reported_via": "wechat"},
    )
    raise_request(
        "检验科 LIS 报告回传延迟",
        "incident",
        "dept_user",
        "Z-2026-001",
        [],
        fields={"severity": "L2", "location": "检验科", "reported_via": "system"},
        minutes_ago=45,  # Z2 L2: response within 30 minutes, so already breached
    )
    raise_request(
        "随访数据导出报错，等待科室提供样例",
        "incident",
        "dept_user",
        "Z-2026-001",
        [
            ("acknowledge", "vendor_engineer", {}, ""),
            ("start_work", "vendor_engineer", {}, ""),
            ("wait_for_hospital", "vendor_engineer", {}, "请科室提供出错的患者编号"),
        ],
        fields={"severity": "L4", "location": "心内科", "reported_via": "wechat"},
        minutes_ago=20,  # resolution paused while waiting for the hospital
    )
    raise_request(
        "DRG 分组器升级到 5.1.0",
        "upgrade",
        "it_staff",
        "W-2026-002",
        [],
        system="drg",
        fields={"from_version": "5.0.1", "to_version": "5.1.0"},
    )
    return made


def load_demo(
    session: Session, catalog: Catalog, policies_dir: Path, attachments_dir: Path | None = None
) -> str:
    """Load (or complete) the demo hospital; returns a one-line summary. Raises DefinitionError."""
    from workflow.policy import load_policy_dir

    policies = load_policy_dir(policies_dir)
    for code, name, name_en in DEPARTMENTS:
        _get_or_add(session, Department, code, name=name, name_en=name_en)
    vendors = {code: _get_or_add(session, Vendor, code, name=name) for code, name in VENDORS}
    contracts, systems = {}, {}
    for code, name, vendor, policy_key, start, end, sys_code, sys_name, releases in CONTRACTS:
        policy = policies[policy_key]
        contracts[code] = _get_or_add(
            session,
            Contract,
            code,
            name=name,
            vendor_id=vendors[vendor].id,
            start_date=start,
            end_date=end,
            policy_key=policy.key,
            policy_hash=policy.content_hash,
            policy=policy.document,
        )
        system = _get_or_add(
            session,
            System,
            sys_code,
            name=sys_name,
            vendor_id=vendors[vendor].id,
            contract_id=contracts[code].id,
            current_version=releases[-2][0] if len(releases) > 1 else None,
        )
        systems[sys_code] = system
        known = {r.version for r in system.releases}
        for version, released in releases:
            if version not in known:
                system.releases.append(Release(version=version, released_on=released, notes=""))
    session.flush()
    users = {}
    for username, roles, department, vendor in ACCOUNTS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            user = create_user(
                session,
                username,
                DEMO_PASSWORD,
                roles,
                department=department,
                vendor=vendor,
                is_demo=True,
                display_name=username,
            )
        users[username] = user
    made = _demo_requests(session, catalog, users, contracts, systems, attachments_dir)
    session.flush()
    return (
        f"demo hospital ready: {len(DEPARTMENTS)} departments, {len(VENDORS)} vendors, "
        f"{len(CONTRACTS)} contracts, {len(users)} accounts, {made} new request(s)"
    )
