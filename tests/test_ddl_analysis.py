"""The DDL review (workflow.ddl): a corpus of vendor change scripts with the exact rules a DBA
expects, the client-tool splitter, type narrowing, severities, finding IDs, the structure
document, affected objects, and robustness on junk and on megabyte scripts.

Nothing here needs a database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from workflow.ddl import (
    DIALECTS,
    RULES,
    SEVERITY_RANK,
    Statement,
    analyse,
    is_narrowing,
    split_statements,
)

CORPUS_DIR = Path(__file__).parent / "ddl"


def _load_corpus() -> list[tuple[str, dict]]:
    entries = []
    for dialect in DIALECTS:
        text = (CORPUS_DIR / f"{dialect}.yaml").read_text(encoding="utf-8")
        entries += [(dialect, entry) for entry in yaml.safe_load(text)]
    return entries


CORPUS = _load_corpus()


def rules_of(analysis) -> list[str]:
    """The sorted rule IDs of an analysis, duplicates collapsed."""
    return sorted({f["rule"] for f in analysis.findings})


def finding(analysis, rule: str) -> dict:
    return next(f for f in analysis.findings if f["rule"] == rule)


# -- the corpus ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("dialect", "entry"),
    [pytest.param(d, e, id=f"{d}/{e['name']}") for d, e in CORPUS],
)
def test_corpus_script_gets_exactly_the_expected_rules(dialect, entry):
    analysis = analyse(entry["sql"], entry.get("rollback", ""), dialect)
    assert rules_of(analysis) == sorted(set(entry["expect"]))
    # The rollback only ever contributes 'unparsed'; every finding has its own ID.
    assert all(f["rule"] == "unparsed" for f in analysis.findings if f["part"] == "rollback")
    ids = [f["id"] for f in analysis.findings]
    assert len(ids) == len(set(ids))


def test_corpus_is_large_well_formed_and_covers_every_rule():
    assert len(CORPUS) >= 70
    for dialect in DIALECTS:
        names = [e["name"] for d, e in CORPUS if d == dialect]
        assert len(names) >= 15, dialect
        assert len(names) == len(set(names)), dialect
    for _, entry in CORPUS:
        assert set(entry) <= {"name", "sql", "rollback", "expect"}, entry["name"]
        assert entry["expect"] == sorted(set(entry["expect"])), entry["name"]
        assert set(entry["expect"]) <= set(RULES), entry["name"]
    expected = {rule for _, entry in CORPUS for rule in entry["expect"]}
    assert expected == set(RULES)


# -- splitting ----------------------------------------------------------------------------------
def texts(sql: str, dialect: str) -> list[str]:
    return [s.text for s in split_statements(sql, dialect)]


def test_split_tsql_go_batches_count_lowercase_and_comment():
    sql = (
        "USE [HIS]\n"
        "GO\n"
        "CREATE TABLE [a;b] ([x;y] INT)\n"
        "go\n"
        "INSERT INTO t VALUES (1)\n"
        "GO 5\n"
        "PRINT N'GO;'\n"
        "  GO -- next batch\n"
        "SELECT 1"
    )
    assert split_statements(sql, "tsql") == [
        Statement(1, "USE [HIS]", 1, 1),
        Statement(2, "CREATE TABLE [a;b] ([x;y] INT)", 3, 3),
        Statement(3, "INSERT INTO t VALUES (1)", 5, 5),
        Statement(4, "PRINT N'GO;'", 7, 7),
        Statement(5, "SELECT 1", 9, 9),
    ]


def test_split_tsql_keeps_begin_end_blocks_and_procedures_whole():
    sql = (
        "IF NOT EXISTS (SELECT 1 FROM sys.columns WHERE name = 'a')\n"
        "BEGIN\n"
        "    ALTER TABLE t ADD a INT NULL;\n"
        "    UPDATE t SET a = CASE WHEN b = 1 THEN 2 END WHERE id > 0;\n"
        "END;\n"
        "BEGIN TRAN;\n"
        "CREATE PROCEDURE p AS\n"
        "BEGIN\n"
        "    SELECT 1;\n"
        "    SELECT 2;\n"
        "END\n"
        "GO\n"
    )
    statements = split_statements(sql, "tsql")
    assert [s.text.split("\n")[0] for s in statements] == [
        "IF NOT EXISTS (SELECT 1 FROM sys.columns WHERE name = 'a')",
        "BEGIN TRAN",
        "CREATE PROCEDURE p AS",
    ]
    assert [(s.line, s.end_line) for s in statements] == [(1, 5), (6, 6), (7, 11)]


def test_split_oracle_slash_blocks_and_sqlplus_commands():
    sql = (
        "SET DEFINE OFF\n"
        "set serveroutput on size 1000000\n"
        "PROMPT 创建过程; 请稍候\n"
        "SPOOL upgrade.log\n"
        "CREATE OR REPLACE PROCEDURE p AS\n"
        "BEGIN\n"
        "  UPDATE t SET a = 'x;y';\n"
        "  COMMIT;\n"
        "END;\n"
        "/\n"
        "BEGIN\n"
        "  NULL;\n"
        "END;\n"
        "  /  \n"
        "SELECT q'[it's; fine]' FROM dual;\n"
        "CREATE OR REPLACE VIEW v AS SELECT 1 x FROM dual;\n"
        "EXIT\n"
    )
    statements = split_statements(sql, "oracle")
    assert [s.text.split("\n")[0] for s in statements] == [
        "CREATE OR REPLACE PROCEDURE p AS",
        "BEGIN",
        "SELECT q'[it's; fine]' FROM dual",
        "CREATE OR REPLACE VIEW v AS SELECT 1 x FROM dual",
    ]
    assert statements[0].text.endswith("END;")
    assert [(s.line, s.end_line) for s in statements] == [(5, 9), (11, 13), (15, 15), (16, 16)]


def test_split_mysql_delimiters_backticks_and_comments():
    sql = (
        "DELIMITER //\n"
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END//\n"
        "DELIMITER $$\n"
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = ';'; END $$\n"
        "DELIMITER ;\n"
        "SELECT `a;b`, 'it\\'s;', \"x;\" FROM t; # comment; here\n"
        "-- comment; too\n"
        "/* block; comment */ SELECT 3;"
    )
    assert texts(sql, "mysql") == [
        "CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
        "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW BEGIN SET NEW.a = ';'; END",
        "SELECT `a;b`, 'it\\'s;', \"x;\" FROM t",
        "SELECT 3",
    ]
    assert [s.line for s in split_statements(sql, "mysql")] == [2, 4, 6, 8]


def test_split_mysql_executable_comments_are_statements():
    sql = "/*!40101 SET NAMES utf8 */;\n/* plain comment; */\nSELECT 1;"
    assert texts(sql, "mysql") == ["/*!40101 SET NAMES utf8 */", "SELECT 1"]


def test_split_postgres_dollar_quotes_escape_strings_and_comments():
    sql = (
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n"
        "DO $body$ BEGIN PERFORM 1; END $body$;\n"
        "SELECT E'it\\'s;', 'a''b;c' -- tail; comment\n"
        ";\n"
        "/* a; b */ SELECT a$b$c FROM t;\n"
        "\\set ON_ERROR_STOP on\n"
        "SELECT 2"
    )
    statements = split_statements(sql, "postgres")
    assert [s.text for s in statements] == [
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
        "DO $body$ BEGIN PERFORM 1; END $body$",
        "SELECT E'it\\'s;', 'a''b;c' -- tail; comment",
        "SELECT a$b$c FROM t",
        "SELECT 2",
    ]
    assert [s.number for s in statements] == [1, 2, 3, 4, 5]
    assert [s.line for s in statements] == [1, 2, 3, 5, 7]


def test_split_postgres_copy_data_stays_with_its_statement():
    sql = "COPY t (a, b) FROM stdin;\n1\tx;y\n2\tz\n\\.\nSELECT 1;\n"
    assert split_statements(sql, "postgres") == [
        Statement(1, "COPY t (a, b) FROM stdin;\n1\tx;y\n2\tz\n\\.", 1, 4),
        Statement(2, "SELECT 1", 5, 5),
    ]


def test_split_line_numbers_with_crlf_bom_and_blank_lines():
    sql = "\ufeffCREATE TABLE a (id INT);\r\n\r\n\r\nALTER TABLE a\r\n  ADD b INT;\r\n"
    assert split_statements(sql, "mysql") == [
        Statement(1, "CREATE TABLE a (id INT)", 1, 1),
        Statement(2, "ALTER TABLE a\r\n  ADD b INT", 4, 5),
    ]


def test_split_include_commands_are_statements_of_their_own():
    assert texts("@@lis_tables.sql\nSELECT 1 FROM dual;", "oracle") == [
        "@@lis_tables.sql",
        "SELECT 1 FROM dual",
    ]
    assert texts(":setvar db HIS\n:r .\\a.sql\nGO\nSELECT 1", "tsql") == [":r .\\a.sql", "SELECT 1"]
    assert texts("\\i a.sql\nSELECT 1;", "postgres") == ["\\i a.sql", "SELECT 1"]


def test_split_unknown_dialect_and_empty_input():
    with pytest.raises(ValueError, match="Unknown dialect"):
        split_statements("SELECT 1", "sqlite")
    assert split_statements("", "mysql") == []
    assert split_statements("  \n-- nothing\n/* at all */\n", "postgres") == []
    assert split_statements(";;;", "mysql") == []


# -- type narrowing -----------------------------------------------------------------------------
NARROWING = [
    # dialect, old type, new type, old → new narrows, new → old narrows
    ("mysql", "VARCHAR(500)", "VARCHAR(100)", True, False),
    ("mysql", "CHAR(1)", "CHAR(2)", False, True),
    ("mysql", "VARCHAR(255)", "TEXT", False, True),
    ("mysql", "TEXT", "MEDIUMTEXT", False, True),
    ("mysql", "INT", "BIGINT", False, True),
    ("mysql", "INT", "INT UNSIGNED", True, True),
    ("mysql", "INT UNSIGNED", "BIGINT", False, True),
    ("mysql", "DECIMAL(10,2)", "DECIMAL(12,2)", False, True),
    ("mysql", "DECIMAL(10,2)", "DECIMAL(10,4)", True, True),
    ("mysql", "INT", "DECIMAL(10,0)", False, True),
    ("mysql", "INT", "VARCHAR(11)", False, True),
    ("mysql", "INT", "VARCHAR(5)", True, True),
    ("mysql", "DATETIME", "DATE", True, False),
    ("mysql", "DATETIME", "VARCHAR(19)", False, True),
    ("mysql", "FLOAT", "DOUBLE", False, True),
    ("postgres", "varchar(100000)", "text", False, True),
    ("postgres", "integer", "bigint", False, True),
    ("postgres", "text", "integer", True, False),
    ("postgres", "bigint", "double precision", True, True),
    ("postgres", "integer", "double precision", False, True),
    ("postgres", "varchar(36)", "uuid", True, False),
    ("postgres", "timestamp", "timestamptz", False, False),
    ("postgres", "time(6)", "time(3)", True, False),
    ("tsql", "NVARCHAR(50)", "VARCHAR(50)", True, False),
    ("tsql", "NVARCHAR(MAX)", "NVARCHAR(4000)", True, False),
    ("tsql", "SMALLINT", "TINYINT", True, False),
    ("tsql", "MONEY", "DECIMAL(19,4)", False, False),
    ("oracle", "VARCHAR2(200)", "NUMBER(10,2)", True, True),
    ("oracle", "NUMBER", "NUMBER(10)", True, False),
    ("oracle", "NUMBER(12,2)", "NUMBER(10,2)", True, False),
    ("oracle", "DATE", "TIMESTAMP", False, True),
    ("oracle", "VARCHAR2(100)", "CLOB", False, True),
]


@pytest.mark.parametrize(
    ("dialect", "old", "new", "forward", "backward"),
    NARROWING,
    ids=[f"{d}:{o}->{n}" for d, o, n, *_ in NARROWING],
)
def test_is_narrowing_both_ways(dialect, old, new, forward, backward):
    a = exp.DataType.build(old, dialect=dialect)
    b = exp.DataType.build(new, dialect=dialect)
    assert is_narrowing(a, b, dialect) is forward
    assert is_narrowing(b, a, dialect) is backward
    assert is_narrowing(a, a, dialect) is False


def test_is_narrowing_without_a_type_is_false():
    varchar = exp.DataType.build("VARCHAR(10)")
    assert is_narrowing(None, varchar) is False
    assert is_narrowing(varchar, None) is False
    # Without a dialect TEXT is unbounded (PostgreSQL, SQL Server).
    assert is_narrowing(exp.DataType.build("TEXT"), exp.DataType.build("MEDIUMTEXT")) is True


# -- severities, risk and finding IDs -----------------------------------------------------------
DROP_SQL = "ALTER TABLE his_patient DROP COLUMN wechat_openid;"
DROP_ROLLBACK = "ALTER TABLE his_patient ADD COLUMN wechat_openid VARCHAR(64) NULL;"


def test_severity_override_changes_severity_and_risk():
    plain = analyse(DROP_SQL, DROP_ROLLBACK, "mysql")
    assert finding(plain, "drop-column")["severity"] == "error"
    assert plain.risk == "error"

    relaxed = analyse(DROP_SQL, DROP_ROLLBACK, "mysql", overrides={"drop-column": "warning"})
    assert finding(relaxed, "drop-column")["severity"] == "warning"
    assert finding(relaxed, "drop-column")["destructive"] is True
    assert relaxed.risk == "warning"
    assert relaxed.as_data()["risk"] == "warning"

    info = analyse(DROP_SQL, DROP_ROLLBACK, "mysql", overrides={"drop-column": "info"})
    assert info.risk == "info"


def test_severity_override_applies_to_rollback_findings():
    analysis = analyse(DROP_SQL, "见附件", "mysql", overrides={"unparsed": "warning"})
    rollback = [f for f in analysis.findings if f["part"] == "rollback"]
    assert [f["rule"] for f in rollback] == ["unparsed"]
    assert rollback[0]["severity"] == "warning"
    assert rollback[0]["id"] == "R1-unparsed"


@pytest.mark.parametrize(
    ("sql", "rollback", "overrides", "risk"),
    [
        ("CREATE TABLE t (id INT PRIMARY KEY);", "DROP TABLE t;", None, "none"),
        ("ALTER TABLE t RENAME TO t2;", "", None, "warning"),
        ("ALTER TABLE t RENAME TO t2; TRUNCATE TABLE u;", "SELECT 1;", None, "error"),
        ("ALTER TABLE t RENAME TO t2;", "", {"rename-table": "info"}, "info"),
    ],
)
def test_risk_is_the_highest_severity(sql, rollback, overrides, risk):
    analysis = analyse(sql, rollback, "mysql", overrides=overrides)
    assert analysis.risk == risk
    severities = [f["severity"] for f in analysis.findings]
    assert analysis.risk == max(severities, key=SEVERITY_RANK.get, default="none")


@pytest.mark.parametrize(("dialect", "entry"), [(d, e) for d, e in CORPUS][::7])
def test_risk_matches_findings_across_the_corpus(dialect, entry):
    analysis = analyse(entry["sql"], entry.get("rollback", ""), dialect)
    ranks = [SEVERITY_RANK[f["severity"]] for f in analysis.findings]
    assert SEVERITY_RANK[analysis.risk] == max(ranks, default=0)


def test_finding_ids_are_stable_and_unique():
    sql = (
        "ALTER TABLE emr_record DROP COLUMN a, DROP COLUMN b;\n"
        "ALTER TABLE emr_record DROP COLUMN c;\n"
        "UPDATE emr_record SET d = 1;\n"
    )
    first = analyse(sql, "", "mysql")
    second = analyse(sql, "", "mysql")
    assert [f["id"] for f in first.findings] == [f["id"] for f in second.findings]
    assert first.as_data() == second.as_data()
    ids = [f["id"] for f in first.findings]
    assert len(ids) == len(set(ids))
    assert {"1-drop-column", "1-drop-column-2", "2-drop-column"} <= set(ids)
    assert {"3-dml-without-where", "3-data-change-mixed", "script-no-rollback"} <= set(ids)
    drops = [f for f in first.findings if f["rule"] == "drop-column"]
    assert [(f["statement"], f["line"]) for f in drops] == [(1, 1), (1, 1), (2, 2)]
    assert "emr_record.b" in drops[1]["message"]["en"]
    assert "emr_record.b" in drops[1]["message"]["zh"]


def test_finding_shape_and_bilingual_messages():
    analysis = analyse(
        "ALTER TABLE his_patient MODIFY name VARCHAR(32) NOT NULL;",
        "ALTER TABLE his_patient MODIFY name VARCHAR(64) NOT NULL;",
        "mysql",
    )
    f = finding(analysis, "type-narrowing")
    assert set(f) == {
        "id",
        "rule",
        "severity",
        "destructive",
        "part",
        "statement",
        "line",
        "message",
        "object",
    }
    assert f["part"] == "change" and f["object"] == "his_patient" and f["destructive"] is True
    assert "VARCHAR(64)" in f["message"]["en"] and "VARCHAR(32)" in f["message"]["en"]
    assert "收窄" in f["message"]["zh"]
    # Restating NOT NULL on a column the rollback shows NOT NULL is not a new constraint.
    assert rules_of(analysis) == ["type-narrowing"]


def test_unknown_dialect_raises():
    with pytest.raises(ValueError, match="Unknown dialect"):
        analyse("SELECT 1", "", "db2")


# -- structure document and affected objects ----------------------------------------------------
def columns_of(doc: dict) -> dict[str, dict]:
    return {c["name"]: c for c in doc["columns"]}


def test_structure_mysql_inline_comments():
    sql = """
    CREATE TABLE his_patient (
      id BIGINT NOT NULL AUTO_INCREMENT COMMENT '主键',
      name VARCHAR(64) NOT NULL COMMENT '姓名;全名',
      sex CHAR(1) DEFAULT 'U',
      PRIMARY KEY (id)
    ) ENGINE=InnoDB COMMENT='患者主索引';
    CREATE INDEX idx_his_patient_name ON his_patient (name);
    """
    (doc,) = analyse(sql, "DROP TABLE his_patient;", "mysql").structure
    assert doc["table"] == "his_patient" and doc["action"] == "created"
    assert doc["comment"] == "患者主索引"
    cols = columns_of(doc)
    assert list(cols) == ["id", "name", "sex"]
    assert cols["id"] == {
        "name": "id",
        "type": "BIGINT",
        "nullable": False,
        "default": "",
        "primary_key": True,
        "identity": True,
        "comment": "主键",
    }
    assert cols["name"]["type"] == "VARCHAR(64)" and cols["name"]["comment"] == "姓名;全名"
    assert cols["name"]["nullable"] is False and cols["name"]["primary_key"] is False
    assert cols["sex"]["nullable"] is True and cols["sex"]["default"] == "'U'"
    assert doc["indexes"] == [
        {"name": "idx_his_patient_name", "unique": False, "columns": ["name"]}
    ]


def test_structure_postgres_comment_on():
    sql = """
    CREATE TABLE emr.emr_record (
        id bigserial PRIMARY KEY,
        patient_id bigint NOT NULL,
        content text
    );
    COMMENT ON TABLE emr.emr_record IS '电子病历';
    COMMENT ON COLUMN emr.emr_record.content IS '病历正文';
    COMMENT ON COLUMN emr.emr_other.flag IS '别的表';
    """
    analysis = analyse(sql, "DROP TABLE emr.emr_record;", "postgres")
    assert rules_of(analysis) == []
    record, other = analysis.structure
    assert record["table"] == "emr.emr_record" and record["comment"] == "电子病历"
    cols = columns_of(record)
    assert cols["id"]["primary_key"] and cols["id"]["identity"] and not cols["id"]["nullable"]
    assert cols["content"]["comment"] == "病历正文" and cols["content"]["type"] == "TEXT"
    assert other["action"] == "altered"
    assert other["changes"] == [{"change": "comment", "name": "flag", "comment": "别的表"}]


def test_structure_oracle_comment_on_and_later_primary_key():
    sql = """
    CREATE TABLE lis_result (
      id NUMBER(19) NOT NULL,
      sample_no VARCHAR2(32) NOT NULL,
      result_value VARCHAR2(200) DEFAULT '-'
    );
    COMMENT ON TABLE lis_result IS '检验结果';
    COMMENT ON COLUMN lis_result.sample_no IS '样本号';
    ALTER TABLE lis_result ADD CONSTRAINT pk_lis_result PRIMARY KEY (id);
    """
    analysis = analyse(sql, "DROP TABLE lis_result PURGE;", "oracle")
    assert rules_of(analysis) == []  # the primary key comes later in the same script
    (doc,) = analysis.structure
    assert doc["comment"] == "检验结果"
    cols = columns_of(doc)
    assert cols["sample_no"]["comment"] == "样本号"
    assert cols["id"]["type"] == "NUMBER(19)"
    assert cols["result_value"]["nullable"] is True and cols["result_value"]["default"] == "'-'"
    assert doc["changes"][-1]["change"] == "constraint"


def test_structure_tsql_ms_description_and_clustered_key():
    sql = """
    CREATE TABLE [dbo].[his_bed](
      [id] [int] IDENTITY(1,1) NOT NULL,
      [bed_no] [nvarchar](10) NOT NULL,
      CONSTRAINT [PK_his_bed] PRIMARY KEY CLUSTERED ([id] ASC)
    ) ON [PRIMARY]
    GO
    EXEC sys.sp_addextendedproperty @name=N'MS_Description', @value=N'床位',
      @level0type=N'SCHEMA', @level0name=N'dbo', @level1type=N'TABLE', @level1name=N'his_bed'
    GO
    EXEC sp_addextendedproperty 'MS_Description', '床号', 'SCHEMA', 'dbo', 'TABLE', 'his_bed',
      'COLUMN', 'bed_no'
    GO
    """
    analysis = analyse(sql, "DROP TABLE dbo.his_bed", "tsql")
    assert rules_of(analysis) == []
    (doc,) = analysis.structure
    assert doc["table"] == "dbo.his_bed" and doc["comment"] == "床位"
    cols = columns_of(doc)
    assert cols["id"]["primary_key"] and cols["id"]["identity"]
    assert cols["bed_no"] | {"comment": "床号"} == cols["bed_no"]
    assert cols["bed_no"]["type"] == "NVARCHAR(10)"


def test_structure_records_changes_to_existing_tables():
    sql = """
    ALTER TABLE his_patient ADD COLUMN phone VARCHAR(20) NULL COMMENT '电话';
    ALTER TABLE his_patient DROP COLUMN fax;
    ALTER TABLE his_patient CHANGE COLUMN tel mobile VARCHAR(20) NULL;
    ALTER TABLE his_patient MODIFY COLUMN name VARCHAR(100) NOT NULL;
    """
    (doc,) = analyse(sql, "SELECT 1;", "mysql").structure
    assert doc["action"] == "altered" and doc["columns"] == []
    changes = [(c["change"], c.get("name")) for c in doc["changes"]]
    assert changes == [
        ("add", "phone"),
        ("drop", "fax"),
        ("rename", "tel"),
        ("modify", "mobile"),
        ("modify", "name"),
    ]
    assert doc["changes"][0]["comment"] == "电话" and doc["changes"][0]["nullable"] is True


def test_affected_objects():
    sql = """
    CREATE TABLE lis_item (id INT PRIMARY KEY, code VARCHAR(20));
    ALTER TABLE lis_result ADD COLUMN item_id INT NULL, DROP COLUMN item_code;
    DROP INDEX idx_old ON lis_result;
    CREATE OR REPLACE VIEW v_lis AS SELECT * FROM lis_result;
    RENAME TABLE lis_tmp TO lis_tmp_old;
    INSERT INTO lis_item VALUES (1, 'GLU');
    """
    objects = analyse(sql, "SELECT 1;", "mysql").objects
    assert objects == [
        {"type": "table", "name": "lis_item", "action": "create"},
        {"type": "table", "name": "lis_result", "action": "alter"},
        {"type": "column", "name": "lis_result.item_id", "action": "add"},
        {"type": "column", "name": "lis_result.item_code", "action": "drop"},
        {"type": "index", "name": "idx_old", "action": "drop"},
        {"type": "view", "name": "v_lis", "action": "create_or_replace"},
        {"type": "table", "name": "lis_tmp", "action": "rename"},
        {"type": "table", "name": "lis_item", "action": "data"},
    ]


def test_as_data_is_plain_data():
    data = analyse("DROP TABLE t;", "", "postgres").as_data()
    assert set(data) == {
        "dialect",
        "risk",
        "statements",
        "findings",
        "objects",
        "structure",
        "rollback_statements",
    }
    assert data["statements"] == [
        {"number": 1, "line": 1, "end_line": 1, "kind": "ddl", "summary": "DROP TABLE t"}
    ]
    assert data["rollback_statements"] == 0
    assert yaml.safe_load(yaml.safe_dump(data)) == data  # nothing but plain types


# -- robustness ---------------------------------------------------------------------------------
SQL_WORDS = [
    "CREATE", "ALTER", "DROP", "TABLE", "INDEX", "VIEW", "PROCEDURE", "BEGIN", "END", "IF",
    "ELSE", "GO", "DELIMITER", "SET", "SELECT", "FROM", "WHERE", "UPDATE", "DELETE", "INSERT",
    "INTO", "VALUES", "ADD", "COLUMN", "MODIFY", "CHANGE", "RENAME", "TO", "NOT", "NULL",
    "DEFAULT", "PRIMARY", "KEY", "UNIQUE", "CONSTRAINT", "CASCADE", "TRUNCATE", "GRANT", "ON",
    "EXEC", "sp_rename", "COMMENT", "IS", "DO", "$$", "$x$", "/", "GO 2", "his_patient",
    "emr_record", "患者", "id", "INT", "VARCHAR(10)", "NUMBER(5,2)", "(", ")", ",", ";", "'",
    '"', "`", "[", "]", "--", "/*", "*/", "#", "\n", "\n/\n", "\nGO\n", "@@a.sql", "q'[", "E'",
    "\\", "/*!", "*", "=", "1", "0.5",
]  # fmt: skip
sql_soup = st.lists(st.sampled_from(SQL_WORDS), max_size=40).map(" ".join)


def check_invariants(analysis, dialect: str) -> None:
    """What holds for any input: IDs unique, numbers consistent, nothing silently dropped."""
    ids = [f["id"] for f in analysis.findings]
    assert len(ids) == len(set(ids))
    assert all(f["rule"] in RULES for f in analysis.findings)
    assert all("internal analyser error" not in f["message"]["en"] for f in analysis.findings)
    assert [s["number"] for s in analysis.statements] == list(
        range(1, len(analysis.statements) + 1)
    )
    flagged = {f["statement"] for f in analysis.findings if f["part"] == "change"}
    for statement in analysis.statements:
        assert statement["line"] <= statement["end_line"]
        if statement["kind"] == "unparsed":
            assert statement["number"] in flagged, statement
        # A statement nothing was found in must have been understood.
        if statement["number"] not in flagged:
            assert statement["kind"] in ("ddl", "dml", "other"), statement
    if not analysis.statements:
        assert [f["rule"] for f in analysis.findings if f["part"] == "change"] == ["empty-script"]
    assert analysis.risk == max(
        (f["severity"] for f in analysis.findings), key=SEVERITY_RANK.get, default="none"
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialect=st.sampled_from(DIALECTS), text=st.text(max_size=200), rollback=st.text(max_size=60))
def test_analyse_never_raises_on_arbitrary_text(dialect, text, rollback):
    check_invariants(analyse(text, rollback, dialect), dialect)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dialect=st.sampled_from(DIALECTS), text=sql_soup, rollback=sql_soup)
def test_analyse_never_raises_on_sql_like_soup(dialect, text, rollback):
    check_invariants(analyse(text, rollback, dialect), dialect)


@settings(max_examples=300, deadline=None)
@given(dialect=st.sampled_from(DIALECTS), text=sql_soup | st.text(max_size=200))
def test_split_statements_are_in_order_with_true_line_numbers(dialect, text):
    pos = 0
    for number, statement in enumerate(split_statements(text, dialect), start=1):
        assert statement.number == number
        assert statement.text and statement.text == statement.text.rstrip()
        # The text occurs after the previous statement, on the line the statement names (the
        # first occurrence may sit in a comment in between).
        found = text.find(statement.text, pos)
        while found >= 0 and text.count("\n", 0, found) + 1 != statement.line:
            found = text.find(statement.text, found + 1)
        assert found >= 0, statement
        assert statement.end_line == statement.line + statement.text.count("\n")
        pos = found + len(statement.text)


junk_words = st.lists(
    st.sampled_from(
        ["请", "执行", "脚本", "then", "restart", "service", "42", "(", ")", "x1", "."]
    ),
    min_size=1,
    max_size=12,
).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(dialect=st.sampled_from(DIALECTS), text=junk_words)
def test_every_junk_statement_is_reported(dialect, text):
    analysis = analyse(text, "", dialect)
    flagged = {f["statement"] for f in analysis.findings if f["rule"] == "unparsed"}
    assert analysis.statements
    assert {s["number"] for s in analysis.statements} <= flagged


@pytest.mark.parametrize(
    "junk",
    [")", "(", "'", "$$", "/*", "GO", "\x00\x01\x02", "；", "ALTER TABLE"],
)
@pytest.mark.parametrize("dialect", DIALECTS)
def test_fragments_are_reported_not_passed(dialect, junk):
    analysis = analyse(junk, "", dialect)
    check_invariants(analysis, dialect)
    assert analysis.findings, (dialect, junk)


def megabyte_script(tables: int) -> str:
    """A realistic big upgrade: per table a CREATE with comments, an ALTER and seed data;
    every 50th table also loses an old column of an existing table."""
    parts = []
    for i in range(tables):
        parts.append(
            f"-- 表 {i}: 门诊; 住院\n"
            f"CREATE TABLE his_t{i} (\n"
            f"  id BIGINT NOT NULL AUTO_INCREMENT COMMENT '主键',\n"
            f"  patient_no VARCHAR(32) NOT NULL COMMENT '病历号;编号',\n"
            f"  name VARCHAR(64) NULL COMMENT '姓名',\n"
            f"  created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,\n"
            f"  PRIMARY KEY (id)\n"
            f") ENGINE=InnoDB COMMENT='业务表{i}';\n"
            f"ALTER TABLE his_t{i} ADD COLUMN remark VARCHAR(200) NULL COMMENT '备注';\n"
            f"INSERT INTO his_t{i} (patient_no, name) VALUES ('P{i:06d}', '张三;李四');\n"
        )
        if i % 50 == 49:
            parts.append(f"ALTER TABLE his_legacy_{i} DROP COLUMN old_flag;\n")
    return "".join(parts)


def test_megabyte_script():
    tables = 2700
    sql = megabyte_script(tables)
    assert len(sql.encode("utf-8")) > 1_000_000
    drops = tables // 50
    statements = split_statements(sql, "mysql")
    assert len(statements) == 3 * tables + drops
    assert statements[-1].line == sql.count("\n")

    analysis = analyse(sql, "-- 回滚: 恢复备份\nSELECT 1;", "mysql")
    assert len(analysis.statements) == 3 * tables + drops
    counts: dict[str, int] = {}
    for f in analysis.findings:
        counts[f["rule"]] = counts.get(f["rule"], 0) + 1
    assert counts == {"data-change-mixed": tables, "drop-column": drops}
    assert len(analysis.structure) == tables + drops
    assert analysis.structure[0]["columns"][1]["comment"] == "病历号;编号"
    assert analysis.risk == "error"
    last = analysis.findings[-1]
    assert last["rule"] == "drop-column" and last["line"] == statements[-1].line
