"""Fixtures of the REST API tests (see tests/apiclient.py)."""

from apiclient import api  # noqa: F401  (a fixture)
