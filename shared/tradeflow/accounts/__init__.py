"""Accounts as the API manages them: paper account lifecycle (open, reset, delete) and broker accounts
whose credentials live in Secrets Manager (stored, rotated, read by the system — every access audited)."""
