"""changeflow's engine and domain rules: definitions, guards, effects, history.

Nothing in this package imports Flask or ``web``; operations here only flush,
the caller (web request or CLI command) owns the transaction.
"""
