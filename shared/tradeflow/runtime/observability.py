"""Powertools Logger, Tracer and Metrics for a function, configured one way for all of them.

Metrics are `EphemeralMetrics`: Powertools' default `Metrics` shares one metric set across every
instance in a process, which is harmless in Lambda (one function per process) but mixes functions'
metrics when the local cloud runs them all in one process.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics

NAMESPACE = "tradeflow"


def observability(function: str) -> tuple[Logger, Tracer, EphemeralMetrics]:
    service = f"tradeflow-{function}"
    logger = Logger(service=service)
    # Patch only what we call (AWS SDK): patching everything would import requests, sqlite3, httplib...
    tracer = Tracer(service=service, patch_modules=["botocore"])
    metrics = EphemeralMetrics(namespace=NAMESPACE, service=service)
    return logger, tracer, metrics
