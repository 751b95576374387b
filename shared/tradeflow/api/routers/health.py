"""`health` and `version`: public, unauthenticated, cheap (load balancers and deploy checks call them)."""

from __future__ import annotations

from importlib import metadata
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from tradeflow.catalogue import stage

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"]
    stage: str


class Version(BaseModel):
    name: str
    version: str
    api: str
    stage: str


@router.get("/health", response_model=Health, summary="liveness: the app answers")
def health() -> Health:
    return Health(status="ok", stage=stage())


@router.get("/version", response_model=Version, summary="the running package version")
def version() -> Version:
    try:
        installed = metadata.version("tradeflow")
    except metadata.PackageNotFoundError:
        installed = "unknown"
    return Version(name="tradeflow", version=installed, api="v1", stage=stage())
