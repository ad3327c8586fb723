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
from sqlglot.errors import SqlglotError

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
# Objects a script may drop and create again under the same name: the drop is then part of a
# replacement (MySQL and SQL Server have no CREATE OR REPLACE PROCEDURE), not a loss.
_RECREATABLE = {
    "procedure",
    "function",
    "trigger",
    "package",
    "type",
    "view",
    "event",
    "index",
    "constraint",
    "synonym",
}
_IDENT = r"(?:[\w$#]+|\"[^\"]+\"|`[^`]+`|\[[^\]]+\])"
_QUALIFIED = rf"{_IDENT}(?:\s*\.\s*{_IDENT})*"
_NAME_AFTER = re.compile(rf"\s*({_QUALIFIED})")
_MYSQL_RENAME = re.compile(r"RENAME\s+TABLE\s+(.+)", re.IGNORECASE | re.DOTALL)
_ORACLE_RENAME = re.compile(rf"RENAME\s+({_QUALIFIED})\s+TO\s+({_QUALIFIED})\s*$", re.IGNORECASE)
_ORACLE_MODIFY = re.compile(
    r"ALTER\s+TABLE\s+(\S+)\s+MODIFY\s*(\(.*\)|.+)$", re.IGNORECASE | re.DOTALL
)
_ORACLE_UNUSED = re.compile(
    rf"ALTER\s+TABLE\s+({_QUALIFIED})\s+SET\s+UNUSED\s*(?:COLUMN\s+({_IDENT})|\((.*)\))"
    r"(?:\s+CASCADE\s+CONSTRAINTS)?(?:\s+ONLINE)?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_ORACLE_DROP_COLUMNS = re.compile(
    r"DROP\s*\((.*)\)(\s+CASCADE\s+CONSTRAINTS)?\s*$", re.IGNORECASE | re.DOTALL
)
_DROP_PRIMARY_KEY = re.compile(r"DROP\s+PRIMARY\s+KEY(\s+CASCADE)?\b", re.IGNORECASE)
_DROP_USER = re.compile(rf"DROP\s+USER\s+({_QUALIFIED})(\s+CASCADE)?\s*$", re.IGNORECASE)
_SYNONYM = re.compile(
    rf"(CREATE|DROP)\s+(?:OR\s+REPLACE\s+)?(?:(?:NON)?EDITIONABLE\s+)?(?:PUBLIC\s+)?SYNONYM\s+"
    rf"({_QUALIFIED})",
    re.IGNORECASE,
)
_DROP_CODE = re.compile(
    rf"DROP\s+(PACKAGE\s+BODY|PACKAGE|TYPE\s+BODY|TYPE|TRIGGER|PROCEDURE|PROC|FUNCTION|EVENT)"
    rf"\s+(?:IF\s+EXISTS\s+)?({_QUALIFIED})",
    re.IGNORECASE,
)
_CREATE_SCHEMA = re.compile(
    rf"CREATE\s+SCHEMA\s+(?:IF\s+NOT\s+EXISTS\s+)?({_QUALIFIED})", re.IGNORECASE
)
_SECURITY = re.compile(
    r"(?:GRANT|REVOKE|DENY)\b|(?:CREATE|ALTER|DROP)\s+(?:USER|ROLE|LOGIN)\b", re.IGNORECASE
)
_OWNER_TO = re.compile(rf"ALTER\s+\w+(?:\s+\w+)?\s+({_QUALIFIED}).*\s+OWNER\s+TO\s+", re.I | re.S)
_PG_USING_INDEX = re.compile(
    rf"ALTER\s+TABLE\s+(?:ONLY\s+)?({_QUALIFIED})\s+ADD\s+CONSTRAINT\s+({_IDENT})\s+"
    rf"(UNIQUE|PRIMARY\s+KEY)\s+USING\s+INDEX\s+{_IDENT}\s*$",
    re.IGNORECASE,
)
_PG_ALTER_TYPE = re.compile(rf"ALTER\s+TYPE\s+({_QUALIFIED})\s+ADD\s+VALUE\b", re.IGNORECASE)
_DOLLAR_TAG = re.compile(r"(?<![\w$])\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
# Client commands that run another script file: its statements are not part of the review.
_INCLUDE = {
    "oracle": re.compile(r"(?:@@?|START\s)", re.IGNORECASE),
    "postgres": re.compile(r"\\(?:ir?|include(?:_relative)?)\b", re.IGNORECASE),
    "mysql": re.compile(r"(?:SOURCE\s|\\\.\s)", re.IGNORECASE),
    "tsql": re.compile(r":r\s", re.IGNORECASE),
}
_NEVER = re.compile(r"(?!)")
_DATA_LOAD = {
    "postgres": re.compile(rf"COPY\s+({_QUALIFIED})(?:\s*\([^)]*\))?\s+FROM\b", re.IGNORECASE),
    "mysql": re.compile(
        r"LOAD\s+DATA\s+(?:LOW_PRIORITY\s+|CONCURRENT\s+)?(?:LOCAL\s+)?INFILE\s+'[^']*'\s+"
        rf"(?:REPLACE\s+|IGNORE\s+)?INTO\s+TABLE\s+({_QUALIFIED})",
        re.IGNORECASE,
    ),
}
_MYSQL_EXECUTABLE_COMMENT = re.compile(r"/\*M?!\d*(.*?)\*/", re.DOTALL)
_MYSQL_REPLACE = re.compile(r"REPLACE(\s+(?:LOW_PRIORITY\s+|DELAYED\s+)?INTO\b)", re.IGNORECASE)
_MYSQL_CONVERT = re.compile(
    rf"ALTER\s+TABLE\s+({_QUALIFIED})\s+(?:DEFAULT\s+)?CONVERT\s+TO\s+(?:CHARACTER\s+SET|CHARSET)"
    r"\s*=?\s*(\w+)",
    re.IGNORECASE,
)
_TSQL_WITH_CHECK = re.compile(r"(ALTER\s+TABLE\s+\S+\s+)WITH\s+(NO)?CHECK\s+", re.IGNORECASE)
_TSQL_DEFAULT_FOR = re.compile(
    rf"ALTER\s+TABLE\s+({_QUALIFIED})\s+ADD\s+(?:CONSTRAINT\s+({_IDENT})\s+)?DEFAULT\s+(.+?)"
    rf"\s+FOR\s+({_IDENT})\s*$",
    re.IGNORECASE | re.DOTALL,
)
_PROCEDURE_CALL = re.compile(rf"(?:EXEC|EXECUTE|CALL)\s+({_QUALIFIED})", re.IGNORECASE)
_HARMLESS_COMMANDS = re.compile(
    r"(?:SET|USE|COMMIT|ROLLBACK|BEGIN\s+TRAN|START\s+TRANSACTION|PRINT|ANALYZE|VACUUM|"
    r"RAISERROR|THROW|RETURN|BREAK|CONTINUE|WAITFOR|CHECKPOINT|LOCK\s+TABLES?|UNLOCK\s+TABLES|FLUSH|"
    r"ALTER\s+SESSION)\b"
    r"|ALTER\s+TABLE\s+\S+\s+(?:DISABLE|ENABLE)\s+KEYS\b"
    r"|ALTER\s+TABLE\s+\S+\s+VALIDATE\s+CONSTRAINT\b"
    r"|ALTER\s+TABLE\s+\S+\s+(?:WITH\s+CHECK\s+)?CHECK\s+CONSTRAINT\b"
    r"|ALTER\s+SEQUENCE\s+\S+\s+OWNED\s+BY\b|UPDATE\s+STATISTICS\b"
    # Oracle: recompiling invalid objects after an upgrade changes no definition.
    r"|ALTER\s+(?:PROCEDURE|FUNCTION|PACKAGE|TRIGGER|VIEW|TYPE)\s+\S+\s+COMPILE\b",
    re.IGNORECASE,
)
# T-SQL control-of-flow words sqlglot reads as expressions; they change nothing by themselves.
_TSQL_CONTROL = re.compile(
    r"(?:BREAK|CONTINUE|RETURN|GOTO|WAITFOR|THROW|RAISERROR|PRINT)(?![\w@#$])", re.IGNORECASE
)

# -- T-SQL batches: IF / WHILE / BEGIN … END / TRY … CATCH and statements without ';' --------
_TSQL_FLOW = re.compile(
    r"(?<![\w@#$])(?:IF|WHILE|BEGIN|END|ELSE)(?![\w@#$])"
    r"|\n[ \t]*(?:CREATE|ALTER|DROP|EXEC|EXECUTE|INSERT|UPDATE|DELETE|TRUNCATE|GRANT|REVOKE|DENY|"
    r"PRINT|DECLARE|USE|RAISERROR|THROW|SET|SELECT|RETURN)(?![\w@#$])",
    re.IGNORECASE,
)
_TSQL_TOKEN = re.compile(
    r"(?P<ws>\s+)|(?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))"
    r"|(?P<str>[Nn]?'(?:[^']|'')*(?:'|\Z))"
    r"|(?P<qid>\[(?:[^\]]|\]\])*(?:\]|\Z)|\"(?:[^\"]|\"\")*(?:\"|\Z))"
    r"|(?P<word>(?:[^\W\d]|[@#])[\w@#$]*)|(?P<punct>.)",
    re.DOTALL,
)
_IF_CLAUSE = re.compile(r"\s+(?:NOT\s+)?EXISTS(?!\s*\()", re.IGNORECASE)
_NOT_A_BLOCK = re.compile(
    r"\s+(?:TRAN|TRANSACTION|DISTRIBUTED|DIALOG|CONVERSATION)(?![\w@#$])", re.IGNORECASE
)
_NEXT_WORD = re.compile(r"\s*(\w+)")
_TSQL_STATEMENT_WORDS = {
    "ALTER", "BEGIN", "BREAK", "BULK", "CHECKPOINT", "CLOSE", "COMMIT", "CONTINUE", "CREATE",
    "DBCC", "DEALLOCATE", "DECLARE", "DELETE", "DENY", "DISABLE", "DROP", "ENABLE", "EXEC",
    "EXECUTE", "FETCH", "GOTO", "GRANT", "IF", "INSERT", "MERGE", "OPEN", "PRINT", "RAISERROR",
    "RETURN", "REVOKE", "ROLLBACK", "SAVE", "SELECT", "SET", "THROW", "TRUNCATE", "UPDATE",
    "USE", "WAITFOR", "WHILE", "WITH",
}  # fmt: skip
_TSQL_LINE_STARTERS = {
    "CREATE", "EXEC", "EXECUTE", "PRINT", "RAISERROR", "THROW", "GRANT", "REVOKE", "DENY",
    "TRUNCATE", "DECLARE", "USE", "RETURN",
}  # fmt: skip
_TSQL_OBJECT_WORDS = {
    "TABLE", "VIEW", "PROC", "PROCEDURE", "FUNCTION", "TRIGGER", "INDEX", "SCHEMA", "DATABASE",
    "SYNONYM", "TYPE", "SEQUENCE", "STATISTICS", "USER", "LOGIN", "ROLE",
}  # fmt: skip
_TSQL_DML_WORDS = {"INSERT", "UPDATE", "DELETE"}
_TSQL_NOT_BEFORE_SELECT = {
    "DROP",
    "ALTER",
    "TRUNCATE",
    "GRANT",
    "REVOKE",
    "DENY",
    "UPDATE",
    "DELETE",
}
_NOT_AFTER = {"THEN", "ON", "FOR", "AFTER", "OF", "INSTEAD", ","}

# -- Oracle exports (DBMS_METADATA, SQL Developer): physical attributes sqlglot cannot read -----
_ORACLE_PHYSICAL = re.compile(
    r"\bUSING\s+INDEX\b(?:\s+(?:PCTFREE|PCTUSED|INITRANS|MAXTRANS)\s+\d+|\s+COMPUTE\s+STATISTICS"
    r"|\s+STORAGE\s*\([^)]*\)|\s+TABLESPACE\s+(?:\"[^\"]*\"|\w+)|\s+(?:NO)?LOGGING|\s+LOCAL"
    r"|\s+ONLINE|\s+(?:NO)?COMPRESS(?:\s+\d+)?)*"
    r"|\bSEGMENT\s+CREATION\s+(?:IMMEDIATE|DEFERRED)\b"
    r"|\b(?:PCTFREE|PCTUSED|INITRANS|MAXTRANS)\s+\d+"
    r"|\bSTORAGE\s*\([^)]*\)"
    r"|\bTABLESPACE\s+(?:\"[^\"]*\"|\w+)"
    r"|\b(?:NOCOMPRESS|COMPRESS(?:\s+(?:BASIC|FOR\s+OLTP))?|NOLOGGING|LOGGING|NOCACHE|CACHE|"
    r"MONITORING|NOMONITORING|NOPARALLEL|PARALLEL(?:\s+\d+)?)\b"
    r"|\b(?:ENABLE|DISABLE)(?:\s+(?:NO)?VALIDATE)?\b|\bNOVALIDATE\b|\bRELY\b"
    r"|\b(?:DROP|REUSE)\s+(?:ALL\s+)?STORAGE\b|\bONLINE\b",
    re.IGNORECASE,
)

# SQL Server (SSMS "Script as CREATE"): storage options sqlglot cannot read in every position.
_TSQL_PHYSICAL = re.compile(
    r"\b(?:TEXTIMAGE_ON|FILESTREAM_ON)\s+(?:\[[^\]]*\]|\w+)"
    r"|\bWITH\s*\(\s*(?:PAD_INDEX|FILLFACTOR|ONLINE|STATISTICS_NORECOMPUTE|IGNORE_DUP_KEY|"
    r"ALLOW_ROW_LOCKS|ALLOW_PAGE_LOCKS|SORT_IN_TEMPDB|DROP_EXISTING|DATA_COMPRESSION|MAXDOP|"
    r"OPTIMIZE_FOR_SEQUENTIAL_KEY|RESUMABLE)\b[^)]*\)",
    re.IGNORECASE,
)
_PHYSICAL = {"oracle": _ORACLE_PHYSICAL, "tsql": _TSQL_PHYSICAL}

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
    "SMALLSERIAL": 2,
    "SERIAL": 4,
    "BIGSERIAL": 8,
}
_UNSIGNED = {"UTINYINT", "USMALLINT", "UMEDIUMINT", "UINT", "UBIGINT"}
_INT_DIGITS = {1: 3, 2: 5, 3: 8, 4: 10, 8: 19}
# MySQL's TEXT types hold at most this many bytes; elsewhere TEXT is unbounded.
_MYSQL_TEXT_LEN = {
    "TINYTEXT": 255,
    "TEXT": 65_535,
    "MEDIUMTEXT": 16_777_215,
    "LONGTEXT": 4_294_967_295,
}
_STRINGS = {"CHAR", "NCHAR", "VARCHAR", "NVARCHAR", "BPCHAR", "NAME", *_MYSQL_TEXT_LEN}
_UNICODE = {"NCHAR", "NVARCHAR"}
_BINARY = {"BINARY", "VARBINARY", "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "IMAGE"}
_DECIMALS = {"DECIMAL": None, "MONEY": (19, 4), "SMALLMONEY": (10, 4), "BIGDECIMAL": None}
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
    name = re.sub(r"\s*\(.*$", "", name.strip(), flags=re.DOTALL)  # fn(int, text) → fn
    last = re.split(r"\s*\.\s*", name)[-1]
    return last.strip('"`[]').lower()


def _unquote(name: str) -> str:
    """A qualified name without its identifier quotes: [dbo].[t] → dbo.t."""
    return ".".join(p.strip().strip('"`[]') for p in re.split(r"\s*\.\s*", name.strip()))


def _table_name(table) -> str:
    if isinstance(table, exp.Schema):
        table = table.this
    if isinstance(table, exp.Table):
        parts = [p.name for p in (table.args.get("catalog"), table.args.get("db"), table.this) if p]
        return ".".join(parts) or table.sql()
    if table is None:
        return ""
    return table.sql() if isinstance(table, exp.Expression) else str(table)


def _is_temporary(node: exp.Expression, name: str) -> bool:
    """A temporary table: CREATE TEMPORARY, DROP TEMPORARY or a T-SQL #name."""
    if name.startswith("#") or node.args.get("temporary"):
        return True
    props = node.args.get("properties")
    if props and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions):
        return True
    return any(i.args.get("temporary") for i in node.find_all(exp.Identifier))


