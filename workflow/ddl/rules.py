"""The review rules: stable IDs, default severities and the sentences a DBA reads.

A rule ID never changes meaning once shipped: waivers, policies and the review sheet name it.
``destructive`` rules lose data or objects when they run; they need rollback SQL and, under Q5,
a backup reference before execution.
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITIES = ("info", "warning", "error")
SEVERITY_RANK = {"none": 0, "info": 1, "warning": 2, "error": 3}


@dataclass(frozen=True)
class Rule:
    """One review rule with its default severity and bilingual message template."""

    id: str
    severity: str
    destructive: bool
    title: dict
    message: dict


def _rule(rule_id, severity, destructive, title_zh, title_en, zh, en) -> Rule:
    return Rule(
        rule_id, severity, destructive, {"zh": title_zh, "en": title_en}, {"zh": zh, "en": en}
    )


RULES: dict[str, Rule] = {
    r.id: r
    for r in [
        _rule(
            "drop-database",
            "error",
            True,
            "删除数据库",
            "Drop database",
            "删除数据库 {name}：其中的全部表和数据都会丢失。",
            "Drops database {name}: every table and all data in it are lost.",
        ),
        _rule(
            "drop-schema",
            "error",
            True,
            "删除模式",
            "Drop schema",
            "删除模式 {name}：其中的全部对象都会丢失。",
            "Drops schema {name}: every object in it is lost.",
        ),
        _rule(
            "drop-table",
            "error",
            True,
            "删除表",
            "Drop table",
            "删除表 {table}：表中数据会丢失，只能从备份恢复。",
            "Drops table {table}: its data is lost and can only come back from a backup.",
        ),
        _rule(
            "drop-column",
            "error",
            True,
            "删除列",
            "Drop column",
            "删除列 {table}.{column}：该列数据会丢失。",
            "Drops column {table}.{column}: the data in it is lost.",
        ),
        _rule(
            "truncate",
            "error",
            True,
            "清空表",
            "Truncate",
            "清空表 {table}：全部行被删除，且不能按行回滚。",
            "Truncates {table}: every row is deleted and cannot be rolled back row by row.",
        ),
        _rule(
            "truncate-cascade",
            "error",
            True,
            "级联清空表",
            "Truncate … CASCADE",
            "级联清空表 {table}：所有通过外键引用它的表也会被一并清空。",
            "Truncates {table} with CASCADE: every table with a foreign key to it is emptied too.",
        ),
        _rule(
            "drop-cascade",
            "error",
            True,
            "级联删除",
            "Drop … CASCADE",
            "级联删除 {name}：依赖它的视图、外键等对象会被一并删除。",
            "Drops {name} with CASCADE: views, foreign keys and other objects depending on it "
            "are dropped too.",
        ),
        _rule(
            "drop-object",
            "warning",
            False,
            "删除对象",
            "Drop object",
            "删除{kind} {name}：依赖它的程序会出错，回滚前请确认有其定义。",
            "Drops {kind} {name}: code that uses it will fail; keep its definition for rollback.",
        ),
        _rule(
            "type-narrowing",
            "error",
            True,
            "列类型收窄",
            "Column type narrowed",
            "列 {table}.{column} 的类型由 {old} 收窄为 {new}："
            "超出范围的数据会被截断或导致执行失败。",
            "Narrows {table}.{column} from {old} to {new}: values that do not fit are truncated "
            "or make the change fail.",
        ),
        _rule(
            "type-change",
            "warning",
            False,
            "列类型变更",
            "Column type changed",
            "列 {table}.{column} 的类型改为 {new}：可能重写整表并锁表，请确认现有数据都能转换。",
            "Changes the type of {table}.{column} to {new}: this may rewrite and lock the "
            "table; check that every existing value converts.",
        ),
        _rule(
            "not-null-without-default",
            "error",
            False,
            "新增非空列无默认值",
            "NOT NULL column without default",
            "在已有表 {table} 上新增非空列 {column} 却没有默认值：表中已有数据时执行会失败。",
            "Adds NOT NULL column {column} to existing table {table} without a default: it "
            "fails as soon as the table holds a row.",
        ),
        _rule(
            "set-not-null",
            "warning",
            False,
            "改为非空",
            "Nullable → NOT NULL",
            "把 {table}.{column} 改为 NOT NULL：已有空值时执行失败，并会扫描整表。",
            "Makes {table}.{column} NOT NULL: it fails if any row holds NULL and scans the "
            "whole table.",
        ),
        _rule(
            "unique-on-existing",
            "warning",
            False,
            "已有表上加唯一约束",
            "Unique index or constraint on an existing table",
            "在已有表 {table} 上建立唯一索引或约束 {name}："
            "已有重复数据时执行失败，建索引期间可能锁表。",
            "Adds unique index or constraint {name} on existing table {table}: it fails on "
            "duplicate rows and may lock the table while it builds.",
        ),
        _rule(
            "rename-table",
            "warning",
            False,
            "重命名表",
            "Rename table",
            "把表 {table} 重命名为 {new}：引用旧表名的程序、视图和存储过程会出错。",
            "Renames table {table} to {new}: programs, views and procedures using the old name "
            "break.",
        ),
        _rule(
            "rename-column",
            "warning",
            False,
            "重命名列",
            "Rename column",
            "把列 {table}.{column} 重命名为 {new}：引用旧列名的程序会出错。",
            "Renames column {table}.{column} to {new}: code using the old name breaks.",
        ),
        _rule(
            "index-not-concurrent",
            "warning",
            False,
            "建索引未用 CONCURRENTLY",
            "Index without CONCURRENTLY",
            "在已有表 {table} 上建索引 {name} 未使用 CONCURRENTLY：建索引期间表的写入被阻塞。",
            "Creates index {name} on existing table {table} without CONCURRENTLY: writes to "
            "the table are blocked while it builds.",
        ),
        _rule(
            "constraint-validates",
            "warning",
            False,
            "约束未用 NOT VALID",
            "FK or CHECK without NOT VALID",
            "在已有表 {table} 上添加约束 {name} 未使用 NOT VALID：会在锁表状态下检查全部已有行。",
            "Adds constraint {name} to existing table {table} without NOT VALID: every existing "
            "row is checked while the table is locked.",
        ),
        _rule(
            "no-primary-key",
            "warning",
            False,
            "建表无主键",
            "Table without primary key",
            "新建表 {table} 没有主键：重复行无法区分，复制和同步工具也可能出错。",
            "Creates table {table} without a primary key: duplicate rows cannot be told apart "
            "and replication tools may fail.",
        ),
        _rule(
            "data-change-mixed",
            "warning",
            False,
            "结构变更中夹带数据修改",
            "Data change in DDL",
            "脚本在结构变更中夹带了数据修改（{kind} {table}）：请单独评审其影响行数。",
            "The script mixes a data change ({kind} {table}) into the schema change: review the "
            "rows it touches separately.",
        ),
        _rule(
            "dml-without-where",
            "error",
            True,
            "无条件修改数据",
            "UPDATE or DELETE without WHERE",
            "{kind} {table} 没有 WHERE 条件：会修改表中每一行。",
            "{kind} {table} has no WHERE clause: it changes every row of the table.",
        ),
        _rule(
            "routine-change",
            "warning",
            False,
            "程序对象变更（需人工审查）",
            "Procedure, function, view or trigger (manual review)",
            "创建或修改{kind} {name}：程序逻辑无法自动分析，需要 DBA 人工审查。",
            "Creates or changes {kind} {name}: its logic cannot be analysed automatically; the "
            "DBA must review it by hand.",
        ),
        _rule(
            "privilege-change",
            "warning",
            False,
            "权限变更",
            "Privilege change",
            "授予或收回权限（{name}）：属安全相关操作（Q7），请确认授权范围。",
            "Grants or revokes privileges ({name}): a security-relevant change (Q7); check "
            "its scope.",
        ),
        _rule(
            "unparsed",
            "error",
            False,
            "无法解析（需人工审查）",
            "Cannot be parsed (manual review)",
            "无法按 {dialect} 语法解析这条语句：自动检查未覆盖它，需要 DBA 逐字人工审查。{detail}",
            "This statement cannot be parsed as {dialect}: no automatic check covers it, so the "
            "DBA must review it word by word. {detail}",
        ),
        _rule(
            "no-rollback",
            "error",
            False,
            "破坏性变更无回滚 SQL",
            "Destructive change without rollback",
            "脚本含破坏性变更（{name}），但没有提供回滚 SQL。",
            "The script makes destructive changes ({name}) but no rollback SQL is given.",
        ),
        _rule(
            "empty-script",
            "error",
            False,
            "没有可执行的语句",
            "No statements",
            "变更 SQL 中没有任何语句。",
            "The change SQL holds no statement.",
        ),
    ]
}


def severity_of(rule_id: str, overrides: dict | None) -> str:
    """The severity of a rule under a contract policy's overrides."""
    return (overrides or {}).get(rule_id) or RULES[rule_id].severity
