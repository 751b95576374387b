"""Pointing this process (boto3, Powertools) at the local cloud."""

from __future__ import annotations

import os

from tradeflow.runtime.aws import reset_clients

LOCAL_REGION = "us-east-1"


def endpoint(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def use_local_cloud(aws_endpoint: str, stage: str = "local") -> None:
    """Set the standard AWS variables so every boto3 client in this process talks to moto. Cached
    clients are kept when nothing changed (creating one costs ~0.1 s: tests call this per test)."""
    unchanged = os.environ.get("AWS_ENDPOINT_URL") == aws_endpoint and os.environ.get("TRADEFLOW_STAGE") == stage
    os.environ.update(
        {
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "TRADEFLOW_STAGE": stage,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": "tradeflow",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    if not unchanged:
        reset_clients()