def _type_facts(dtype: exp.DataType | None, dialect: str | None = None):
    """(family, size) of a column type: size is a comparable tuple, None meaning unbounded."""
    if not isinstance(dtype, exp.DataType):
        return None
    name = dtype.this.name if hasattr(dtype.this, "name") else str(dtype.this)
    params = []
    for p in dtype.expressions:
        value = p.this if isinstance(p, exp.DataTypeParam) else p
        text = value.name if isinstance(value, exp.Expression) else str(value)
        params.append(int(text) if text.isdigit() else None)  # MAX, * and friends: unbounded
    if name in _INT_RANK:
        return ("int", (_INT_RANK[name], name in _UNSIGNED))
    if name in _STRINGS:
        unicode = name in _UNICODE
        if name in _MYSQL_TEXT_LEN:
            size = _MYSQL_TEXT_LEN[name] if dialect == "mysql" or name != "TEXT" else None
            if name == "LONGTEXT":
                size = None
            return ("string", (size, unicode))
        size = params[0] if params else (1 if name in {"CHAR", "NCHAR"} else None)
        return ("string", (size, unicode))
    if name in _DECIMALS:
        fixed = _DECIMALS[name]
        if fixed:
            return ("decimal", fixed)
        precision = params[0] if params else None
        scale = params[1] if len(params) > 1 and params[1] is not None else 0
        return ("decimal", (precision, scale))
    if name in _FLOATS:
        return ("float", (_FLOATS[name],))
    if name in _DATES:
        return ("date", (_DATES[name],))
    if name in _BINARY:
        return ("binary", (params[0] if params else None,))
    return (name.lower(), tuple(params))


