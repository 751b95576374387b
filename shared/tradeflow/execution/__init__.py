"""Execution: idempotent submission to brokers and the books (orders, fills, positions, ledger)."""
