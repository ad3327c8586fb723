"""Static review of a change script: findings per statement, affected objects and the
table-structure document (Z5), from sqlglot's syntax trees.

Nothing here connects to a database: what the script changes is read from the script, and
what the tables looked like before is read from earlier statements of the same script and from
the rollback SQL (which restores the old definitions). A statement we cannot understand is
reported as ``unparsed`` (an error) — never passed over as clean.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from workflow.ddl.rules import RULES, SEVERITY_RANK, severity_of
from workflow.ddl.split import DIALECTS, ROUTINE_HEADER, Statement, split_statements

# sqlglot logs every fallback to a raw Command; we report those as findings instead.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

DIALECT_NAMES = {
    "mysql": "MySQL",
    "postgres": "PostgreSQL",
    "oracle": "Oracle",
    "tsql": "SQL Server",
}
_KIND_WORDS = {
    "procedure": ("存储过程", "procedure"),
    "function": ("函数", "function"),
    "trigger": ("触发器", "trigger"),
    "package": ("程序包", "package"),
    "type": ("类型", "type"),
    "view": ("视图", "view"),
    "event": ("事件", "event"),
    "block": ("匿名块", "anonymous block"),
    "index": ("索引", "index"),
    "sequence": ("序列", "sequence"),
    "constraint": ("约束", "constraint"),
    "synonym": ("同义词", "synonym"),
    "object": ("对象", "object"),
}
_ROUTINE_KINDS = {
    "PROCEDURE": "procedure",
    "PROC": "procedure",
    "FUNCTION": "function",
    "TRIGGER": "trigger",
    "PACKAGE": "package",
    "PACKAGE BODY": "package",
    "TYPE": "type",
    "TYPE BODY": "type",
    "VIEW": "view",
    "EVENT": "event",
}
_NAME_AFTER = re.compile(
    r"\s*((?:[\w$#]+|\"[^\"]+\"|`[^`]+`|\[[^\]]+\])(?:\s*\.\s*(?:[\w$#]+|\"[^\"]+\"|`[^`]+`|\[[^\]]+\]))*)"
)
_ANON_BLOCK = re.compile(r"(?:DECLARE|BEGIN)\b|DO\s", re.IGNORECASE)
_MYSQL_RENAME = re.compile(r"RENAME\s+TABLE\s+(.+)", re.IGNORECASE | re.DOTALL)
_ORACLE_MODIFY = re.compile(
    r"ALTER\s+TABLE\s+(\S+)\s+MODIFY\s*(\(.*\)|.+)$", re.IGNORECASE | re.DOTALL
)
_TSQL_WITH_CHECK = re.compile(r"(ALTER\s+TABLE\s+\S+\s+)WITH\s+(NO)?CHECK\s+", re.IGNORECASE)
_HARMLESS_COMMANDS = re.compile(
    r"(?:SET|USE|COMMIT|ROLLBACK|BEGIN\s+TRAN|START\s+TRANSACTION|PRINT|ANALYZE|VACUUM)\b"
    r"|ALTER\s+TABLE\s+\S+\s+VALIDATE\s+CONSTRAINT\b",
    re.IGNORECASE,
)

_INT_RANK = {
    "TINYINT": 1,
    "UTINYINT": 1,
    "SMALLINT": 2,
    "USMALLINT": 2,
    "MEDIUMINT": 3,
    "UMEDIUMINT": 3,
    "INT": 4,
    "UINT": 4,
    "BIGINT": 8,
    "UBIGINT": 8,
}
_INT_DIGITS = {1: 3, 2: 5, 3: 8, 4: 10, 8: 19}
_TEXT_LEN = {"TINYTEXT": 255, "TEXT": None, "MEDIUMTEXT": 16_777_215, "LONGTEXT": None}
_STRINGS = {"CHAR", "NCHAR", "VARCHAR", "NVARCHAR", "BPCHAR", *_TEXT_LEN}
_DECIMALS = {"DECIMAL", "MONEY", "SMALLMONEY", "BIGDECIMAL"}
_FLOATS = {"FLOAT": 4, "DOUBLE": 8}
_DATES = {
    "DATE": 1,
    "DATETIME": 2,
    "DATETIME2": 2,
    "SMALLDATETIME": 2,
    "TIMESTAMP": 2,
    "TIMESTAMPTZ": 2,
    "TIMESTAMPLTZ": 2,
    "DATETIMEOFFSET": 2,
}


@dataclass
class Analysis:
    """What the review knows about a revision: statements, findings, objects, structure."""

    dialect: str
    statements: list[dict] = field(default_factory=list)
    findings: list[dict] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)
    structure: list[dict] = field(default_factory=list)
    rollback_statements: int = 0

    @property
    def risk(self) -> str:
        """The highest severity among the findings, or 'none'."""
        return max((f["severity"] for f in self.findings), key=SEVERITY_RANK.get, default="none")

    def as_data(self) -> dict:
        """A JSON-ready copy, stored with the revision."""
        return {
            "dialect": self.dialect,
            "risk": self.risk,
            "statements": self.statements,
            "findings": self.findings,
            "objects": self.objects,
            "structure": self.structure,
            "rollback_statements": self.rollback_statements,
        }


def _key(name: str) -> str:
    """The comparable form of a possibly qualified, possibly quoted object name: its last part."""
    last = re.split(r"\s*\.\s*", name.strip())[-1]
    return last.strip('"`[]').lower()


def _table_name(table) -> str:
    if isinstance(table, exp.Schema):
        table = table.this
    if isinstance(table, exp.Table):
        parts = [p.name for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p]
        return ".".join(parts) or table.sql()
    return table.sql() if isinstance(table, exp.Expression) else str(table)


def _type_facts(dtype: exp.DataType | None):
    """(family, size) of a column type: size is a comparable tuple, None meaning unbounded."""
    if not isinstance(dtype, exp.DataType):
        return None
    name = dtype.this.name if hasattr(dtype.this, "name") else str(dtype.this)
    params = []
    for p in dtype.expressions:
        value = p.this if isinstance(p, exp.DataTypeParam) else p
        text = value.name if isinstance(value, exp.Expression) else str(value)
        params.append(int(text) if text.isdigit() else None)  # MAX and friends: unbounded
    if name in _INT_RANK:
        return ("int", (_INT_RANK[name],))
    if name in _STRINGS:
        if name in _TEXT_LEN:
            return ("string", (_TEXT_LEN[name],))
        return ("string", (params[0] if params else (1 if name in {"CHAR", "NCHAR"} else None),))
    if name in _DECIMALS:
        precision = params[0] if params else None
        scale = params[1] if len(params) > 1 else 0
        return ("decimal", (precision, scale))
    if name in _FLOATS:
        return ("float", (_FLOATS[name],))
    if name in _DATES:
        return ("date", (_DATES[name],))
    return (name.lower(), tuple(params))


def _smaller(new, old) -> bool:
    """new < old where None is unbounded."""
    if old is None:
        return new is not None
    return new is not None and new < old


def is_narrowing(old: exp.DataType | None, new: exp.DataType | None) -> bool:
    """Whether some value of the old type may not fit the new one."""
    a, b = _type_facts(old), _type_facts(new)
    if a is None or b is None:
        return False
    (fam_a, size_a), (fam_b, size_b) = a, b
    if fam_a == fam_b:
        if fam_a == "decimal":
            (pa, sa), (pb, sb) = size_a, size_b
            whole_a = None if pa is None else pa - sa
            whole_b = None if pb is None else pb - sb
            return sb < sa or _smaller(whole_b, whole_a)
        return any(_smaller(n, o) for n, o in zip(size_b, size_a, strict=False))
    if fam_a == "string":
        return fam_b in {"int", "decimal", "float", "date"}
    if fam_a in {"decimal", "float"}:
        return fam_b in {"int", "float", "decimal", "string"} and not (
            fam_b == "string" and size_b[0] is None
        )
    if fam_a == "int":
        digits = _INT_DIGITS[size_a[0]]
        if fam_b == "decimal":
            precision, scale = size_b
            return precision is not None and precision - scale < digits
        if fam_b == "string":
            return _smaller(size_b[0], digits + 1)
        return fam_b == "date"
    if fam_a == "date":
        return fam_b != "string" or _smaller(size_b[0], 19)
    return False


class _Review:
    """One pass over the change script (and the rollback script) of a revision."""

    def __init__(self, dialect: str, overrides: dict | None):
        self.dialect = dialect
        self.overrides = overrides or {}
        self.analysis = Analysis(dialect)
        self.created: set[str] = set()
        self.types: dict[tuple[str, str], exp.DataType] = {}
        self.old_types: dict[tuple[str, str], exp.DataType] = {}
        self.tables: dict[str, dict] = {}
        self.ddl = 0
        self.data_changes: list[tuple[Statement, str, str]] = []
        self.statement: Statement | None = None
        self.part = "change"
        self._ids: dict[str, int] = {}

    # -- recording -----------------------------------------------------------------------
    def find(self, rule_id: str, **values) -> None:
        """Record a finding of rule_id on the current statement."""
        rule = RULES[rule_id]
        values = {k: ("" if v is None else v) for k, v in values.items()}
        for key in ("name", "table", "column", "old", "new", "kind", "detail", "dialect"):
            values.setdefault(key, "")
        kind = values.get("kind")
        zh_values = dict(values)
        if kind in _KIND_WORDS:
            zh_values["kind"], values["kind"] = _KIND_WORDS[kind]
        st = self.statement
        base = (
            f"{'R' if self.part == 'rollback' else ''}{st.number}-{rule_id}"
            if st
            else f"script-{rule_id}"
        )
        self._ids[base] = self._ids.get(base, 0) + 1
        ident = base if self._ids[base] == 1 else f"{base}-{self._ids[base]}"
        self.analysis.findings.append(
            {
                "id": ident,
                "rule": rule_id,
                "severity": severity_of(rule_id, self.overrides),
                "destructive": rule.destructive,
                "part": self.part,
                "statement": st.number if st else None,
                "line": st.line if st else None,
                "message": {
                    "zh": rule.message["zh"].format(**zh_values).strip(),
                    "en": rule.message["en"].format(**values).strip(),
                },
                "object": values.get("table") or values.get("name") or "",
            }
        )

    def touch(self, kind: str, name: str, action: str) -> None:
        """Record an affected object once per (kind, name, action)."""
        entry = {"type": kind, "name": name, "action": action}
        if entry not in self.analysis.objects:
            self.analysis.objects.append(entry)

    def table_doc(self, name: str, action: str) -> dict:
        """The structure-document entry of a table, created on first use."""
        key = _key(name)
        doc = self.tables.get(key)
        if doc is None:
            doc = {
                "table": name,
                "action": action,
                "columns": [],
                "changes": [],
                "indexes": [],
                "comment": "",
            }
            self.tables[key] = doc
            self.analysis.structure.append(doc)
        return doc

    def sql(self, node) -> str:
        return node.sql(dialect=self.dialect) if isinstance(node, exp.Expression) else str(node)

    # -- statements ----------------------------------------------------------------------
    def run(self, statements: list[Statement]) -> None:
        for st in statements:
            self.statement = st
            kind = self.statement_kind(st.text)
            self.analysis.statements.append(
                {
                    "number": st.number,
                    "line": st.line,
                    "end_line": st.end_line,
                    "kind": kind,
                    "summary": st.text.splitlines()[0][:120],
                }
            )
        self.statement = None

    def statement_kind(self, text: str) -> str:
        header = ROUTINE_HEADER.match(text)
        if header:
            kind = _ROUTINE_KINDS[re.sub(r"\s+", " ", header.group(1).upper())]
            name = _NAME_AFTER.match(text, header.end())
            self.routine(kind, name.group(1) if name else "?")
            return "routine"
        if self.dialect in {"oracle", "postgres"} and _ANON_BLOCK.match(text):
            self.routine("block", text.split(None, 1)[0].upper())
            return "routine"
        try:
            trees = [t for t in sqlglot.parse(text, read=self.dialect) if t is not None]
        except (ParseError, TokenError) as exc:
            self.find("unparsed", dialect=DIALECT_NAMES[self.dialect], detail=_first_error(exc))
            return "unparsed"
        if not trees:
            return "other"
        kinds = [self.tree(t, text) for t in trees]
        for k in ("unparsed", "ddl", "dml"):
            if k in kinds:
                return k
        return kinds[0]

    def routine(self, kind: str, name: str) -> None:
        self.ddl += 1
        self.find("routine-change", kind=kind, name=name)
        if kind != "block":
            self.touch(kind, name, "create_or_replace")

    def tree(self, node: exp.Expression, text: str) -> str:
        if isinstance(node, exp.Create):
            return self.create(node)
        if isinstance(node, exp.Alter):
            return self.alter(node)
        if isinstance(node, exp.Drop):
            return self.drop(node)
        if isinstance(node, exp.TruncateTable):
            self.ddl += 1
            for t in node.expressions:
                name = _table_name(t)
                self.find("truncate", table=name)
                self.touch("table", name, "truncate")
            return "ddl"
        if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
            return self.data_change(node)
        if isinstance(node, (exp.Grant, exp.Revoke)):
            self.find("privilege-change", name=text.split(None, 1)[0].upper())
            return "ddl"
        if isinstance(node, exp.Comment):
            self.comment(node)
            return "ddl"
        if isinstance(node, exp.Execute):
            return self.execute(node, text)
        if isinstance(node, exp.Command):
            return self.command(node, text)
        if isinstance(
            node, (exp.Query, exp.Use, exp.Set, exp.Transaction, exp.Commit, exp.Rollback)
        ):
            return "other"
        self.find(
            "unparsed",
            dialect=DIALECT_NAMES[self.dialect],
            detail="(it reads as an expression, not as a statement)",
        )
        return "unparsed"

    def create(self, node: exp.Create) -> str:
        kind = (node.args.get("kind") or "").upper()
        self.ddl += 1
        if kind == "TABLE":
            self.create_table(node)
        elif kind.endswith("INDEX"):
            self.create_index(node, kind)
        elif kind in _ROUTINE_KINDS:
            self.routine(_ROUTINE_KINDS[kind], _table_name(node.this))
            return "routine"
        else:
            self.touch(kind.lower() or "object", _table_name(node.this), "create")
        return "ddl"

    def create_table(self, node: exp.Create) -> None:
        schema = node.this
        name = _table_name(schema)
        key = _key(name)
        self.created.add(key)
        self.touch("table", name, "create")
        doc = self.table_doc(name, "created")
        has_pk = False
        columns = schema.expressions if isinstance(schema, exp.Schema) else []
        for item in columns:
            if isinstance(item, exp.ColumnDef):
                info = self.column_info(item)
                has_pk = has_pk or info["primary_key"]
                doc["columns"].append(info)
                self.types[(key, _key(item.name))] = item.args.get("kind")
            elif isinstance(item, exp.PrimaryKey) or (
                isinstance(item, exp.Constraint) and item.find(exp.PrimaryKey)
            ):
                has_pk = True
                pk_cols = {_key(c.name) for c in item.find_all(exp.Identifier, exp.Column)}
                for col in doc["columns"]:
                    col["primary_key"] = col["primary_key"] or _key(col["name"]) in pk_cols
        props = node.args.get("properties")
        if props:
            for prop in props.expressions:
                if isinstance(prop, exp.SchemaCommentProperty):
                    doc["comment"] = prop.this.name
        if not has_pk:
            self.find("no-primary-key", table=name)

    def column_info(self, col: exp.ColumnDef) -> dict:
        constraints = [c.args.get("kind") for c in col.args.get("constraints") or []]
        default = next((c for c in constraints if isinstance(c, exp.DefaultColumnConstraint)), None)
        comment = next((c for c in constraints if isinstance(c, exp.CommentColumnConstraint)), None)
        return {
            "name": col.name,
            "type": self.sql(col.args.get("kind")) if col.args.get("kind") else "",
            "nullable": not any(
                isinstance(c, (exp.NotNullColumnConstraint, exp.PrimaryKeyColumnConstraint))
                and not (isinstance(c, exp.NotNullColumnConstraint) and c.args.get("allow_null"))
                for c in constraints
            ),
            "default": self.sql(default.this) if default is not None else "",
            "primary_key": any(isinstance(c, exp.PrimaryKeyColumnConstraint) for c in constraints),
            "identity": any(
                isinstance(
                    c, (exp.GeneratedAsIdentityColumnConstraint, exp.AutoIncrementColumnConstraint)
                )
                for c in constraints
            ),
            "comment": comment.this.name if comment is not None else "",
        }

    def create_index(self, node: exp.Create, kind: str) -> None:
        index = node.this
        name = index.name if isinstance(index, exp.Index) else _table_name(index)
        table = _table_name(index.args.get("table")) if isinstance(index, exp.Index) else ""
        self.touch("index", name, "create")
        if table:
            self.touch("table", table, "alter")
            cols = [self.sql(c) for c in index.find_all(exp.Ordered)] or []
            self.table_doc(table, "altered" if _key(table) not in self.created else "created")[
                "indexes"
            ].append({"name": name, "unique": bool(node.args.get("unique")), "columns": cols})
        existing = table and _key(table) not in self.created
        if existing and node.args.get("unique"):
            self.find("unique-on-existing", table=table, name=name)
        if existing and self.dialect == "postgres" and not node.args.get("concurrently"):
            self.find("index-not-concurrent", table=table, name=name)

    def alter(self, node: exp.Alter) -> str:
        self.ddl += 1
        if (node.args.get("kind") or "TABLE").upper() != "TABLE":
            self.touch((node.args.get("kind") or "object").lower(), _table_name(node.this), "alter")
            return "ddl"
        table = _table_name(node.this)
        key = _key(table)
        existing = key not in self.created
        self.touch("table", table, "alter")
        doc = self.table_doc(table, "altered")
        for action in node.args.get("actions") or []:
            defs = action.expressions if isinstance(action, exp.Schema) else [action]
            for item in defs:
                self.alter_action(node, table, key, existing, doc, item)
        return "ddl"

    def alter_action(self, node, table, key, existing, doc, action) -> None:
        if isinstance(action, exp.ColumnDef):
            info = self.column_info(action)
            doc["changes"].append({"change": "add", **info})
            self.touch("column", f"{table}.{action.name}", "add")
            self.types[(key, _key(action.name))] = action.args.get("kind")
            if existing and not info["nullable"] and not info["default"] and not info["identity"]:
                self.find("not-null-without-default", table=table, column=action.name)
        elif isinstance(action, exp.Drop):
            self.alter_drop(table, doc, action)
        elif isinstance(action, exp.AlterColumn):
            column = action.name
            self.touch("column", f"{table}.{column}", "alter")
            dtype = action.args.get("dtype")
            if dtype is not None:
                doc["changes"].append({"change": "type", "name": column, "type": self.sql(dtype)})
                self.type_change(table, key, column, dtype)
            if action.args.get("allow_null") is False:
                doc["changes"].append({"change": "not_null", "name": column})
                if existing:
                    self.find("set-not-null", table=table, column=column)
        elif isinstance(action, exp.ModifyColumn):
            coldef = action.this
            column = coldef.name
            old_name = action.args.get("rename_from")
            if old_name is not None and _key(old_name.name) != _key(column):
                self.find("rename-column", table=table, column=old_name.name, new=column)
                doc["changes"].append({"change": "rename", "name": old_name.name, "to": column})
                self.touch("column", f"{table}.{old_name.name}", "rename")
            info = self.column_info(coldef)
            doc["changes"].append({"change": "modify", **info})
            self.touch("column", f"{table}.{column}", "alter")
            source = old_name.name if old_name is not None else column
            if coldef.args.get("kind") is not None:
                self.type_change(table, key, source, coldef.args.get("kind"), report_same=False)
            if existing and not info["nullable"]:
                self.find("set-not-null", table=table, column=column)
        elif isinstance(action, exp.RenameColumn):
            old, new = action.this.name, action.args["to"].name
            self.find("rename-column", table=table, column=old, new=new)
            doc["changes"].append({"change": "rename", "name": old, "to": new})
            self.touch("column", f"{table}.{old}", "rename")
        elif isinstance(action, exp.AlterRename):
            new = _table_name(action.this)
            self.find("rename-table", table=table, new=new)
            doc["changes"].append({"change": "rename_table", "to": new})
            self.touch("table", table, "rename")
        elif isinstance(action, exp.AddConstraint):
            for constraint in action.expressions:
                self.add_constraint(node, table, existing, doc, constraint)

    def alter_drop(self, table, doc, action: exp.Drop) -> None:
        kind = (action.args.get("kind") or "").upper()
        for target in action.expressions or action.args.get("tables") or []:
            name = target.name if isinstance(target, exp.Expression) else str(target)
            if kind == "COLUMN":
                self.find("drop-column", table=table, column=name)
                doc["changes"].append({"change": "drop", "name": name})
                self.touch("column", f"{table}.{name}", "drop")
            else:
                word = "index" if "INDEX" in kind else "constraint"
                self.find("drop-object", kind=word, name=f"{table}.{name}")
                doc["changes"].append({"change": f"drop_{word}", "name": name})
                self.touch(word, name, "drop")
            if action.args.get("cascade"):
                self.find("drop-cascade", name=f"{table}.{name}")

    def add_constraint(self, node, table, existing, doc, constraint) -> None:
        inner = constraint.expressions if isinstance(constraint, exp.Constraint) else [constraint]
        name = constraint.name if isinstance(constraint, exp.Constraint) else ""
        for item in inner:
            label = name or self.sql(item)[:60]
            doc["changes"].append(
                {"change": "constraint", "name": label, "definition": self.sql(item)}
            )
            if not existing:
                continue
            if isinstance(
                item, (exp.UniqueColumnConstraint, exp.PrimaryKey, exp.PrimaryKeyColumnConstraint)
            ):
                self.find("unique-on-existing", table=table, name=label)
            elif (
                isinstance(item, (exp.ForeignKey, exp.CheckColumnConstraint))
                and self.dialect == "postgres"
                and not node.args.get("not_valid")
            ):
                self.find("constraint-validates", table=table, name=label)

    def type_change(self, table, key, column, dtype, report_same=True) -> None:
        old = self.types.get((key, _key(column))) or self.old_types.get((key, _key(column)))
        new_sql = self.sql(dtype)
        if old is not None and self.sql(old).upper() == new_sql.upper():
            if report_same:
                self.find("type-change", table=table, column=column, new=new_sql)
        elif old is not None and is_narrowing(old, dtype):
            self.find("type-narrowing", table=table, column=column, old=self.sql(old), new=new_sql)
        else:
            self.find("type-change", table=table, column=column, new=new_sql)
        self.types[(key, _key(column))] = dtype

    def drop(self, node: exp.Drop) -> str:
        kind = (node.args.get("kind") or "").upper()
        self.ddl += 1
        for target in node.args.get("tables") or node.expressions or []:
            name = _table_name(target)
            if kind == "DATABASE":
                self.find("drop-database", name=name)
                self.touch("database", name, "drop")
            elif kind == "SCHEMA":
                name = target.args["db"].name if target.args.get("db") else name
                self.find("drop-schema", name=name)
                self.touch("schema", name, "drop")
            elif kind == "TABLE":
                self.touch("table", name, "drop")
                self.table_doc(name, "dropped")
                if _key(name) not in self.created:
                    self.find("drop-table", table=name)
            else:
                word = kind.lower().replace("materialized ", "") or "object"
                word = word if word in _KIND_WORDS else "object"
                self.find("drop-object", kind=word, name=name)
                self.touch(word, name, "drop")
            if node.args.get("cascade"):
                self.find("drop-cascade", name=name)
        return "ddl"

    def data_change(self, node) -> str:
        word = type(node).__name__.upper()
        target = node.this if not isinstance(node, exp.Merge) else node.this
        name = _table_name(target) if target is not None else "?"
        self.touch("table", name, "data")
        self.data_changes.append((self.statement, word, name))
        if isinstance(node, (exp.Update, exp.Delete)) and not node.args.get("where"):
            self.find("dml-without-where", kind=word, table=name)
        return "dml"

    def comment(self, node: exp.Comment) -> None:
        kind = (node.args.get("kind") or "").upper()
        text = node.expression.name if node.expression is not None else ""
        target = node.this
        if kind == "COLUMN" and isinstance(target, exp.Column):
            table = target.table or ""
            doc = self.table_doc(table, "altered" if _key(table) not in self.created else "created")
            for col in doc["columns"]:
                if _key(col["name"]) == _key(target.name):
                    col["comment"] = text
                    break
            else:
                doc["changes"].append({"change": "comment", "name": target.name, "comment": text})
        elif kind == "TABLE":
            name = _table_name(target)
            doc = self.table_doc(name, "altered" if _key(name) not in self.created else "created")
            doc["comment"] = text

    def execute(self, node: exp.Execute, text: str) -> str:
        proc = _table_name(node.this).lower()
        args = [a.name for a in node.expressions if isinstance(a, exp.Literal)]
        if proc.endswith("sp_rename") and len(args) >= 2:
            self.ddl += 1
            old, new = args[0], args[1]
            if len(args) >= 3 and args[2].upper() == "COLUMN":
                table, _, column = old.rpartition(".")
                self.find("rename-column", table=table, column=column, new=new)
                self.touch("column", old, "rename")
            elif len(args) >= 3 and args[2].upper() == "INDEX":
                self.touch("index", old, "rename")
            else:
                self.find("rename-table", table=old, new=new)
                self.touch("table", old, "rename")
            return "ddl"
        self.find(
            "unparsed",
            dialect=DIALECT_NAMES[self.dialect],
            detail=f"EXEC {proc}: the effect of a procedure call is not known.",
        )
        return "unparsed"

    def command(self, node: exp.Command, text: str) -> str:
        if m := _MYSQL_RENAME.match(text):
            self.ddl += 1
            for pair in m.group(1).split(","):
                old, _, new = (
                    re.split(r"\s+TO\s+", pair.strip(), flags=re.IGNORECASE)[0],
                    None,
                    (re.split(r"\s+TO\s+", pair.strip(), flags=re.IGNORECASE) + [""])[1],
                )
                self.find("rename-table", table=old.strip(), new=new.strip())
                self.touch("table", old.strip(), "rename")
            return "ddl"
        if self.dialect == "oracle" and (m := _ORACLE_MODIFY.match(text)):
            return self.oracle_modify(m.group(1), m.group(2))
        if self.dialect == "tsql" and _TSQL_WITH_CHECK.match(text):
            try:
                tree = sqlglot.parse_one(_TSQL_WITH_CHECK.sub(r"\1", text), read="tsql")
            except (ParseError, TokenError):
                tree = None
            if isinstance(tree, exp.Alter):
                return self.alter(tree)
        if _HARMLESS_COMMANDS.match(text):
            return "other"
        if self.dialect == "postgres" and re.match(r"DO\s", text, re.IGNORECASE):
            self.routine("block", "DO")
            return "routine"
        self.find("unparsed", dialect=DIALECT_NAMES[self.dialect], detail=f"({node.name} …)")
        return "unparsed"

    def oracle_modify(self, table: str, body: str) -> str:
        """ALTER TABLE t MODIFY (col type [NOT NULL], …): parsed as column definitions."""
        inner = body.strip()
        if inner.startswith("(") and inner.endswith(")"):
            inner = inner[1:-1]
        try:
            tree = sqlglot.parse_one(f"CREATE TABLE x__ ({inner})", read="oracle")
        except (ParseError, TokenError) as exc:
            self.find("unparsed", dialect=DIALECT_NAMES["oracle"], detail=_first_error(exc))
            return "unparsed"
        self.ddl += 1
        key = _key(table)
        existing = key not in self.created
        doc = self.table_doc(table, "altered")
        self.touch("table", table, "alter")
        for col in tree.this.expressions:
            if not isinstance(col, exp.ColumnDef):
                continue
            info = self.column_info(col)
            doc["changes"].append({"change": "modify", **info})
            self.touch("column", f"{table}.{col.name}", "alter")
            if col.args.get("kind") is not None:
                self.type_change(table, key, col.name, col.args["kind"], report_same=False)
            if existing and not info["nullable"]:
                self.find("set-not-null", table=table, column=col.name)
        return "ddl"

    # -- after the last statement ---------------------------------------------------------
    def finish(self, rollback_sql: str) -> None:
        if self.ddl:
            for st, word, table in self.data_changes:
                self.statement = st
                self.find("data-change-mixed", kind=word, table=table)
            self.statement = None
        destructive = sorted({f["rule"] for f in self.analysis.findings if f["destructive"]})
        if destructive and not rollback_sql.strip():
            self.find("no-rollback", name=", ".join(destructive))
        order = {"script": 0}
        self.analysis.findings.sort(
            key=lambda f: (f["part"] != "change", f["statement"] or order["script"])
        )


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        e = errors[0]
        return f"{e.get('description', '')} (line {e.get('line')}, column {e.get('col')})"
    return str(exc).splitlines()[0][:200]


def _rollback_types(rollback_sql: str, dialect: str) -> tuple[dict, list[dict], int]:
    """Old column types as the rollback restores them, and the rollback's unparsed findings."""
    review = _Review(dialect, None)
    review.part = "rollback"
    statements = split_statements(rollback_sql, dialect)
    review.run(statements)
    unparsed = [f for f in review.analysis.findings if f["rule"] == "unparsed"]
    return review.types, unparsed, len(statements)


def analyse(
    change_sql: str, rollback_sql: str, dialect: str, overrides: dict | None = None
) -> Analysis:
    """Findings, affected objects and the structure document of a change script.

    Raises ValueError for an unknown dialect; bad SQL never raises, it becomes a finding.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"Unknown dialect '{dialect}'; expected one of {', '.join(DIALECTS)}.")
    old_types, rollback_findings, rollback_count = _rollback_types(rollback_sql or "", dialect)
    review = _Review(dialect, overrides)
    review.old_types = old_types
    statements = split_statements(change_sql or "", dialect)
    if not statements:
        review.find("empty-script")
    review.run(statements)
    review.finish(rollback_sql or "")
    for f in rollback_findings:
        f["severity"] = severity_of(f["rule"], overrides)
    review.analysis.findings.extend(rollback_findings)
    review.analysis.rollback_statements = rollback_count
    return review.analysis
