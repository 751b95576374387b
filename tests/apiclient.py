"""The REST API under test: the real app (FastAPI + the dev issuer's tokens) on the session's moto
server, driven through FastAPI's TestClient. `api.as_(tenant)` gives the headers of a user of that
tenant; every resource test can thus play two tenants against each other."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tradeflow.api.app import AppSettings, create_app
from tradeflow.api.dev_issuer import DevIssuer

TENANT_A, TENANT_B = "acme", "globex"


@dataclass
class Api:
    client: TestClient
    issuer: DevIssuer

    def as_(self, tenant: str = TENANT_A, user: str = "user-1", roles: Iterable[str] = ()) -> dict[str, str]:
        """Authorization headers of `user` of `tenant`."""
        return {"Authorization": f"Bearer {self.issuer.issue(tenant, user, roles=tuple(roles))}"}

    def get(self, path: str, tenant: str = TENANT_A, **kwargs: Any) -> Any:
        return self.client.get(path, headers={**self.as_(tenant), **kwargs.pop("headers", {})}, **kwargs)

    def post(self, path: str, tenant: str = TENANT_A, **kwargs: Any) -> Any:
        return self.client.post(path, headers={**self.as_(tenant), **kwargs.pop("headers", {})}, **kwargs)


_ISSUERS: dict[Path, DevIssuer] = {}


def make_api(tmp_dir: Path, rate_per_minute: int = 0, routers: tuple[str, ...] | None = None) -> Api:
    issuer = _ISSUERS.setdefault(tmp_dir, DevIssuer(tmp_dir / "dev-issuer.pem"))
    settings = AppSettings(auth=issuer.settings(), rate_per_minute=rate_per_minute)
    if routers is not None:
        settings.routers = routers
    return Api(TestClient(create_app(settings), raise_server_exceptions=False), issuer)


@pytest.fixture
def api(aws: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The app on a clean local AWS, rate limit off (tests of the limit build their own)."""
    yield make_api(tmp_path_factory.getbasetemp() / "api-keys")
