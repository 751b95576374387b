"""Reconciliation with the broker (the scheduled `reconcile` function).

Every few minutes each account's ledger — orders, fills, positions, cash — is compared with what its
broker reports. What is provably safe is repaired through the execution function's own ledger path (a
fill we missed, an order the broker closed, an order that never reached the broker); day orders past
their session and orders past their age are cancelled; every difference is audited; and a difference
nothing explains halts the account's trading, loudly.

- `differences.py`: what can be found and the remedy of each
- `compare.py`: the pure comparison of a broker snapshot with the ledger
- `expiry.py`: when an open order has outlived its time (sessions, maximum ages)
- `policy.py`: timings, and the settings an account may tune in `broker_config`
- `opening.py`: a new broker account's opening balance
- `marks.py`: when each account was last reconciled
- `models.py`: the run's request and its per-account report
- `service.py`: the use case (`Reconciler`)
"""