def _smaller(new, old) -> bool:
    """new < old where None is unbounded."""
    if old is None:
        return new is not None
    return new is not None and new < old


def is_narrowing(
    old: exp.DataType | None, new: exp.DataType | None, dialect: str | None = None
) -> bool:
    """Whether some value of the old type may not fit the new one.

    ``dialect`` only matters where a type's size depends on it (MySQL's TEXT holds 64 KB,
    PostgreSQL's is unbounded).
    """
    a, b = _type_facts(old, dialect), _type_facts(new, dialect)
    if a is None or b is None:
        return False
    (fam_a, size_a), (fam_b, size_b) = a, b
    if fam_a == "int":
        (rank_a, unsigned_a) = size_a
        if fam_b == "int":
            rank_b, unsigned_b = size_b
            if unsigned_b and not unsigned_a:
                return True  # negative values no longer fit
            return rank_b < rank_a or (unsigned_a and not unsigned_b and rank_b <= rank_a)
        digits = _INT_DIGITS[rank_a]
        if fam_b == "decimal":
            precision, scale = size_b
            return precision is not None and precision - scale < digits
        if fam_b == "string":
            return _smaller(size_b[0], digits + 1)
        if fam_b == "float":  # a FLOAT keeps 24 bits of mantissa, a DOUBLE 53
            return rank_a == 8 or (size_b[0] == 4 and rank_a >= 3)
        return fam_b != "userdefined"
    if fam_a == "string":
        if fam_b == "string":
            # National (Unicode) text to a code-page type may lose characters, e.g. Chinese.
            return _smaller(size_b[0], size_a[0]) or (size_a[1] and not size_b[1])
        return fam_b not in {"binary", "userdefined"}
    if "userdefined" in (fam_a, fam_b):
        return False  # a type sqlglot does not know: no claim either way
    if fam_a == fam_b:
        if fam_a == "decimal":
            (pa, sa), (pb, sb) = size_a, size_b
            whole_a = None if pa is None else pa - sa
            whole_b = None if pb is None else pb - sb
            return sb < sa or _smaller(whole_b, whole_a)
        return any(_smaller(n, o) for n, o in zip(size_b, size_a, strict=False))
    if fam_a in {"decimal", "float"}:
        if fam_b == "string":
            return size_b[0] is not None
        return True
    if fam_a == "date":
        return fam_b != "string" or _smaller(size_b[0], 19)
    return False


def _tsql_pieces(text: str) -> list[str] | None:
    """The plain statements of a T-SQL batch part, control of flow taken away.

    ``IF <condition> <statement>``, ``WHILE``, ``BEGIN … END``, ``BEGIN TRY … END CATCH`` and
    ``ELSE`` are dropped (each branch is reviewed as if it ran), and statements written one per
    line without ``;`` are told apart where a line starts a new statement. None when the text
    has no control of flow and no second statement.
    """
    if not _TSQL_FLOW.search(text):
        return None
    pieces: list[str] = []
    cur: int | None = None
    last = 0
    paren = 0
    case = 0
    cond = False
    first = ""
    prev = ""
    skip_word = False

    def close() -> None:
        nonlocal cur
        if cur is not None:
            pieces.append(text[cur:last])
        cur = None

    for m in _TSQL_TOKEN.finditer(text):
        group = m.lastgroup
        if group in ("ws", "comment"):
            continue
        tok = m.group()
        s, e = m.span()
        upper = tok.upper() if group == "word" else tok
        if skip_word:
            skip_word = False
            if upper in ("TRY", "CATCH"):
                prev = upper
                continue
        if group == "word" and paren == 0:
            if cond and upper in _TSQL_STATEMENT_WORDS:
                cond = False
            if not cond and case == 0:
                control = (
                    upper == "WHILE"
                    or (upper == "IF" and not _IF_CLAUSE.match(text, e))
                    or upper in ("ELSE", "END")
                    or (upper == "BEGIN" and not _NOT_A_BLOCK.match(text, e))
                )
                if control:
                    close()
                    cond = upper in ("IF", "WHILE")
                    skip_word = upper in ("BEGIN", "END")
                    prev = upper
                    continue
            if upper == "CASE":
                case += 1
            elif upper == "END" and case:
                case -= 1
            elif cur is not None and not cond and _tsql_boundary(text, s, e, upper, prev, first):
                close()
        elif group == "punct":
            if tok == "(":
                paren += 1
            elif tok == ")":
                paren = max(0, paren - 1)
            elif tok == ";" and paren == 0 and not cond:
                close()
                prev = ";"
                continue
        prev = upper
        if cond:
            continue
        if cur is None:
            cur = s
            first = upper
        last = e
    close()
    return pieces


def _tsql_boundary(text: str, s: int, e: int, word: str, prev: str, first: str) -> bool:
    """Whether a word at the start of a line begins a new T-SQL statement (no ';' before it)."""
    nl = text.rfind("\n", 0, s)
    if nl < 0 or text[nl + 1 : s].strip():
        return False
    if word in ("ALTER", "DROP"):  # not ALTER TABLE t / ALTER COLUMN …, nor … / DROP COLUMN
        m = _NEXT_WORD.match(text, e)
        return bool(m and m.group(1).upper() in _TSQL_OBJECT_WORDS)
    if prev in _NOT_AFTER:
        return False
    if first in ("DECLARE", "SET", "PRINT", "EXEC", "EXECUTE", "USE"):
        return word in _TSQL_STATEMENT_WORDS
    if word in _TSQL_LINE_STARTERS or word in _TSQL_DML_WORDS:
        return True
    # A query never continues DROP, ALTER, TRUNCATE, GRANT, UPDATE or DELETE.
    return word == "SELECT" and first in _TSQL_NOT_BEFORE_SELECT


