"""Benchmark of the DDL review: analyse() on a ~1 MB upgrade script per dialect.

The floor is plain ``sqlglot.parse`` of the same statements (what any review built on sqlglot
pays at least); analyse() adds the splitter, the rules and the structure document on top.

    .venv/bin/python bench/ddl_analysis.py [--size BYTES] [--repeat N]

Prints a table and writes bench/results/ddl_analysis.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlglot  # noqa: E402

from workflow.ddl import DIALECTS, analyse, split_statements  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ddl_analysis.json"


# -- realistic scripts: what a HIS/EMR vendor's upgrade package looks like ----------------------
def mysql_unit(i: int) -> str:
    text = f"""-- V3.{i} 门诊模块: 表 his_visit_{i}
CREATE TABLE IF NOT EXISTS `his_visit_{i}` (
  `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT '主键',
  `visit_no` VARCHAR(32) NOT NULL COMMENT '就诊号;唯一',
  `patient_id` BIGINT NOT NULL COMMENT '患者ID',
  `dept_code` VARCHAR(20) NULL COMMENT '科室编码',
  `fee` DECIMAL(12,2) NOT NULL DEFAULT 0.00 COMMENT '费用',
  `created_at` DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`),
  KEY `idx_patient` (`patient_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COMMENT='就诊记录{i}';
ALTER TABLE `his_visit_{i}` ADD COLUMN `remark` VARCHAR(200) NULL COMMENT '备注' AFTER `fee`;
ALTER TABLE his_patient_{i % 40} MODIFY COLUMN name VARCHAR(128) NOT NULL COMMENT '姓名';
INSERT INTO sys_dict (dict_type, code, name)
VALUES ('visit_{i}', '01', '门诊;普通'), ('visit_{i}', '02', '急诊');
UPDATE sys_config SET cfg_value = 'v{i}' WHERE cfg_key = 'his.version';
"""
    if i % 25 == 0:
        text += f"""DELIMITER $$
CREATE PROCEDURE sp_visit_{i}(IN p_id BIGINT)
BEGIN
  UPDATE `his_visit_{i}` SET fee = fee + 1 WHERE id = p_id;
  SELECT 'done;';
END $$
DELIMITER ;
"""
    return text


def postgres_unit(i: int) -> str:
    text = f"""-- 电子病历 {i}
CREATE TABLE emr.emr_doc_{i} (
    id          bigserial PRIMARY KEY,
    patient_id  bigint      NOT NULL,
    title       varchar(200),
    content     text,
    signed_at   timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE emr.emr_doc_{i} IS '病历文书{i};主表';
COMMENT ON COLUMN emr.emr_doc_{i}.content IS '正文';
CREATE INDEX CONCURRENTLY idx_emr_doc_{i}_patient ON emr.emr_doc_{i} (patient_id);
ALTER TABLE emr.emr_record_{i % 40} ALTER COLUMN title TYPE varchar(500);
INSERT INTO emr.sys_dict (code, name) VALUES ('doc_{i}', E'文书\\'{i}; 类型');
"""
    if i % 25 == 0:
        text += f"""CREATE OR REPLACE FUNCTION emr.fn_doc_{i}() RETURNS trigger AS $$
BEGIN
    NEW.signed_at := now(); -- 签名;时间
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""
    return text


def oracle_unit(i: int) -> str:
    text = f"""PROMPT 创建 LIS_ITEM_{i}
CREATE TABLE lis_item_{i} (
  id            NUMBER(19)     NOT NULL,
  item_code     VARCHAR2(20)   NOT NULL,
  item_name     VARCHAR2(100),
  ref_range     VARCHAR2(200),
  price         NUMBER(10,2)   DEFAULT 0,
  CONSTRAINT pk_lis_item_{i} PRIMARY KEY (id)
) TABLESPACE lis_data;
COMMENT ON TABLE lis_item_{i} IS '检验项目{i}';
COMMENT ON COLUMN lis_item_{i}.ref_range IS '参考范围;单位';
CREATE SEQUENCE seq_lis_item_{i} START WITH 1 INCREMENT BY 1 NOCACHE;
ALTER TABLE lis_result_{i % 40} MODIFY (result_value VARCHAR2(400));
INSERT INTO lis_dict (code, name) VALUES ('I{i}', '血常规;{i}');
"""
    if i % 25 == 0:
        text += f"""CREATE OR REPLACE TRIGGER trg_lis_item_{i}_bi
  BEFORE INSERT ON lis_item_{i} FOR EACH ROW
BEGIN
  SELECT seq_lis_item_{i}.NEXTVAL INTO :NEW.id FROM dual;
END;
/
"""
    return text


def tsql_unit(i: int) -> str:
    text = f"""CREATE TABLE [dbo].[pacs_study_{i}](
    [id] [bigint] IDENTITY(1,1) NOT NULL,
    [accession_no] [varchar](32) NOT NULL,
    [modality] [nvarchar](8) NULL,
    [created] [datetime] NOT NULL CONSTRAINT [DF_pacs_study_{i}_created] DEFAULT (getdate()),
 CONSTRAINT [PK_pacs_study_{i}] PRIMARY KEY CLUSTERED ([id] ASC)
) ON [PRIMARY]
GO
EXEC sys.sp_addextendedproperty @name=N'MS_Description', @value=N'影像检查{i}',
    @level0type=N'SCHEMA', @level0name=N'dbo', @level1type=N'TABLE', @level1name=N'pacs_study_{i}'
GO
IF NOT EXISTS (SELECT 1 FROM sys.columns
               WHERE object_id = OBJECT_ID(N'dbo.pacs_report_{i % 40}') AND name = N'remark_{i}')
BEGIN
    ALTER TABLE dbo.pacs_report_{i % 40} ADD remark_{i} NVARCHAR(200) NULL;
END
GO
INSERT INTO dbo.sys_dict (code, name) VALUES (N'S{i}', N'CT;平扫')
GO
"""
    if i % 25 == 0:
        text += f"""CREATE OR ALTER PROCEDURE dbo.usp_study_{i} @id BIGINT
AS
BEGIN
    SET NOCOUNT ON;
    UPDATE dbo.pacs_study_{i} SET modality = N'CT' WHERE id = @id;
END
GO
"""
    return text


UNITS = {"mysql": mysql_unit, "postgres": postgres_unit, "oracle": oracle_unit, "tsql": tsql_unit}


def script(dialect: str, size: int) -> str:
    parts, total, i = [], 0, 0
    while total < size:
        unit = UNITS[dialect](i)
        parts.append(unit)
        total += len(unit.encode("utf-8"))
        i += 1
    return "".join(parts)


# -- timing -------------------------------------------------------------------------------------
def best_of(repeat: int, fn) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def parse_all(texts: list[str], dialect: str) -> None:
    for text in texts:
        with contextlib.suppress(sqlglot.errors.SqlglotError):
            sqlglot.parse(text, read=dialect)


def measure(dialect: str, size: int, repeat: int) -> dict:
    sql = script(dialect, size)
    texts = [s.text for s in split_statements(sql, dialect)]
    analysis = analyse(sql, "", dialect)
    seconds = best_of(repeat, lambda: analyse(sql, "", dialect))
    floor = best_of(repeat, lambda: parse_all(texts, dialect))
    return {
        "dialect": dialect,
        "bytes": len(sql.encode("utf-8")),
        "statements": len(texts),
        "findings": len(analysis.findings),
        "seconds": round(seconds, 3),
        "statements_per_second": round(len(texts) / seconds),
        "floor_seconds": round(floor, 3),
        "ratio_to_floor": round(seconds / floor, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="bytes per script")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best one counts")
    args = parser.parse_args(argv)

    rows = [measure(dialect, args.size, args.repeat) for dialect in DIALECTS]
    header = ("dialect", "bytes", "statements", "seconds", "stmts/s", "floor s", "ratio")
    print(("{:<9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>6}").format(*header))
    for r in rows:
        print(
            f"{r['dialect']:<9} {r['bytes']:>9} {r['statements']:>10} {r['seconds']:>8.2f} "
            f"{r['statements_per_second']:>8} {r['floor_seconds']:>8.2f} {r['ratio_to_floor']:>6}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "ddl_analysis",
                "python": platform.python_version(),
                "sqlglot": sqlglot.__version__,
                "size": args.size,
                "repeat": args.repeat,
                "results": rows,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
