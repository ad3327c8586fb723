"""Splitting a script into statements the way each database's own client does.

sqlglot parses one statement at a time well, but batch separators belong to the client tools,
not to SQL: ``GO`` lines (SQL Server), ``/`` lines ending PL/SQL blocks (Oracle SQL*Plus) and
``DELIMITER`` (mysql client). We split first, quote- and comment-aware, so a ``;`` inside a
string, a comment, a dollar-quoted body or a procedure body never cuts a statement in two.

The scanner jumps with one regular expression from one character that matters (a newline, a
quote, a comment opener, the delimiter) to the next, and counts lines incrementally: a script
of a few megabytes splits in linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

DIALECTS = ("mysql", "postgres", "oracle", "tsql")

_GO = re.compile(r"[ \t]*GO(?:[ \t]+\d+)?[ \t]*(?:--[^\n]*)?(?=\r?\n|$)", re.IGNORECASE)
_SLASH = re.compile(r"[ \t]*/[ \t]*(?=\r?\n|$)")
_DELIMITER = re.compile(r"[ \t]*DELIMITER[ \t]+(\S+)[ \t]*(?=\r?\n|$)", re.IGNORECASE)
# SQL*Plus client commands: not SQL, never sent to the server, so not statements.
_SQLPLUS = re.compile(
    r"[ \t]*(?:PROMPT|SPOOL|WHENEVER|REM|REMARK|QUIT|EXIT|DEFINE|UNDEFINE|UNDEF|DEF|ACCEPT|"
    r"CONNECT|CONN|DISCONNECT|DISC|PAUSE|CLEAR|HOST|TTITLE|BTITLE|COLUMN|COL|VARIABLE|VAR|"
    r"SHOW|SHO|SET[ \t]+(?:DEFINE|DEF|ECHO|SERVEROUTPUT|SERVEROUT|FEEDBACK|FEED|TIMING|"
    r"TIMI|VERIFY|VER|HEADING|HEA|PAGESIZE|PAGES|LINESIZE|LINES|SQLBLANKLINES|SQLBL|TERMOUT|"
    r"TERM|TRIMSPOOL|TRIMS|TRIMOUT|LONG|ESCAPE|SCAN|AUTOCOMMIT|TAB|WRAP|COLSEP|NUMWIDTH|"
    r"ARRAYSIZE|CONCAT|NULL|SQLPROMPT|TIME))"
    r"(?![\w$#])[^\n]*(?=\r?\n|$)",
    re.IGNORECASE,
)
# psql meta-commands and sqlcmd commands: client commands as well.
_PSQL = re.compile(r"[ \t]*\\(?!ir?\b|include)[^\n]*(?=\r?\n|$)", re.IGNORECASE)
_SQLCMD = re.compile(
    r"[ \t]*:(?:setvar|on[ \t]+error|connect|out|error|exit|quit|reset|listvar)\b[^\n]*(?=\r?\n|$)",
    re.IGNORECASE,
)
# Client commands that run another script file: one statement of their own, up to the line end.
_INCLUDE = {
    "oracle": re.compile(r"[ \t]*(?:@@?|START[ \t])[^\n]*(?=\r?\n|$)", re.IGNORECASE),
    "postgres": re.compile(r"[ \t]*\\(?:ir?|include(?:_relative)?)\b[^\n]*(?=\r?\n|$)", re.I),
    "mysql": re.compile(r"[ \t]*(?:SOURCE[ \t]|\\\.[ \t])[^\n]*(?=\r?\n|$)", re.IGNORECASE),
    "tsql": re.compile(r"[ \t]*:r[ \t][^\n]*(?=\r?\n|$)", re.IGNORECASE),
}
# Statements whose body holds semicolons: they end only at the block terminator of the client.
ROUTINE_HEADER = re.compile(
    r"(?:CREATE|ALTER)\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?(?:DEFINER\s*=\s*\S+\s+)?"
    r"(?:(?:NON)?EDITIONABLE\s+)?(?:MATERIALIZED\s+)?"
    r"(PROCEDURE|PROC|FUNCTION|TRIGGER|PACKAGE\s+BODY|PACKAGE|TYPE\s+BODY|TYPE|VIEW|EVENT)\b",
    re.IGNORECASE,
)
_PLSQL_BLOCK = re.compile(r"(?:DECLARE|BEGIN)\b", re.IGNORECASE)
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_MYSQL_EXECUTABLE = re.compile(r"/\*M?!")
_COPY_STDIN = re.compile(r"COPY\b[^;]*\bFROM\s+STDIN\b", re.IGNORECASE)
_COPY_END = re.compile(r"^\\\.[ \t]*$", re.MULTILINE)
_LEADING = re.compile(r"[\s\ufeff]*")
# T-SQL: BEGIN … END (and CASE … END) nest; a ';' inside them does not end the statement.
_NOT_A_BLOCK = re.compile(
    r"\s+(?:TRAN|TRANSACTION|DISTRIBUTED|DIALOG|CONVERSATION)(?![\w@#$])", re.IGNORECASE
)
_Q_CLOSE = {"[": "]", "{": "}", "(": ")", "<": ">"}


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its 1-based number, text and first and last line."""

    number: int
    text: str
    line: int
    end_line: int


