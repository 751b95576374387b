"""Shared fixtures: one moto server per test session (the same server the local cloud runs), wiped
and re-provisioned from the resource catalogue for every test that asks for `aws`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tradeflow.local.environment import use_local_cloud
from tradeflow.local.moto_server import MotoServer, free_port
from tradeflow.local.provision import provision


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer(free_port())
    server.start()
    use_local_cloud(server.endpoint)
    yield server
    server.stop()


@pytest.fixture
def aws(moto_server: MotoServer) -> Iterator[MotoServer]:
    """A clean, provisioned local AWS."""
    use_local_cloud(moto_server.endpoint)
    moto_server.reset()
    provision()
    yield moto_server
