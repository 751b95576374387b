"""Bearer-token authentication: verify an RS256 JWT and turn it into a `Principal`.

Framework-free on purpose: the FastAPI app wraps `TokenVerifier.verify` in a dependency and maps
`AuthError` to 401 (`KeysUnavailableError`, a subclass, to 503: the token may be fine, we just cannot
fetch the keys to tell).

Two key sources, one verifier:
- **AWS**: a Cognito user pool. Keys come from its JWKS
  (`https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json`) through PyJWT's
  `PyJWKClient`, cached (`jwks_cache_seconds`) and fetched with a timeout (`jwks_timeout_seconds`).
- **Locally**: the dev issuer (`tradeflow.api.dev_issuer`), whose public key is given as a PEM.

What is checked, in order (each failure is an `AuthError` with a specific `code`; reasons never
contain the token or any claim value taken from it):
1. shape: a non-empty compact JWS (three segments), not absurdly long;
2. header, *before* any verification: `alg` must be RS256 (so `alg: none` and the HS256-with-the-public-
   key confusion are refused up front), `kid` must name a known key;
3. signature with `algorithms=["RS256"]` passed explicitly, then `exp`/`nbf`/`iat` (with leeway) and `iss`;
4. audience: the `aud` claim (Cognito ID tokens, the dev issuer), or — for Cognito access tokens, which
   carry no `aud` — `client_id` when `token_use == "access"`;
5. claims → `Principal`: the tenant (first present of `tenant_claims`) and the user (`sub`) must have the
   platform's id formats (`TenantId`, `ResourceId`); roles from the first present of `roles_claims`.

Claim mapping (Cognito facts from the AWS docs "Understanding the access token" / "Verifying a JWT" and
Amazon Verified Permissions' "Client and audience validation for Amazon Cognito"): ID tokens have `aud` =
app client id and carry custom attributes such as `custom:tenant_id`; access tokens have `client_id`
instead of `aud`, `token_use: "access"` and `cognito:groups`, but custom attributes only when a pre token
generation trigger (event V2_0/V3_0, Essentials or Plus plan) adds them — hence the tenant claim list
`tenant`, then `custom:tenant_id`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlparse

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from tradeflow.domain.types import ResourceId, TenantId, UtcDatetime

ALGORITHM: Final = "RS256"
ADMIN_ROLE = "admin"
MAX_TOKEN_LENGTH = 16 * 1024  # Cognito tokens are 1-2 KB; anything this large is not one of ours
MIN_RSA_BITS = 2048
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_KNOWN_ALGORITHMS = frozenset(jwt.algorithms.get_default_algorithms()) | {"none"}

_tenant_id: TypeAdapter[str] = TypeAdapter(TenantId)
_user_id: TypeAdapter[str] = TypeAdapter(ResourceId)


class AuthError(Exception):
    """The request is not authenticated. `code` is stable (for tests and metrics); `reason` is for
    humans and safe to return in a 401 body: it never contains the token or a value read from it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.reason!r})"