def _block_statement(dialect: str, sql: str, i: int) -> bool:
    """Whether a statement starting at sql[i] runs to its client's block terminator."""
    if dialect == "oracle":
        # CREATE PROCEDURE … runs to '/'; ALTER PACKAGE p COMPILE; is an ordinary statement.
        match = ROUTINE_HEADER.match(sql, i)
        if match and match.group(1).upper() != "VIEW":
            return sql[i : i + 6].upper() == "CREATE"
        return bool(_PLSQL_BLOCK.match(sql, i))
    if dialect == "tsql":
        return bool(ROUTINE_HEADER.match(sql, i))
    return False


@lru_cache(maxsize=64)
def _scanner(dialect: str, delimiter: str) -> re.Pattern:
    """The characters that matter inside a statement of this dialect, as one pattern."""
    parts = [r"\n", r"--", r"/\*"]
    if dialect == "mysql":
        parts += ["#", "`"]
    if dialect == "postgres":
        parts += [r"(?<![\w$])[eE]'", r"(?<![\w$])\$"]
    if dialect == "oracle":
        parts += [r"(?<![\w$#])[nN]?[qQ]'"]
    if dialect == "tsql":
        parts += [r"\[", r"(?<![\w@#$])(?:BEGIN|CASE|END)(?![\w@#$])"]
    parts += ["['\"]", re.escape(delimiter)]
    return re.compile("|".join(parts), re.IGNORECASE)


