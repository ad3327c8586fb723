"""Splitting a script into statements the way each database's own client does.

sqlglot parses one statement at a time well, but batch separators belong to the client tools,
not to SQL: ``GO`` lines (SQL Server), ``/`` lines ending PL/SQL blocks (Oracle SQL*Plus) and
``DELIMITER`` (mysql client). We split first, quote- and comment-aware, so a ``;`` inside a
string, a comment, a dollar-quoted body or a procedure body never cuts a statement in two.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DIALECTS = ("mysql", "postgres", "oracle", "tsql")

_GO = re.compile(r"[ \t]*GO(?:[ \t]+\d+)?[ \t]*(?:--[^\n]*)?(?=\r?\n|$)", re.IGNORECASE)
_SLASH = re.compile(r"[ \t]*/[ \t]*(?=\r?\n|$)")
_DELIMITER = re.compile(r"[ \t]*DELIMITER[ \t]+(\S+)[ \t]*(?=\r?\n|$)", re.IGNORECASE)
# SQL*Plus client commands: not SQL, never sent to the server, so not statements.
_SQLPLUS = re.compile(
    r"[ \t]*(?:PROMPT|SPOOL|WHENEVER|REM|REMARK|SET[ \t]+(?:DEFINE|ECHO|SERVEROUTPUT|FEEDBACK|"
    r"TIMING|VERIFY|HEADING|PAGESIZE|LINESIZE|SQLBLANKLINES|TERMOUT)|SHOW|EXIT|DEFINE|@@?)"
    r"\b[^\n]*(?=\r?\n|$)",
    re.IGNORECASE,
)
# Statements whose body holds semicolons: they end only at the block terminator of the client.
ROUTINE_HEADER = re.compile(
    r"(?:CREATE|ALTER)\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?(?:DEFINER\s*=\s*\S+\s+)?"
    r"(?:(?:NON)?EDITIONABLE\s+)?(?:MATERIALIZED\s+)?"
    r"(PROCEDURE|PROC|FUNCTION|TRIGGER|PACKAGE\s+BODY|PACKAGE|TYPE\s+BODY|TYPE|VIEW|EVENT)\b",
    re.IGNORECASE,
)
_PLSQL_BLOCK = re.compile(r"(?:DECLARE|BEGIN)\b", re.IGNORECASE)
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


@dataclass(frozen=True)
class Statement:
    """One statement of a script: its 1-based number, text and first and last line."""

    number: int
    text: str
    line: int
    end_line: int


def _block_statement(dialect: str, head: str) -> bool:
    """Whether a statement starting with ``head`` runs to its client's block terminator."""
    if dialect == "oracle":
        match = ROUTINE_HEADER.match(head)
        return bool(match and match.group(1).upper() != "VIEW") or bool(_PLSQL_BLOCK.match(head))
    if dialect == "tsql":
        return bool(ROUTINE_HEADER.match(head))
    return False


def split_statements(sql: str, dialect: str) -> list[Statement]:
    """The statements of a script, in order; raises ValueError for an unknown dialect."""
    if dialect not in DIALECTS:
        raise ValueError(f"Unknown dialect '{dialect}'; expected one of {', '.join(DIALECTS)}.")
    out: list[Statement] = []
    n = len(sql)
    i = 0
    start: int | None = None
    block = False
    delimiter = ";"

    def emit(end: int) -> None:
        nonlocal start, block
        if start is not None:
            text = sql[start:end].rstrip()
            if text:
                line = sql.count("\n", 0, start) + 1
                out.append(Statement(len(out) + 1, text, line, line + text.count("\n")))
        start = None
        block = False

    while i < n:
        ch = sql[i]
        if i == 0 or sql[i - 1] == "\n":
            if dialect == "tsql" and (m := _GO.match(sql, i)):
                emit(i)
                i = m.end()
                continue
            if dialect == "oracle" and (m := _SLASH.match(sql, i)):
                emit(i)
                i = m.end()
                continue
            if dialect == "oracle" and start is None and (m := _SQLPLUS.match(sql, i)):
                i = m.end()
                continue
            if dialect == "mysql" and (m := _DELIMITER.match(sql, i)):
                emit(i)
                delimiter = m.group(1)
                i = m.end()
                continue
        if ch in " \t\r\n":
            i += 1
            continue
        # Comments: skipped, and never the start of a statement.
        if sql.startswith("--", i) or (dialect == "mysql" and ch == "#"):
            j = sql.find("\n", i)
            i = n if j < 0 else j
            continue
        if sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if start is None:
            start = i
            block = _block_statement(dialect, sql[i : i + 300])
        if not block and sql.startswith(delimiter, i):
            emit(i)
            i += len(delimiter)
            continue
        if ch in "'\"`[" or (ch == "$" and dialect == "postgres"):
            i = _skip_quoted(sql, i, dialect)
            continue
        i += 1
    emit(n)
    return out


def _skip_quoted(sql: str, i: int, dialect: str) -> int:
    """The index just past the quoted string, identifier or dollar-quoted body opening at i."""
    ch = sql[i]
    n = len(sql)
    if ch == "$":
        m = _DOLLAR.match(sql, i)
        if not m:
            return i + 1
        end = sql.find(m.group(0), m.end())
        return n if end < 0 else end + len(m.group(0))
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
        c = sql[j]
        if c == "\\" and dialect == "mysql" and close != "`":
            j += 2
            continue
        if c == close:
            if j + 1 < n and sql[j + 1] == close:  # doubled quote: an escaped quote
                j += 2
                continue
            return j + 1
        j += 1
    return n