def _exec_args(node: exp.Execute) -> tuple[list[str], dict[str, str]]:
    """Positional and named (@name = value) string arguments of an EXEC."""
    positional: list[str] = []
    named: dict[str, str] = {}
    for arg in node.expressions:
        if isinstance(arg, exp.EQ) and isinstance(arg.this, exp.Parameter):
            named[arg.this.name.lower()] = arg.expression.name
        else:
            positional.append(arg.name if isinstance(arg, exp.Expression) else str(arg))
    return positional, named


class _Review:
    """One pass over the change script (and the rollback script) of a revision."""

    def __init__(self, dialect: str, overrides: dict | None):
        self.dialect = dialect
        self.overrides = overrides or {}
        self.analysis = Analysis(dialect)
        self.created: set[str] = set()
        # Column types as SQL text (a kept node would keep its whole tree alive).
        self.types: dict[tuple[str, str], str] = {}
        self.old_types: dict[tuple[str, str], str] = {}
        self.not_null: dict[tuple[str, str], bool] = {}
        self.old_not_null: dict[tuple[str, str], bool] = {}
        self.tables: dict[str, dict] = {}
        self.ddl = 0
        self.scratch = 0  # DDL on work tables the script creates and drops again
        self.data_changes: list[tuple[Statement, str, str]] = []
        self.statement: Statement | None = None
        self.part = "change"
        self._ids: dict[str, int] = {}
        self.order = 0  # position of the statement (or T-SQL piece) being reviewed
        self.pk_pending: list[tuple[Statement | None, str, str]] = []
        self.has_pk: set[str] = set()
        self.drops: list[tuple[dict, str, str, int]] = []
        self.created_last: dict[tuple[str, str], int] = {}  # (kind, key) → last creation
        self._touched: set[tuple[str, str, str]] = set()

    # -- recording -----------------------------------------------------------------------
    def find(self, rule_id: str, **values) -> dict:
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
        finding = {
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
        self.analysis.findings.append(finding)
        return finding

    def unparsed(self, detail: str) -> str:
        self.find("unparsed", dialect=DIALECT_NAMES[self.dialect], detail=detail)
        return "unparsed"

    def touch(self, kind: str, name: str, action: str) -> None:
        """Record an affected object once per (kind, name, action)."""
        if (kind, name, action) not in self._touched:  # a set: scripts hold thousands
            self._touched.add((kind, name, action))
            self.analysis.objects.append({"type": kind, "name": name, "action": action})

    def note_created(self, kind: str, key: str) -> None:
        """Note that the current statement creates (or replaces) an object."""
        self.created_last[(kind, key)] = self.order

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

    def existing(self, table: str) -> bool:
        """A table the script did not create earlier: it may hold rows."""
        return _key(table) not in self.created

    def known_not_null(self, key: str, column: str) -> bool:
        col = (key, _key(column))
        if col in self.not_null:
            return self.not_null[col]
        return self.old_not_null.get(col, False)

    # -- statements ----------------------------------------------------------------------
    def run(self, statements: list[Statement]) -> None:
        for st in statements:
            self.statement = st
            try:
                kind = self.statement_kind(st.text)
            except Exception as exc:  # a review must never fail on its input
                kind = self.unparsed(f"(internal analyser error: {type(exc).__name__})")
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
        if self.dialect == "tsql" and not ROUTINE_HEADER.match(text):
            pieces = _tsql_pieces(text)
            if pieces is not None and pieces != [text]:
                if not pieces:
                    return "other"
                return _merge_kinds([self.one_statement(p) for p in pieces])
        return self.one_statement(text)

    def one_statement(self, text: str) -> str:
        self.order += 1
        if self.dialect == "mysql" and "/*" in text:
            # /*!40101 … */ is executed by MySQL: it is SQL, not a comment.
            text = _MYSQL_EXECUTABLE_COMMENT.sub(r" \1 ", text).strip()
        if m := _INCLUDE.get(self.dialect, _NEVER).match(text):
            return self.unparsed(
                f"({' '.join(text.split())[:80]}): runs another script file, which this review "
                "cannot see."
            )
        if (self.dialect == "tsql" and _TSQL_CONTROL.match(text)) or _HARMLESS_COMMANDS.match(text):
            return "other"
        if self.dialect == "postgres" and _OWNER_TO.match(text):
            self.find("privilege-change", name=" ".join(text.split())[:80])
            return "ddl"
        header = ROUTINE_HEADER.match(text)
        if self.dialect == "postgres" and (header or re.match(r"DO\b", text, re.IGNORECASE)):
            m = _DOLLAR_TAG.search(text)
            if m and text.find(m.group(0), m.end()) < 0:
                return self.unparsed(f"(the {m.group(0)} body is never closed)")
        if header:
            kind = _ROUTINE_KINDS[re.sub(r"\s+", " ", header.group(1).upper())]
            if kind != "type" or self.dialect == "oracle":
                name = _NAME_AFTER.match(text, header.end())
                self.routine(kind, name.group(1) if name else "?")
                return "routine"
        if self.dialect == "oracle" and re.match(r"(?:DECLARE|BEGIN)\b", text, re.IGNORECASE):
            self.routine("block", text.split(None, 1)[0].upper())
            return "routine"
        if self.dialect == "postgres" and re.match(r"DO\b", text, re.IGNORECASE):
            self.routine("block", "DO")
            return "routine"
        if _SECURITY.match(text):
            return self.security(text)
        if m := _DATA_LOAD.get(self.dialect, _NEVER).match(text):
            return self.data_load(_unquote(m.group(1)))
        if self.dialect in ("oracle", "mysql", "postgres") and (m := _PROCEDURE_CALL.match(text)):
            return self.unparsed(f"{m.group(1)}: the effect of a procedure call is not known.")
        trees = self.parse(text)
        if trees is None:
            return "unparsed"
        if not trees:
            return "other"
        return _merge_kinds([self.tree(t, text) for t in trees])

    def parse(self, text: str) -> list[exp.Expression] | None:
        """sqlglot's trees of one statement; None (and an unparsed finding) if it fails."""
        try:
            trees = [t for t in sqlglot.parse(text, read=self.dialect) if t is not None]
            error = None
        except SqlglotError as exc:
            trees, error = [], _first_error(exc)
        except Exception as exc:  # sqlglot may fail in other ways on junk
            trees, error = [], f"({type(exc).__name__})"
        physical = _PHYSICAL.get(self.dialect)
        if physical and (error or any(isinstance(t, exp.Command) for t in trees)):
            normalised = physical.sub(" ", text)
            if normalised != text:
                try:
                    retry = [
                        t for t in sqlglot.parse(normalised, read=self.dialect) if t is not None
                    ]
                except Exception:
                    retry = None
                if retry and not any(isinstance(t, exp.Command) for t in retry):
                    return retry
        if error:
            self.unparsed(error)
            return None
        return trees

    def routine(self, kind: str, name: str) -> None:
        self.ddl += 1
        self.find("routine-change", kind=kind, name=name)
        if kind != "block":
            self.touch(kind, name, "create_or_replace")
            self.note_created(kind, _key(name))

    def security(self, text: str) -> str:
        if self.dialect == "oracle" and (m := _DROP_USER.match(text)):
            # An Oracle user is a schema: dropping it drops every object it owns.
            name = _unquote(m.group(1))
            self.ddl += 1
            self.find("drop-schema", name=name)
            self.touch("schema", name, "drop")
            if m.group(2):
                self.find("drop-cascade", name=name)
            return "ddl"
        self.find("privilege-change", name=" ".join(text.split())[:80])
        return "ddl"

    def tree(self, node: exp.Expression, text: str) -> str:
        if isinstance(node, exp.Create):
            return self.create(node)
        if isinstance(node, exp.Alter):
            return self.alter(node)
        if isinstance(node, exp.Drop):
            return self.drop(node)
        if isinstance(node, exp.TruncateTable):
            self.ddl += 1
            cascade = str(node.args.get("option") or "").upper() == "CASCADE"
            for t in node.expressions:
                name = _table_name(t)
                if self.existing(name) or cascade:
                    self.find("truncate", table=name)
                if cascade:
                    self.find("truncate-cascade", table=name)
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
        if isinstance(node, exp.Select) and isinstance(node.args.get("into"), exp.Into):
            return self.select_into(node)
        if isinstance(node, (exp.IfBlock, exp.WhileBlock, exp.Block)):
            inner = [n for n in node.iter_expressions() if isinstance(n, exp.Expression)]
            kinds = [self.tree(n, text) for n in inner if not isinstance(n, exp.Condition)]
            return _merge_kinds(kinds) if kinds else "other"
        if isinstance(
            node,
            (
                exp.Query,
                exp.Use,
                exp.Set,
                exp.Transaction,
                exp.Commit,
                exp.Rollback,
                exp.Declare,
                exp.Show,
                exp.Describe,
                exp.Analyze,
                exp.EndStatement,
            ),
        ):
            return "other"
        return self.unparsed("(it reads as an expression, not as a statement)")

    def create(self, node: exp.Create) -> str:
        kind = (node.args.get("kind") or "").upper()
        # A temporary table is a working area, not a change to the schema.
        if kind != "TABLE" or not _is_temporary(node, _table_name(node.this)):
            self.ddl += 1
        if kind == "TABLE":
            self.create_table(node)
        elif kind.endswith("INDEX"):
            self.create_index(node, kind)
        elif kind in _ROUTINE_KINDS and (not kind.startswith("TYPE") or self.dialect == "oracle"):
            self.routine(_ROUTINE_KINDS[kind], _table_name(node.this))
            return "routine"
        else:
            name = _table_name(node.this)
            word = kind.lower() or "object"
            self.touch(word, name, "create")
            self.note_created(word, _key(name))
        return "ddl"

    def create_table(self, node: exp.Create) -> None:
        schema = node.this
        name = _table_name(schema)
        key = _key(name)
        self.created.add(key)
        self.touch("table", name, "create")
        doc = self.table_doc(name, "created")
        if doc["action"] == "dropped":
            doc["action"] = "created"
        has_pk = False
        like = False
        columns = schema.expressions if isinstance(schema, exp.Schema) else []
        for item in columns:
            if isinstance(item, exp.ColumnDef):
                info = self.column_info(item)
                has_pk = has_pk or info["primary_key"]
                doc["columns"].append(info)
                if info["type"]:
                    self.types[(key, _key(item.name))] = info["type"]
                self.not_null[(key, _key(item.name))] = not info["nullable"]
            elif pk_cols := _primary_key_columns(item):
                has_pk = True
                for col in doc["columns"]:
                    if _key(col["name"]) in pk_cols:
                        col["primary_key"] = True
                        col["nullable"] = False
                        self.not_null[(key, _key(col["name"]))] = True
            elif isinstance(item, exp.LikeProperty):
                like = True
        props = node.args.get("properties")
        if props:
            for prop in props.expressions:
                if isinstance(prop, exp.SchemaCommentProperty):
                    doc["comment"] = prop.this.name
                elif isinstance(prop, exp.LikeProperty):
                    like = True  # CREATE TABLE … LIKE copies the keys of its model
        if has_pk:
            self.has_pk.add(key)
        elif not like and not _is_temporary(node, name):
            self.pk_pending.append((self.statement, name, key))

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
            )
            or (
                isinstance(col.args.get("kind"), exp.DataType)
                and col.args["kind"].this.name in ("SERIAL", "BIGSERIAL", "SMALLSERIAL")
            ),
            "comment": comment.this.name if comment is not None else "",
        }

    def create_index(self, node: exp.Create, kind: str) -> None:
        index = node.this
        name = index.name if isinstance(index, exp.Index) else _table_name(index)
        table = _table_name(index.args.get("table")) if isinstance(index, exp.Index) else ""
        self.touch("index", name, "create")
        self.note_created("index", _key(name))
        if table:
            self.touch("table", table, "alter")
            cols = [self.sql(c) for c in index.find_all(exp.Ordered)] or []
            self.table_doc(table, "altered" if self.existing(table) else "created")[
                "indexes"
            ].append({"name": name, "unique": bool(node.args.get("unique")), "columns": cols})
        existing = table and self.existing(table)
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
        existing = self.existing(table)
        self.touch("table", table, "alter")
        doc = self.table_doc(table, "altered" if existing else "created")
        for option in node.args.get("options") or []:
            if isinstance(option, exp.SchemaCommentProperty):
                doc["comment"] = option.this.name
        kinds = []
        for action in node.args.get("actions") or []:
            defs = action.expressions if isinstance(action, exp.Schema) else [action]
            for item in defs:
                kinds.append(self.alter_action(node, table, key, existing, doc, item))
        return "unparsed" if "unparsed" in kinds else "ddl"

    def alter_action(self, node, table, key, existing, doc, action) -> str:
        if isinstance(action, exp.ColumnDef):
            info = self.column_info(action)
            doc["changes"].append({"change": "add", **info})
            self.touch("column", f"{table}.{action.name}", "add")
            if info["type"]:
                self.types[(key, _key(action.name))] = info["type"]
            self.not_null[(key, _key(action.name))] = not info["nullable"]
            if existing and not info["nullable"] and not info["default"] and not info["identity"]:
                self.find("not-null-without-default", table=table, column=action.name)
        elif isinstance(action, exp.Drop):
            self.alter_drop(table, doc, action)
        elif isinstance(action, exp.AlterColumn):
            self.alter_column(table, key, existing, doc, action)
        elif isinstance(action, exp.ModifyColumn):
            coldef = action.this
            column = coldef.name
            old_name = action.args.get("rename_from")
            source = old_name.name if old_name is not None else column
            if old_name is not None and _key(old_name.name) != _key(column):
                self.rename_column(table, old_name.name, column)
                doc["changes"].append({"change": "rename", "name": old_name.name, "to": column})
            info = self.column_info(coldef)
            doc["changes"].append({"change": "modify", **info})
            self.touch("column", f"{table}.{column}", "alter")
            was_not_null = self.known_not_null(key, source)
            if coldef.args.get("kind") is not None:
                self.type_change(
                    table, key, source, coldef.args.get("kind"), report_same=False, new_name=column
                )
            # MODIFY restates the whole column: NOT NULL is new only if it was nullable.
            if existing and not info["nullable"] and not was_not_null:
                self.find("set-not-null", table=table, column=column)
            self.not_null[(key, _key(column))] = not info["nullable"]
        elif isinstance(action, exp.RenameColumn):
            old, new = action.this.name, action.args["to"].name
            self.rename_column(table, old, new)
            doc["changes"].append({"change": "rename", "name": old, "to": new})
        elif isinstance(action, exp.AlterRename):
            new = _table_name(action.this)
            self.rename_table(table, new)
            doc["changes"].append({"change": "rename_table", "to": new})
        elif isinstance(action, exp.AddConstraint):
            for constraint in action.expressions:
                self.add_constraint(node, table, existing, doc, constraint)
        elif isinstance(action, exp.DropPrimaryKey):
            self.drop_constraint(table, doc, "PRIMARY KEY")
        elif isinstance(action, exp.RenameIndex):
            self.touch("index", action.this.name if action.this else "?", "rename")
        elif isinstance(action, exp.Command):
            return self.alter_command(table, doc, action)
        elif not isinstance(action, exp.AlterSet):
            return self.unparsed(f"(ALTER TABLE … {self.sql(action)[:80]})")
        return "ddl"

    def alter_column(self, table, key, existing, doc, action: exp.AlterColumn) -> None:
        column = action.name
        self.touch("column", f"{table}.{column}", "alter")
        dtype = action.args.get("dtype")
        allow_null = action.args.get("allow_null")
        was_not_null = self.known_not_null(key, column)
        if dtype is not None:
            doc["changes"].append({"change": "type", "name": column, "type": self.sql(dtype)})
            self.type_change(table, key, column, dtype, report_same=False)
        if action.args.get("default") is not None:
            doc["changes"].append(
                {"change": "default", "name": column, "default": self.sql(action.args["default"])}
            )
        if allow_null is False:
            doc["changes"].append({"change": "not_null", "name": column})
            if existing and not was_not_null:
                self.find("set-not-null", table=table, column=column)
            self.not_null[(key, _key(column))] = True
        elif allow_null or (dtype is not None and self.dialect == "tsql"):
            # SQL Server: ALTER COLUMN without NOT NULL leaves the column nullable.
            self.not_null[(key, _key(column))] = False

    def alter_command(self, table, doc, action: exp.Command) -> str:
        """ALTER TABLE actions sqlglot keeps as raw text."""
        text = f"{action.this} {self.sql(action.expression)}".strip()
        if m := _ORACLE_DROP_COLUMNS.match(text):
            for name in (c.strip() for c in m.group(1).split(",")):
                if name:
                    self.drop_column(table, doc, name.strip('"'))
            if m.group(2):
                self.find("drop-cascade", name=table)
            return "ddl"
        if m := _DROP_PRIMARY_KEY.match(text):
            self.drop_constraint(table, doc, "PRIMARY KEY")
            if m.group(1):
                self.find("drop-cascade", name=f"{table}.PRIMARY KEY")
            return "ddl"
        return self.unparsed(f"(ALTER TABLE {table} {text[:80]} …)")

    # A table the script created itself is empty and nothing uses it yet: dropping, renaming
    # or retyping its parts loses no data and breaks no program.
    def rename_table(self, old: str, new: str) -> None:
        self.touch("table", old, "rename")
        if self.existing(old):
            self.find("rename-table", table=old, new=new)
        else:
            self.created.add(_key(new))

    def rename_column(self, table: str, old: str, new: str) -> None:
        self.touch("column", f"{table}.{old}", "rename")
        if self.existing(table):
            self.find("rename-column", table=table, column=old, new=new)
        key = _key(table)
        for facts in (self.types, self.not_null):
            if (key, _key(old)) in facts:
                facts[(key, _key(new))] = facts[(key, _key(old))]

    def drop_column(self, table, doc, name) -> None:
        if self.existing(table):
            self.find("drop-column", table=table, column=name)
        doc["changes"].append({"change": "drop", "name": name})
        self.touch("column", f"{table}.{name}", "drop")

    def drop_constraint(self, table, doc, name, word="constraint") -> None:
        doc["changes"].append({"change": f"drop_{word}", "name": name})
        self.touch(word, name, "drop")
        if self.existing(table):
            finding = self.find("drop-object", kind=word, name=f"{table}.{name}")
            self.drops.append((finding, word, _key(name), self.order))

    def alter_drop(self, table, doc, action: exp.Drop) -> None:
        kind = (action.args.get("kind") or "").upper()
        for target in action.expressions or action.args.get("tables") or []:
            name = target.name if isinstance(target, exp.Expression) else str(target)
            if kind == "COLUMN":
                self.drop_column(table, doc, name)
            else:
                self.drop_constraint(
                    table, doc, name, "index" if "INDEX" in kind or kind == "KEY" else "constraint"
                )
            if action.args.get("cascade") and self.dialect != "mysql" and self.existing(table):
                self.find("drop-cascade", name=f"{table}.{name}")

    def add_constraint(self, node, table, existing, doc, constraint) -> None:
        inner = constraint.expressions if isinstance(constraint, exp.Constraint) else [constraint]
        name = constraint.name if isinstance(constraint, exp.Constraint) else ""
        if isinstance(constraint, exp.Constraint):
            self.note_created("constraint", _key(name))
        if _primary_key_columns(constraint):
            self.has_pk.add(_key(table))
        for item in inner:
            if isinstance(item, exp.ClusteredColumnConstraint):
                continue  # the column list of PRIMARY KEY CLUSTERED (…)
            label = name
            if not label and isinstance(item.this, exp.Schema):
                label = item.this.this.name if item.this.this else ""
            if not label and isinstance(item.this, exp.Identifier):
                label = item.this.name
            label = label or self.sql(item)[:60]
            doc["changes"].append(
                {"change": "constraint", "name": label, "definition": self.sql(item)}
            )
            if isinstance(item, exp.IndexColumnConstraint):
                self.touch("index", label, "create")
                self.note_created("index", _key(label))
            if not existing:
                continue
            if isinstance(
                item, (exp.UniqueColumnConstraint, exp.PrimaryKey, exp.PrimaryKeyColumnConstraint)
            ):
                self.find("unique-on-existing", table=table, name=label)
                if self.dialect == "postgres":  # the index behind it is built with writes blocked
                    self.find("index-not-concurrent", table=table, name=label)
            elif (
                isinstance(item, (exp.ForeignKey, exp.CheckColumnConstraint))
                and self.dialect == "postgres"
                and not node.args.get("not_valid")
            ):
                self.find("constraint-validates", table=table, name=label)

    def type_change(self, table, key, column, dtype, report_same=True, new_name=None) -> None:
        """A column's type is set: narrowing, a plain change, or (restated) no change."""
        col = (key, _key(column))
        old_sql = self.types.get(col) or self.old_types.get(col)
        new_sql = self.sql(dtype)
        if not self.existing(table):
            pass  # an empty table the script just created
        elif old_sql is not None and old_sql.upper() == new_sql.upper():
            if report_same:
                self.find("type-change", table=table, column=column, new=new_sql)
        elif old_sql is not None and is_narrowing(
            _build_type(old_sql, self.dialect), dtype, self.dialect
        ):
            self.find("type-narrowing", table=table, column=column, old=old_sql, new=new_sql)
        else:
            self.find("type-change", table=table, column=column, new=new_sql)
        self.types[(key, _key(new_name or column))] = new_sql

    def drop(self, node: exp.Drop) -> str:
        kind = (node.args.get("kind") or "").upper()
        targets = node.args.get("tables") or node.expressions or []
        temporary = node.args.get("temporary")
        if kind != "TABLE" or not all(
            temporary or _is_temporary(t, _table_name(t)) for t in targets
        ):
            self.ddl += 1
        for target in targets:
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
                if self.existing(name) and not (temporary or _is_temporary(target, name)):
                    self.find("drop-table", table=name)
                elif not self.existing(name):
                    self.scratch += 2  # created and dropped again: no change to the schema
                self.created.discard(_key(name))
            else:
                word = kind.lower().replace("materialized ", "") or "object"
                word = word if word in _KIND_WORDS else "object"
                finding = self.find("drop-object", kind=word, name=name)
                self.touch(word, name, "drop")
                self.drops.append((finding, word, _key(name), self.order))
            if node.args.get("cascade") and self.dialect != "mysql":  # MySQL ignores CASCADE
                self.find("drop-cascade", name=name)
        return "ddl"

    def data_change(self, node) -> str:
        word = type(node).__name__.upper()
        target = _dml_target(node)
        name = _table_name(target) if target is not None else "?"
        self.touch("table", name, "data")
        self.data_changes.append((self.statement, word, name))
        if (
            isinstance(node, (exp.Update, exp.Delete))
            and not _restricted(node)
            and self.existing(name)
        ):
            self.find("dml-without-where", kind=word, table=name)
        return "dml"

    def data_load(self, table: str) -> str:
        """COPY … FROM (PostgreSQL) or LOAD DATA INFILE (MySQL): rows loaded in bulk."""
        self.touch("table", table, "data")
        self.data_changes.append((self.statement, "LOAD", table))
        return "dml"

    def select_into(self, node: exp.Select) -> str:
        """SELECT … INTO new_table (SQL Server, PostgreSQL): creates a table from a query."""
        target = node.args["into"].this
        name = _table_name(target)
        self.created.add(_key(name))
        if _is_temporary(node.args["into"], name):
            return "dml"  # filling a #temp table is working data, not a schema change
        self.ddl += 1
        self.touch("table", name, "create")
        self.table_doc(name, "created")
        self.pk_pending.append((self.statement, name, _key(name)))
        return "ddl"

    def set_comment(self, table: str, column: str | None, text: str) -> None:
        doc = self.table_doc(table, "altered" if self.existing(table) else "created")
        if not column:
            doc["comment"] = text
            return
        for col in doc["columns"]:
            if _key(col["name"]) == _key(column):
                col["comment"] = text
                return
        doc["changes"].append({"change": "comment", "name": column, "comment": text})

    def comment(self, node: exp.Comment) -> None:
        kind = (node.args.get("kind") or "").upper()
        text = node.expression.name if node.expression is not None else ""
        target = node.this
        if kind == "COLUMN" and isinstance(target, exp.Column):
            table = ".".join(p for p in (target.args.get("db") and target.db, target.table) if p)
            self.set_comment(table or "", target.name, text)
        elif kind == "TABLE":
            self.set_comment(_table_name(target), None, text)

    def execute(self, node: exp.Execute, text: str) -> str:
        if node.this is None or isinstance(node.this, exp.Subquery):
            return self.unparsed("EXEC (…): dynamic SQL is not checked.")
        proc = _table_name(node.this).lower()
        positional, named = _exec_args(node)
        if proc.endswith("sp_rename"):
            args = [
                named.get("objname", positional[0] if positional else ""),
                named.get("newname", positional[1] if len(positional) > 1 else ""),
                named.get("objtype", positional[2] if len(positional) > 2 else ""),
            ]
            if args[0] and args[1]:
                return self.sp_rename(*args)
        if proc.endswith(("sp_addextendedproperty", "sp_updateextendedproperty")):
            names = ["name", "value", "level0type", "level0name", "level1type", "level1name"]
            names += ["level2type", "level2name"]
            padded = positional + [""] * len(names)
            args = {k: named.get(k, padded[i]) for i, k in enumerate(names)}
            if args["level1type"].upper() in ("TABLE", "VIEW") and args["level1name"]:
                if args["name"].upper() == "MS_DESCRIPTION":
                    table = ".".join(p for p in (args["level0name"], args["level1name"]) if p)
                    column = args["level2name"] if args["level2type"].upper() == "COLUMN" else ""
                    self.set_comment(table, column, args["value"])
                return "ddl"
        if proc.endswith("sp_dropextendedproperty"):
            return "ddl"
        if isinstance(node, exp.ExecuteSql) or proc.endswith("sp_executesql"):
            return self.unparsed("EXEC sp_executesql: dynamic SQL is not checked.")
        return self.unparsed(f"EXEC {proc}: the effect of a procedure call is not known.")

    def sp_rename(self, old: str, new: str, objtype: str) -> str:
        self.ddl += 1
        if objtype.upper() == "COLUMN":
            table, _, column = old.rpartition(".")
            self.rename_column(table, column, new)
        elif objtype.upper() == "INDEX":
            self.touch("index", old, "rename")
        else:
            self.rename_table(old, new)
        return "ddl"

    def command(self, node: exp.Command, text: str) -> str:
        if m := _MYSQL_RENAME.match(text):
            self.ddl += 1
            for pair in m.group(1).split(","):
                parts = re.split(r"\s+TO\s+", pair.strip(), maxsplit=1, flags=re.IGNORECASE)
                self.rename_table(_unquote(parts[0]), _unquote(parts[1] if len(parts) > 1 else ""))
            return "ddl"
        if self.dialect == "oracle":
            if m := _ORACLE_RENAME.match(text):
                self.ddl += 1
                self.rename_table(_unquote(m.group(1)), _unquote(m.group(2)))
                return "ddl"
            if m := _ORACLE_UNUSED.match(text):
                return self.oracle_set_unused(_unquote(m.group(1)), m.group(2) or m.group(3))
            if m := _ORACLE_MODIFY.match(text):
                return self.oracle_modify(m.group(1), m.group(2))
        if m := _CREATE_SCHEMA.match(text):
            self.ddl += 1
            self.touch("schema", _unquote(m.group(1)), "create")
            return "ddl"
        if m := _DROP_CODE.match(text):
            word = _ROUTINE_KINDS[re.sub(r"\s+", " ", m.group(1).upper())]
            name = _unquote(m.group(2))
            self.ddl += 1
            finding = self.find("drop-object", kind=word, name=name)
            self.touch(word, name, "drop")
            self.drops.append((finding, word, _key(name), self.order))
            return "ddl"
        if m := _SYNONYM.match(text):
            name = _unquote(m.group(2))
            self.ddl += 1
            if m.group(1).upper() == "CREATE":
                self.touch("synonym", name, "create")
                self.note_created("synonym", _key(name))
            else:
                finding = self.find("drop-object", kind="synonym", name=name)
                self.touch("synonym", name, "drop")
                self.drops.append((finding, "synonym", _key(name), self.order))
            return "ddl"
        if self.dialect == "mysql" and _MYSQL_REPLACE.match(text):
            trees = self.parse(_MYSQL_REPLACE.sub(r"INSERT\1", text, count=1))
            if trees is None:
                return "unparsed"
            return _merge_kinds([self.tree(t, text) for t in trees]) if trees else "other"
        if self.dialect == "mysql" and (m := _MYSQL_CONVERT.match(text)):
            table = _unquote(m.group(1))
            self.ddl += 1
            self.touch("table", table, "alter")
            self.find("type-change", table=table, column="*", new=f"CHARACTER SET {m.group(2)}")
            return "ddl"
        if self.dialect == "tsql":
            if _TSQL_WITH_CHECK.match(text):
                try:
                    tree = sqlglot.parse_one(_TSQL_WITH_CHECK.sub(r"\1", text), read="tsql")
                except SqlglotError:
                    tree = None
                if isinstance(tree, exp.Alter):
                    return self.alter(tree)
            if m := _TSQL_DEFAULT_FOR.match(text):
                table = _unquote(m.group(1))
                self.ddl += 1
                self.touch("table", table, "alter")
                doc = self.table_doc(table, "altered" if self.existing(table) else "created")
                column = _unquote(m.group(4))
                doc["changes"].append(
                    {"change": "default", "name": column, "default": m.group(3).strip()}
                )
                return "ddl"
        if self.dialect == "postgres" and (m := _PG_USING_INDEX.match(text)):
            # The recommended way: CREATE UNIQUE INDEX CONCURRENTLY first, then attach it.
            table = _unquote(m.group(1))
            self.ddl += 1
            self.touch("table", table, "alter")
            if m.group(3).upper().startswith("PRIMARY"):
                self.has_pk.add(_key(table))
            doc = self.table_doc(table, "altered" if self.existing(table) else "created")
            doc["changes"].append(
                {"change": "constraint", "name": _unquote(m.group(2)), "definition": m.group(0)}
            )
            return "ddl"
        if self.dialect == "postgres" and (m := _PG_ALTER_TYPE.match(text)):
            self.ddl += 1
            self.touch("type", _unquote(m.group(1)), "alter")
            return "ddl"
        if _HARMLESS_COMMANDS.match(text):
            return "other"
        words = text.split(None, 2)
        return self.unparsed(f"({' '.join(words[:2])} …)")

    def oracle_set_unused(self, table: str, columns: str) -> str:
        """ALTER TABLE t SET UNUSED …: the columns are gone for good, as if dropped."""
        self.ddl += 1
        doc = self.table_doc(table, "altered")
        self.touch("table", table, "alter")
        for name in (c.strip().strip('"') for c in columns.split(",")):
            if name:
                self.drop_column(table, doc, name)
        return "ddl"

    def oracle_modify(self, table: str, body: str) -> str:
        """ALTER TABLE t MODIFY (col type [NOT NULL], …): parsed as column definitions."""
        inner = body.strip()
        if inner.startswith("(") and inner.endswith(")"):
            inner = inner[1:-1]
        inner = _ORACLE_PHYSICAL.sub(" ", inner)
        try:
            tree = sqlglot.parse_one(f"CREATE TABLE x__ ({inner})", read="oracle")
        except SqlglotError as exc:
            return self.unparsed(_first_error(exc))
        if not isinstance(tree, exp.Create) or not isinstance(tree.this, exp.Schema):
            return self.unparsed("(ALTER TABLE … MODIFY …)")
        table = _unquote(table)
        self.ddl += 1
        key = _key(table)
        existing = self.existing(table)
        doc = self.table_doc(table, "altered" if existing else "created")
        self.touch("table", table, "alter")
        for col in tree.this.expressions:
            if not isinstance(col, exp.ColumnDef):
                continue
            info = self.column_info(col)
            doc["changes"].append({"change": "modify", **info})
            self.touch("column", f"{table}.{col.name}", "alter")
            was_not_null = self.known_not_null(key, col.name)
            if col.args.get("kind") is not None:
                self.type_change(table, key, col.name, col.args["kind"], report_same=False)
            if not info["nullable"]:
                if existing and not was_not_null:
                    self.find("set-not-null", table=table, column=col.name)
                self.not_null[(key, _key(col.name))] = True
            elif any(
                isinstance(c.args.get("kind"), exp.NotNullColumnConstraint)
                for c in col.args.get("constraints") or []
            ):
                self.not_null[(key, _key(col.name))] = False  # MODIFY (col NULL)
        return "ddl"

    # -- after the last statement ---------------------------------------------------------
    def finish(self, rollback_statements: int) -> None:
        for st, name, key in self.pk_pending:
            # A work table the script drops again needs no key.
            if key not in self.has_pk and key in self.created:
                self.statement = st
                self.find("no-primary-key", table=name)
        # DROP PROCEDURE p … CREATE PROCEDURE p: a replacement, reviewed as routine-change.
        replaced = [
            finding
            for finding, kind, key, order in self.drops
            if kind in _RECREATABLE and self.created_last.get((kind, key), -1) > order
        ]
        if replaced:
            gone = {id(f) for f in replaced}
            self.analysis.findings = [f for f in self.analysis.findings if id(f) not in gone]
        if self.ddl > self.scratch:
            for st, word, table in self.data_changes:
                self.statement = st
                self.find("data-change-mixed", kind=word, table=table)
        self.statement = None
        destructive = sorted({f["rule"] for f in self.analysis.findings if f["destructive"]})
        if destructive and not rollback_statements:  # a rollback of comments only is none
            self.find("no-rollback", name=", ".join(destructive))
        self.analysis.findings.sort(key=lambda f: (f["part"] != "change", f["statement"] or 0))