def split_statements(sql: str, dialect: str) -> list[Statement]:
    """The statements of a script, in order; raises ValueError for an unknown dialect."""
    if dialect not in DIALECTS:
        raise ValueError(f"Unknown dialect '{dialect}'; expected one of {', '.join(DIALECTS)}.")
    out: list[Statement] = []
    n = len(sql)
    i = 0
    start: int | None = None
    block = False  # runs to the client's block terminator (GO, '/')
    depth = 0  # T-SQL BEGIN/CASE … END nesting
    delimiter = ";"
    scan = _scanner(dialect, delimiter)
    line_pos, line_no = 0, 1  # sql[:line_pos] holds line_no - 1 newlines

    def emit(end: int) -> None:
        nonlocal start, block, depth, line_pos, line_no
        if start is not None:
            text = sql[start:end].rstrip()
            if text:
                line_no += sql.count("\n", line_pos, start)
                line_pos = start
                out.append(Statement(len(out) + 1, text, line_no, line_no + text.count("\n")))
        start = None
        block = False
        depth = 0

    def client_command(ls: int):
        """A batch separator or client command on the line starting at ls, if any."""
        if dialect == "tsql":
            return _GO.match(sql, ls) or (start is None and _SQLCMD.match(sql, ls))
        if dialect == "oracle":
            return _SLASH.match(sql, ls) or (start is None and _SQLPLUS.match(sql, ls))
        if dialect == "mysql":
            return _DELIMITER.match(sql, ls)
        return start is None and _PSQL.match(sql, ls)

    while i < n:
        if start is None:
            # Between statements: whitespace, comments and client commands.
            j = _LEADING.match(sql, i).end()
            if j >= n:
                break
            nl = sql.rfind("\n", i, j)
            ls = nl + 1 if nl >= 0 else (i if i == 0 or sql[i - 1] == "\n" else -1)
            if ls >= 0 and (m := _INCLUDE[dialect].match(sql, ls)):
                start = j
                emit(m.end())  # @script.sql, \i script.sql, SOURCE, :r — a statement of its own
                i = m.end()
                continue
            if ls >= 0 and (m := client_command(ls)):
                if dialect == "mysql" and m.re is _DELIMITER:
                    delimiter = m.group(1)
                    scan = _scanner(dialect, delimiter)
                i = max(m.end(), ls + 1)
                continue
            if sql.startswith("--", j) or (dialect == "mysql" and sql[j] == "#"):
                k = sql.find("\n", j)
                i = n if k < 0 else k
                continue
            if sql.startswith("/*", j) and not (
                dialect == "mysql" and _MYSQL_EXECUTABLE.match(sql, j)
            ):
                k = sql.find("*/", j + 2)
                i = n if k < 0 else k + 2
                continue
            # A statement starts here; the scanner reads it from its first character on.
            start = i = j
            block = _block_statement(dialect, sql, j)
            continue
        m = scan.search(sql, i)
        if m is None:
            break
        k = m.start()
        tok = m.group()
        c = tok[0]
        if c == "\n":
            ls = k + 1
            if cmd := client_command(ls):
                emit(k)
                if dialect == "mysql" and cmd.re is _DELIMITER:
                    delimiter = cmd.group(1)
                    scan = _scanner(dialect, delimiter)
                i = cmd.end()
            else:
                i = ls
            continue
        if tok == "--" or tok == "#":
            j = sql.find("\n", k)
            i = n if j < 0 else j
            continue
        if tok == "/*":
            if dialect == "mysql" and _MYSQL_EXECUTABLE.match(sql, k):
                i = k + 2  # /*!40101 … */: executed by MySQL, part of the statement
                continue
            j = sql.find("*/", k + 2)
            i = n if j < 0 else j + 2
            continue
        if tok == delimiter and not (block or depth):
            if dialect == "postgres" and _COPY_STDIN.match(sql, start):
                # COPY … FROM stdin: the data lines up to '\.' belong to the statement.
                end = _COPY_END.search(sql, k)
                k = n if end is None else end.end()
                emit(k)
                i = k
                continue
            emit(k)
            i = k + len(delimiter)
            continue
        if c in "'\"`[$" or tok[-1] == "'":
            i = _skip_quoted(sql, k, dialect, tok)
            continue
        if dialect == "tsql" and c.isalpha():
            word = tok.upper()
            if not block:
                if word == "END":
                    depth = max(0, depth - 1)
                elif word == "CASE" or not _NOT_A_BLOCK.match(sql, m.end()):
                    depth += 1
            i = m.end()
            continue
        i = k + len(tok) if tok else k + 1
    emit(n)
    return out


def _skip_quoted(sql: str, i: int, dialect: str, opener: str | None = None) -> int:
    """The index just past the quoted string, identifier or dollar-quoted body opening at i."""
    ch = sql[i]
    n = len(sql)
    opener = opener or ch
    if ch == "$":
        m = _DOLLAR.match(sql, i)
        if not m:
            return i + 1
        end = sql.find(m.group(0), m.end())
        return n if end < 0 else end + len(m.group(0))
    if len(opener) > 1 and opener[-2] in "qQ":  # Oracle q'[…]' alternative quoting
        q = i + len(opener)
        if q >= n:
            return n
        close = _Q_CLOSE.get(sql[q], sql[q]) + "'"
        end = sql.find(close, q + 1)
        return n if end < 0 else end + 2
    backslash = dialect == "mysql" or (dialect == "postgres" and ch in "eE")
    if ch in "eE":  # PostgreSQL E'…' string with backslash escapes
        i += 1
        ch = "'"
    if ch == "[":
        if dialect != "tsql":
            return i + 1
        close = "]"
    elif ch == "`":
        if dialect != "mysql":
            return i + 1
        close = "`"
    else:
        close = ch
    j = i + 1
    while j < n:
        # Jump to the next closing quote (or backslash, where it escapes).
        k = sql.find(close, j)
        if backslash and close != "`":
            b = sql.find("\\", j, n if k < 0 else k)
            if b >= 0:
                j = b + 2
                continue
        if k < 0:
            return n
        if k + 1 < n and sql[k + 1] == close:  # doubled quote: an escaped quote
            j = k + 2
            continue
        return k + 1
    return n
