"""The local dev token issuer: what Cognito is in AWS, for a laptop with no AWS account.

An RSA key is created on first use and kept at `~/.tradeflow/dev-issuer.pem` (mode 0600; the
`TRADEFLOW_DEV_KEY_FILE` environment variable moves it), so tokens stay valid across restarts of the local
cloud. Tokens are RS256 with issuer `tradeflow-local`, audience `tradeflow-api`, a `kid` (the key's RFC 7638
thumbprint), `iat`/`nbf`/`exp`, a random `jti`, and the claims `tenant` and `roles`.

    issuer = DevIssuer()
    token = issuer.issue("demo", "alice", roles=("admin",))
    TokenVerifier(issuer.settings()).verify(token)   # -> Principal(tenant_id="demo", ...)

`jwks()` is the public key set, for the local API to serve at `/.well-known/jwks.json`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import stat
import tempfile
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import TypeAdapter, ValidationError

from tradeflow.api.auth import ALGORITHM, AuthSettings
from tradeflow.domain.types import ResourceId, TenantId

DEV_ISSUER = "tradeflow-local"
DEV_AUDIENCE = "tradeflow-api"
DEFAULT_KEY_FILE = Path("~/.tradeflow/dev-issuer.pem")
KEY_FILE_ENV = "TRADEFLOW_DEV_KEY_FILE"
KEY_BITS = 2048
MAX_TTL_SECONDS = 30 * 24 * 3600

_tenant_id: TypeAdapter[str] = TypeAdapter(TenantId)
_user_id: TypeAdapter[str] = TypeAdapter(ResourceId)


def default_key_file() -> Path:
    """`$TRADEFLOW_DEV_KEY_FILE`, else `~/.tradeflow/dev-issuer.pem`."""
    configured = os.environ.get(KEY_FILE_ENV, "").strip()
    return Path(configured or DEFAULT_KEY_FILE).expanduser()


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _thumbprint(key: rsa.RSAPublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256): the key's own id, so a new key never reuses an old kid."""
    numbers = key.public_numbers()
    canonical = json.dumps(
        {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}, separators=(",", ":")
    )
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _write_new_key(path: Path) -> None:
    """Create a key at `path` unless one is there already; never overwrite (first writer wins).

    The key is written to a 0600 temporary file in the same directory, then hard-linked to its name:
    linking fails if the name exists, so two processes starting at once end up sharing one key and no
    reader ever sees a half-written file.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd, tmp = tempfile.mkstemp(prefix=".dev-issuer-", suffix=".tmp", dir=path.parent)  # mkstemp: mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system: exclusive create instead
            with contextlib.suppress(FileExistsError):
                out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(out, "wb") as handle:
                    handle.write(pem)
    finally:
        os.unlink(tmp)


class DevIssuer:
    """Issues dev tokens with a key kept in a file (created on first use, reused afterwards)."""

    def __init__(self, key_file: str | Path | None = None) -> None:
        self.key_file = Path(key_file).expanduser() if key_file is not None else default_key_file()
        self._lock = threading.Lock()
        self._key: rsa.RSAPrivateKey | None = None
        self._kid = ""

    def _private_key(self) -> rsa.RSAPrivateKey:
        with self._lock:
            if self._key is None:
                if not self.key_file.exists():
                    _write_new_key(self.key_file)
                mode = stat.S_IMODE(self.key_file.stat().st_mode)
                if mode & 0o077:  # readable by others: anyone on the machine could mint tokens
                    os.chmod(self.key_file, 0o600)
                key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
                if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < KEY_BITS:
                    raise ValueError(f"{self.key_file}: not an RSA private key of at least {KEY_BITS} bits")
                self._key = key
                self._kid = _thumbprint(key.public_key())
            return self._key

    @property
    def kid(self) -> str:
        self._private_key()
        return self._kid

    def public_key_pem(self) -> str:
        return (
            self._private_key()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    def issue(
        self,
        tenant: str,
        user: str,
        roles: Iterable[str] = (),
        ttl_seconds: int = 3600,
        *,
        now: datetime | None = None,
    ) -> str:
        """A signed token for `user` of `tenant`. Ids must have the platform's formats (ValueError if not)."""
        try:
            tenant_id = _tenant_id.validate_python(tenant, strict=True)
        except ValidationError:
            raise ValueError(f"tenant {tenant!r} is not a tenant id (1-64 characters: A-Z a-z 0-9 _ -)") from None
        try:
            user_id = _user_id.validate_python(user, strict=True)
        except ValidationError:
            raise ValueError(f"user {user!r} is not a user id (1-64 characters: A-Z a-z 0-9 _ . : -)") from None
        if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"ttl_seconds must be between 1 and {MAX_TTL_SECONDS}, got {ttl_seconds}")
        role_names = sorted(set(roles))
        if not all(isinstance(role, str) and role.strip() == role and role for role in role_names):
            raise ValueError("roles must be non-empty names without surrounding spaces")
        issued = (now or datetime.now(UTC)).astimezone(UTC)
        claims: dict[str, Any] = {
            "iss": DEV_ISSUER,
            "aud": DEV_AUDIENCE,
            "sub": user_id,
            "tenant": tenant_id,
            "roles": role_names,
            "iat": int(issued.timestamp()),
            "nbf": int(issued.timestamp()),
            "exp": int((issued + timedelta(seconds=ttl_seconds)).timestamp()),
            "jti": secrets.token_hex(16),
        }
        key = self._private_key()
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": self._kid, "typ": "JWT"})

    def settings(self, **overrides: Any) -> AuthSettings:
        """AuthSettings that accept this issuer's tokens (static public key, no JWKS fetch)."""
        values: dict[str, Any] = {
            "issuer": DEV_ISSUER,
            "audience": (DEV_AUDIENCE,),
            "public_keys": {self.kid: self.public_key_pem()},
        }
        return AuthSettings(**{**values, **overrides})

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public JWK Set (what a JWKS endpoint serves)."""
        numbers = self._private_key().public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "alg": ALGORITHM,
                    "kid": self._kid,
                    "n": _b64url_uint(numbers.n),
                    "e": _b64url_uint(numbers.e),
                }
            ]
        }