def _build_type(sql: str, dialect: str) -> exp.DataType | None:
    """A column type back from the SQL text we generated for it (None if it does not parse)."""
    try:
        return exp.DataType.build(sql, dialect=dialect)
    except Exception:  # an unknown type is simply not compared
        return None


def _merge_kinds(kinds: list[str]) -> str:
    for k in ("unparsed", "routine", "ddl", "dml"):
        if k in kinds:
            return k
    return kinds[0] if kinds else "other"


def _primary_key_columns(item) -> set[str]:
    """The columns of a table-level PRIMARY KEY (plain, named, or T-SQL CLUSTERED)."""
    if isinstance(item, exp.PrimaryKey):
        return {_key(c.name) for c in item.find_all(exp.Identifier, exp.Column)} or {"?"}
    if isinstance(item, exp.Constraint) and any(
        isinstance(e, (exp.PrimaryKey, exp.PrimaryKeyColumnConstraint)) for e in item.expressions
    ):
        cols = set()
        for e in item.expressions:
            cols |= {_key(c.name) for c in e.find_all(exp.Identifier, exp.Column)}
        return cols or {"?"}
    return set()


def _dml_target(node) -> exp.Expression | None:
    """The table an INSERT/UPDATE/DELETE/MERGE writes, aliases resolved (UPDATE p … FROM t p)."""
    target = node.this
    if isinstance(target, exp.Schema):
        target = target.this
    if isinstance(node, (exp.Update, exp.Delete)):
        alias = node.args.get("tables") or []
        name = (
            alias[0].name
            if alias
            else target.name
            if isinstance(target, exp.Table) and not target.args.get("db")
            else ""
        )
        candidates = []
        if isinstance(node.args.get("from_"), exp.From):
            candidates.append(node.args["from_"].this)
        if isinstance(target, exp.Table):
            candidates.append(target)
        for table in list(candidates):
            candidates += [j.this for j in table.args.get("joins") or []]
        for table in candidates:
            if isinstance(table, exp.Table) and name and table.alias.lower() == name.lower():
                return table
    return target


