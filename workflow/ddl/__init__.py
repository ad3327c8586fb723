"""Static review of database change scripts (D1): splitting, rules, analysis."""

from workflow.ddl.analysis import Analysis, analyse, is_narrowing
from workflow.ddl.rules import RULES, SEVERITIES, SEVERITY_RANK
from workflow.ddl.split import DIALECTS, Statement, split_statements

__all__ = [
    "DIALECTS",
    "RULES",
    "SEVERITIES",
    "SEVERITY_RANK",
    "Analysis",
    "Statement",
    "analyse",
    "is_narrowing",
    "split_statements",
]
