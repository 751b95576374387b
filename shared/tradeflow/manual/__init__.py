"""Manual orders: a trader's order placed through the API, decided by the same risk gate and executed
by the same execution function as strategy orders (design rules 4 and 8)."""