def _restricted(node) -> bool:
    """Whether an UPDATE or DELETE is limited to some rows: WHERE, or an inner join."""
    if node.args.get("where") is not None:
        return True
    sources = [node.this]
    if isinstance(node.args.get("from_"), exp.From):
        sources.append(node.args["from_"].this)
    sources += [u for u in node.args.get("using") or []] if isinstance(node, exp.Delete) else []
    for source in sources:
        if not isinstance(source, exp.Expression):
            continue
        for join in source.args.get("joins") or []:
            side = (join.args.get("side") or "").upper()
            if (join.args.get("on") is not None or join.args.get("using")) and not side:
                return True
    return False


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if errors:
        e = errors[0]
        return f"{e.get('description', '')} (line {e.get('line')}, column {e.get('col')})"
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def _rollback_facts(rollback_sql: str, dialect: str) -> tuple[_Review, list[dict], int]:
    """Old column definitions as the rollback restores them, and its unparsed findings."""
    review = _Review(dialect, None)
    review.part = "rollback"
    statements = split_statements(rollback_sql, dialect)
    review.run(statements)
    unparsed = [f for f in review.analysis.findings if f["rule"] == "unparsed"]
    return review, unparsed, len(statements)


def analyse(
    change_sql: str, rollback_sql: str, dialect: str, overrides: dict | None = None
) -> Analysis:
    """Findings, affected objects and the structure document of a change script.

    Raises ValueError for an unknown dialect; bad SQL never raises, it becomes a finding.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"Unknown dialect '{dialect}'; expected one of {', '.join(DIALECTS)}.")
    rollback, rollback_findings, rollback_count = _rollback_facts(rollback_sql or "", dialect)
    review = _Review(dialect, overrides)
    review.old_types = rollback.types
    review.old_not_null = rollback.not_null
    statements = split_statements(change_sql or "", dialect)
    if not statements:
        review.find("empty-script")
    review.run(statements)
    review.finish(rollback_count)
    for f in rollback_findings:
        f["severity"] = severity_of(f["rule"], overrides)
    review.analysis.findings.extend(rollback_findings)
    review.analysis.rollback_statements = rollback_count
    return review.analysis