class KeysUnavailableError(AuthError):
    """The signing keys could not be fetched (JWKS endpoint down or slow): a 503, not the caller's fault."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _as_tuple(value: object) -> object:
    return _split(value) if isinstance(value, str) else value


class AuthSettings(BaseModel):
    """How tokens are verified. Exactly one key source: `jwks_url` (Cognito) or `public_keys` (dev issuer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(min_length=1, description="expected `iss`, compared exactly")
    audience: Annotated[tuple[str, ...], BeforeValidator(_as_tuple)] = Field(
        min_length=1, description="accepted `aud` values (or `client_id` of access tokens): the app client ids"
    )
    jwks_url: str | None = Field(default=None, description="JWKS endpoint; https, or http on loopback only")
    public_keys: dict[str, str] = Field(default_factory=dict, description="kid -> RSA public key (PEM)")
    algorithms: tuple[Literal["RS256"]] = (ALGORITHM,)
    leeway_seconds: int = Field(default=30, ge=0, le=300, description="clock skew allowed on exp/nbf/iat")
    tenant_claims: tuple[str, ...] = Field(default=("tenant", "custom:tenant_id"), min_length=1)
    roles_claims: tuple[str, ...] = Field(default=("cognito:groups", "roles"), min_length=1)
    jwks_timeout_seconds: float = Field(default=5.0, gt=0, le=30)
    jwks_cache_seconds: int = Field(default=300, gt=0)

    @model_validator(mode="after")
    def _one_key_source(self) -> AuthSettings:
        if (self.jwks_url is None) == (not self.public_keys):
            raise ValueError("give exactly one key source: jwks_url or public_keys")
        if self.jwks_url is not None:
            url = urlparse(self.jwks_url)
            if not (url.scheme == "https" or (url.scheme == "http" and url.hostname in _LOOPBACK_HOSTS)):
                raise ValueError("jwks_url must be https (plain http only on 127.0.0.1/localhost)")
        return self

    @classmethod
    def cognito(cls, region: str, user_pool_id: str, client_ids: str | tuple[str, ...]) -> AuthSettings:
        """Settings for a Cognito user pool: its issuer URL, its JWKS, its app client id(s) as audience."""
        issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
        return cls(
            issuer=issuer,
            audience=_split(client_ids) if isinstance(client_ids, str) else client_ids,
            jwks_url=f"{issuer}/.well-known/jwks.json",
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        """Read the settings from the environment.

        - `TRADEFLOW_AUTH_JWKS_URL`: the JWKS endpoint of the token issuer (in AWS, the Cognito user pool's
          `https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json`). When set,
          `TRADEFLOW_AUTH_ISSUER` and `TRADEFLOW_AUTH_AUDIENCE` are required too.
        - `TRADEFLOW_AUTH_ISSUER`: the expected `iss` (Cognito: `https://cognito-idp.{region}.amazonaws.com/{pool}`).
        - `TRADEFLOW_AUTH_AUDIENCE`: the accepted audience(s), comma-separated (Cognito: the app client ids).
        - `TRADEFLOW_DEV_KEY_FILE`: when no JWKS URL is set, tokens of the local dev issuer are accepted; this
          is its private key file (default `~/.tradeflow/dev-issuer.pem`, created on first use).

        The dev issuer is refused inside Lambda (`AWS_LAMBDA_FUNCTION_NAME` set): a deployed API without a
        JWKS URL is a configuration error, never a silent fallback to a local key.
        """
        env = os.environ if environ is None else environ
        jwks_url = env.get("TRADEFLOW_AUTH_JWKS_URL", "").strip()
        issuer = env.get("TRADEFLOW_AUTH_ISSUER", "").strip()
        audience = env.get("TRADEFLOW_AUTH_AUDIENCE", "").strip()
        if jwks_url:
            missing = [name for name, value in (("ISSUER", issuer), ("AUDIENCE", audience)) if not value]
            if missing:
                raise ValueError(
                    "TRADEFLOW_AUTH_JWKS_URL is set but "
                    + " and ".join(f"TRADEFLOW_AUTH_{name}" for name in missing)
                    + " is not"
                )
            return cls(issuer=issuer, audience=_split(audience), jwks_url=jwks_url)
        if issuer or audience:
            raise ValueError("TRADEFLOW_AUTH_ISSUER/AUDIENCE are set without TRADEFLOW_AUTH_JWKS_URL")
        if env.get("AWS_LAMBDA_FUNCTION_NAME"):
            raise ValueError("TRADEFLOW_AUTH_JWKS_URL must be set in Lambda (the dev issuer is local only)")
        from tradeflow.api.dev_issuer import DevIssuer

        key_file = env.get("TRADEFLOW_DEV_KEY_FILE", "").strip()
        return DevIssuer(key_file or None).settings()


class Principal(BaseModel):
    """Who is calling: the authenticated user of one tenant."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: TenantId
    user_id: ResourceId
    roles: frozenset[str] = frozenset()
    token_id: str | None = None
    expires_at: UtcDatetime

    @property
    def is_admin(self) -> bool:
        return ADMIN_ROLE in self.roles


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive)."""
    if not authorization or not authorization.strip():
        raise AuthError("missing_token", "missing bearer token (Authorization: Bearer <token>)")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("malformed_token", "Authorization header must be 'Bearer <token>'")
    return token.strip()


def _load_public_key(kid: str, pem: str) -> RSAPublicKey:
    try:
        key = load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ValueError(f"public key {kid!r}: not a PEM public key") from exc
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"public key {kid!r}: not an RSA key (RS256 needs RSA)")
    if key.key_size < MIN_RSA_BITS:
        raise ValueError(f"public key {kid!r}: {key.key_size} bits, at least {MIN_RSA_BITS} required")
    return key


class TokenVerifier:
    """Verifies bearer tokens against one `AuthSettings`. Thread-safe; build one per process and reuse it
    (the JWKS cache lives in it)."""

    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._static_keys = {kid: _load_public_key(kid, pem) for kid, pem in settings.public_keys.items()}
        self._jwks: jwt.PyJWKClient | None = None
        if settings.jwks_url is not None:
            self._jwks = jwt.PyJWKClient(
                settings.jwks_url,
                cache_jwk_set=True,
                lifespan=settings.jwks_cache_seconds,
                timeout=settings.jwks_timeout_seconds,
            )

    def verify(self, token: str) -> Principal:
        header = self._check_header(token)
        key = self._signing_key(header["kid"])
        claims = self._decode(token, key)
        self._check_audience(claims)
        return self._principal(claims)

    # -- steps -------------------------------------------------------------------------------------

    def _check_header(self, token: object) -> dict[str, Any]:
        if not isinstance(token, str) or not token.strip():
            raise AuthError("missing_token", "missing bearer token")
        if len(token) > MAX_TOKEN_LENGTH:
            raise AuthError("malformed_token", f"token longer than {MAX_TOKEN_LENGTH} characters")
        if token.count(".") != 2:
            raise AuthError("malformed_token", "token is not a JWT (expected three dot-separated parts)")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed_token", "token header is not valid base64url JSON") from None
        alg = header.get("alg")
        if alg != ALGORITHM:
            if isinstance(alg, str) and alg.lower() == "none":
                raise AuthError("algorithm_not_allowed", "unsigned token (alg none) refused; RS256 required")
            named = f" {alg}" if alg in _KNOWN_ALGORITHMS else ""
            raise AuthError("algorithm_not_allowed", f"token algorithm{named} not accepted; RS256 required")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("unknown_key", "token header has no key id (kid)")
        return header

    def _signing_key(self, kid: str) -> RSAPublicKey:
        if self._jwks is None:
            key = self._static_keys.get(kid)
            if key is None:
                raise AuthError("unknown_key", "token signed with an unknown key (kid not recognised)")
            return key
        try:
            jwk = self._jwks.get_signing_key(kid)
        except jwt.PyJWKClientConnectionError:
            raise KeysUnavailableError("keys_unavailable", "signing keys could not be fetched; retry later") from None
        except jwt.PyJWKClientError:
            # PyJWKClient refetches the set once for an unknown kid (rate limited by its cooldown).
            raise AuthError("unknown_key", "token signed with an unknown key (kid not recognised)") from None
        except (jwt.PyJWTError, ValueError):  # ValueError: the endpoint answered with something not JSON
            raise KeysUnavailableError("keys_unavailable", "the JWKS endpoint returned unusable keys") from None
        if not isinstance(jwk.key, RSAPublicKey):
            raise AuthError("unknown_key", "the key named by kid is not an RSA key")
        return jwk.key

    def _decode(self, token: str, key: RSAPublicKey) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.settings.issuer,
                leeway=self.settings.leeway_seconds,
                options={
                    "require": ["exp", "iss", "sub"],
                    "verify_aud": False,  # checked below: Cognito access tokens carry client_id instead
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("token_expired", "token expired") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("token_not_yet_valid", "token not yet valid (nbf/iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise AuthError("wrong_issuer", "token issued by an untrusted issuer") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError("missing_claim", f"token lacks the required {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad_signature", "token signature does not verify") from None
        except jwt.InvalidKeyError:
            raise AuthError("unknown_key", "signing key rejected (too weak or wrong type)") from None
        except jwt.PyJWTError:
            raise AuthError("malformed_token", "token could not be decoded") from None
        return claims

    def _check_audience(self, claims: Mapping[str, Any]) -> None:
        accepted = self.settings.audience
        token_use = claims.get("token_use")
        if token_use is not None and token_use not in ("id", "access"):
            raise AuthError("wrong_token_use", "token_use must be 'id' or 'access'")
        aud = claims.get("aud")
        if aud is not None:
            values = [aud] if isinstance(aud, str) else aud
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise AuthError("wrong_audience", "aud claim is malformed")
            if not any(v in accepted for v in values):
                raise AuthError("wrong_audience", "token is meant for another audience")
            return
        if token_use == "access":
            if claims.get("client_id") not in accepted:
                raise AuthError("wrong_audience", "access token issued to another app client (client_id)")
            return
        raise AuthError("wrong_audience", "token has no audience (aud, or client_id of an access token)")

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        settings = self.settings
        tenant_claim = next((name for name in settings.tenant_claims if claims.get(name) is not None), None)
        if tenant_claim is None:
            raise AuthError("missing_tenant", f"token carries no tenant claim ({', '.join(settings.tenant_claims)})")
        try:
            tenant_id = _tenant_id.validate_python(claims[tenant_claim], strict=True)
        except ValidationError:
            raise AuthError("invalid_tenant", f"{tenant_claim} claim is not a valid tenant id") from None
        try:
            user_id = _user_id.validate_python(claims["sub"], strict=True)
        except ValidationError:
            raise AuthError("invalid_user", "sub claim is not a valid user id") from None
        try:
            expires_at = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (OverflowError, OSError, ValueError):
            raise AuthError("malformed_token", "exp claim is out of range") from None
        token_id = claims.get("jti")
        return Principal(
            tenant_id=tenant_id,
            user_id=user_id,
            roles=self._roles(claims),
            token_id=token_id if isinstance(token_id, str) else None,
            expires_at=expires_at,
        )

    def _roles(self, claims: Mapping[str, Any]) -> frozenset[str]:
        claim = next((name for name in self.settings.roles_claims if claims.get(name) is not None), None)
        if claim is None:
            return frozenset()
        value = claims[claim]
        if isinstance(value, str):  # a space-separated string (OAuth scope style)
            value = value.split()
        if not isinstance(value, list) or not all(isinstance(role, str) and role for role in value):
            raise AuthError("invalid_roles", f"{claim} claim must be a list of role names")
        return frozenset(value)
