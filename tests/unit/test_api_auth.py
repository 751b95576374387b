"""Bearer-token verification: real RSA keys, real signatures, and the classic attacks refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tradeflow.api.auth import AuthError, AuthSettings, KeysUnavailableError, Principal, TokenVerifier, bearer_token
from tradeflow.api.dev_issuer import DEV_AUDIENCE, DEV_ISSUER, DevIssuer
from tradeflow.cli import main

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Example"
CLIENT_ID = "3n4b5urk1ft4fl3mg5e62d9ado"
KID = "key-1"


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return _private_key()


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return _private_key()


@pytest.fixture(scope="module")
def settings(signing_key: rsa.RSAPrivateKey) -> AuthSettings:
    return AuthSettings(issuer=ISSUER, audience=(CLIENT_ID,), public_keys={KID: _public_pem(signing_key)})


@pytest.fixture(scope="module")
def verifier(settings: AuthSettings) -> TokenVerifier:
    return TokenVerifier(settings)


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "sub": "9f3c1e52-7a41-4f0e-b1d2-0c8a1b2c3d4e",
        "token_use": "id",
        "custom:tenant_id": "acme",
        "iat": now,
        "exp": now + 600,
        "jti": "b6c1d0e2-1111-2222-3333-444455556666",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key: rsa.RSAPrivateKey, payload: dict[str, Any], kid: str | None = KID) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, key, algorithm="RS256", headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(
    header: dict[str, Any], payload: dict[str, Any], signature: bytes | None = None, secret: bytes = b""
) -> str:
    """A compact JWS built by hand, for what PyJWT refuses to produce (alg none, HS256 with a PEM key)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    if signature is None:
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{_b64(signature)}"


def refused(verifier: TokenVerifier, token: str, code: str) -> AuthError:
    with pytest.raises(AuthError) as raised:
        verifier.verify(token)
    assert raised.value.code == code, raised.value.reason
    assert not any(part in raised.value.reason for part in token.split(".") if part)  # never echoes the token
    return raised.value


# -- the happy paths -------------------------------------------------------------------------------


def test_valid_id_token_gives_a_principal(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    payload = claims()
    principal = verifier.verify(sign(signing_key, payload))
    assert principal == Principal(
        tenant_id="acme",
        user_id=payload["sub"],
        roles=frozenset(),
        token_id=payload["jti"],
        expires_at=principal.expires_at,
    )
    assert int(principal.expires_at.timestamp()) == payload["exp"]
    assert principal.expires_at.tzinfo is not None
    assert not principal.is_admin
    with pytest.raises(ValueError):  # frozen
        principal.tenant_id = "other"  # type: ignore[misc]


def test_roles_come_from_cognito_groups(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    token = sign(signing_key, claims(**{"cognito:groups": ["admin", "traders"], "roles": ["ignored"]}))
    principal = verifier.verify(token)
    assert principal.roles == frozenset({"admin", "traders"})
    assert principal.is_admin


def test_roles_fall_back_to_the_roles_claim(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    assert verifier.verify(sign(signing_key, claims(roles=["viewer"]))).roles == {"viewer"}


def test_malformed_roles_are_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    refused(verifier, sign(signing_key, claims(**{"cognito:groups": [1, 2]})), "invalid_roles")


def test_tenant_claim_takes_precedence_over_cognito_custom_attribute(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    assert verifier.verify(sign(signing_key, claims(tenant="globex"))).tenant_id == "globex"


def test_cognito_access_token_with_client_id_is_accepted(
    verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey
) -> None:
    # What Cognito emits for access tokens: no aud, client_id = the app client, token_use = access.
    token = sign(signing_key, claims(aud=None, token_use="access", client_id=CLIENT_ID, scope="openid"))
    assert verifier.verify(token).tenant_id == "acme"


def test_access_token_of_another_app_client_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    token = sign(signing_key, claims(aud=None, token_use="access", client_id="someotherclient"))
    refused(verifier, token, "wrong_audience")


def test_client_id_counts_only_for_access_tokens(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    refused(verifier, sign(signing_key, claims(aud=None, token_use="id", client_id=CLIENT_ID)), "wrong_audience")
    refused(verifier, sign(signing_key, claims(aud=None, token_use=None, client_id=CLIENT_ID)), "wrong_audience")


def test_unknown_token_use_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    refused(verifier, sign(signing_key, claims(token_use="refresh")), "wrong_token_use")


def test_leeway_tolerates_small_clock_skew(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    verifier.verify(sign(signing_key, claims(exp=now - 10, iat=now - 600)))
    verifier.verify(sign(signing_key, claims(nbf=now + 10)))


# -- refusals --------------------------------------------------------------------------------------


def test_expired_token_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    refused(verifier, sign(signing_key, claims(iat=now - 7200, exp=now - 3600)), "token_expired")


def test_token_not_yet_valid_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    now = int(time.time())
    refused(verifier, sign(signing_key, claims(nbf=now + 600, exp=now + 1200)), "token_not_yet_valid")


def test_signature_by_another_key_with_the_same_kid_is_refused(
    verifier: TokenVerifier, other_key: rsa.RSAPrivateKey
) -> None:
    refused(verifier, sign(other_key, claims()), "bad_signature")


def test_tampered_payload_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    header, _, signature = sign(signing_key, claims()).split(".")
    forged = _b64(json.dumps(claims(**{"custom:tenant_id": "victim"})).encode())
    refused(verifier, f"{header}.{forged}.{signature}", "bad_signature")


def test_unknown_kid_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    refused(verifier, sign(signing_key, claims(), kid="key-2"), "unknown_key")
    refused(verifier, sign(signing_key, claims(), kid=None), "unknown_key")


def test_alg_none_is_refused(verifier: TokenVerifier) -> None:
    token = handmade({"alg": "none", "typ": "JWT", "kid": KID}, claims(), signature=b"")
    error = refused(verifier, token, "algorithm_not_allowed")
    assert "alg none" in error.reason
    refused(verifier, handmade({"alg": "None", "kid": KID}, claims(), signature=b""), "algorithm_not_allowed")


def test_hs256_signed_with_the_public_key_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    # The key-confusion attack: the attacker knows the public key and uses its PEM as an HMAC secret.
    secret = _public_pem(signing_key).encode()
    token = handmade({"alg": "HS256", "typ": "JWT", "kid": KID}, claims(), secret=secret)
    assert "HS256" in refused(verifier, token, "algorithm_not_allowed").reason


def test_other_asymmetric_algorithms_are_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), signing_key, algorithm="RS512", headers={"kid": KID})
    refused(verifier, token, "algorithm_not_allowed")


def test_wrong_issuer_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    refused(verifier, sign(signing_key, claims(iss="https://evil.example.com")), "wrong_issuer")


def test_wrong_audience_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    refused(verifier, sign(signing_key, claims(aud="another-app")), "wrong_audience")
    refused(verifier, sign(signing_key, claims(aud=None)), "wrong_audience")


def test_audience_list_containing_ours_is_accepted(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    verifier.verify(sign(signing_key, claims(aud=["another-app", CLIENT_ID])))


def test_missing_tenant_claim_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    error = refused(verifier, sign(signing_key, claims(**{"custom:tenant_id": None})), "missing_tenant")
    assert "tenant" in error.reason and "custom:tenant_id" in error.reason


@pytest.mark.parametrize("tenant", ["acme/../other", "", "a" * 65, "acme corp", 42, ["acme"]])
def test_bad_tenant_format_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey, tenant: object) -> None:
    refused(verifier, sign(signing_key, claims(**{"custom:tenant_id": tenant})), "invalid_tenant")


def test_bad_user_id_format_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    refused(verifier, sign(signing_key, claims(sub="alice@example.com")), "invalid_user")
    refused(verifier, sign(signing_key, claims(sub=None)), "missing_claim")


def test_missing_expiry_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    assert "exp" in refused(verifier, sign(signing_key, claims(exp=None)), "missing_claim").reason


@pytest.mark.parametrize("token", ["", "   ", "not-a-jwt", "a.b", "a.b.c.d", "!!!.@@@.###", "x" * 20_000])
def test_malformed_tokens_are_refused(verifier: TokenVerifier, token: str) -> None:
    with pytest.raises(AuthError) as raised:
        verifier.verify(token)
    assert raised.value.code in {"missing_token", "malformed_token"}


def test_bearer_header_parsing() -> None:
    assert bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert bearer_token("bearer  abc.def.ghi ") == "abc.def.ghi"
    for value in (None, "", "Basic dXNlcjpwYXNz", "Bearer", "Bearer   "):
        with pytest.raises(AuthError):
            bearer_token(value)


# -- settings --------------------------------------------------------------------------------------


def test_settings_need_exactly_one_key_source(signing_key: rsa.RSAPrivateKey) -> None:
    with pytest.raises(ValueError, match="exactly one key source"):
        AuthSettings(issuer=ISSUER, audience=(CLIENT_ID,))
    with pytest.raises(ValueError, match="exactly one key source"):
        AuthSettings(
            issuer=ISSUER,
            audience=(CLIENT_ID,),
            jwks_url="https://example.com/jwks.json",
            public_keys={KID: _public_pem(signing_key)},
        )


def test_jwks_url_must_be_https_off_loopback() -> None:
    with pytest.raises(ValueError, match="https"):
        AuthSettings(issuer=ISSUER, audience=(CLIENT_ID,), jwks_url="http://example.com/jwks.json")
    AuthSettings(issuer=ISSUER, audience=(CLIENT_ID,), jwks_url="http://127.0.0.1:9/jwks.json")


def test_algorithms_are_fixed_to_rs256() -> None:
    with pytest.raises(ValueError):
        AuthSettings(
            issuer=ISSUER,
            audience=(CLIENT_ID,),
            jwks_url="https://example.com/jwks.json",
            algorithms=("HS256",),
        )


def test_weak_static_key_is_rejected_at_configuration() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    settings = AuthSettings(issuer=ISSUER, audience=(CLIENT_ID,), public_keys={KID: _public_pem(weak)})
    with pytest.raises(ValueError, match="2048"):
        TokenVerifier(settings)


def test_cognito_settings() -> None:
    settings = AuthSettings.cognito("eu-west-1", "eu-west-1_Example", "web,cli")
    assert settings.issuer == ISSUER
    assert settings.jwks_url == f"{ISSUER}/.well-known/jwks.json"
    assert settings.audience == ("web", "cli")


def test_from_env_cognito() -> None:
    env = {
        "TRADEFLOW_AUTH_JWKS_URL": f"{ISSUER}/.well-known/jwks.json",
        "TRADEFLOW_AUTH_ISSUER": ISSUER,
        "TRADEFLOW_AUTH_AUDIENCE": f"{CLIENT_ID}, second",
    }
    settings = AuthSettings.from_env(env)
    assert settings.audience == (CLIENT_ID, "second")
    assert settings.jwks_url == env["TRADEFLOW_AUTH_JWKS_URL"]
    with pytest.raises(ValueError, match="TRADEFLOW_AUTH_AUDIENCE"):
        AuthSettings.from_env({k: v for k, v in env.items() if k != "TRADEFLOW_AUTH_AUDIENCE"})
    with pytest.raises(ValueError, match="without TRADEFLOW_AUTH_JWKS_URL"):
        AuthSettings.from_env({"TRADEFLOW_AUTH_ISSUER": ISSUER})


def test_from_env_uses_the_dev_issuer_locally_but_never_in_lambda(tmp_path: Path) -> None:
    key_file = tmp_path / "dev.pem"
    settings = AuthSettings.from_env({"TRADEFLOW_DEV_KEY_FILE": str(key_file)})
    token = DevIssuer(key_file).issue("demo", "alice")
    assert TokenVerifier(settings).verify(token).tenant_id == "demo"
    with pytest.raises(ValueError, match="Lambda"):
        AuthSettings.from_env({"TRADEFLOW_DEV_KEY_FILE": str(key_file), "AWS_LAMBDA_FUNCTION_NAME": "api"})


# -- JWKS over HTTP --------------------------------------------------------------------------------


class _JwksServer:
    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.body: bytes | None = None  # when set, served instead of the key set
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                body = server.body if server.body is not None else json.dumps(server.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def jwks_server(signing_key: rsa.RSAPrivateKey) -> Iterator[_JwksServer]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(signing_key.public_key(), as_dict=True)
    server = _JwksServer({"keys": [{**jwk, "kid": KID, "use": "sig", "alg": "RS256"}]})
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def test_verification_through_a_jwks_url(jwks_server: _JwksServer, signing_key: rsa.RSAPrivateKey) -> None:
    verifier = TokenVerifier(AuthSettings(issuer=ISSUER, audience=(CLIENT_ID,), jwks_url=jwks_server.url))
    assert verifier.verify(sign(signing_key, claims())).tenant_id == "acme"
    assert verifier.verify(sign(signing_key, claims(tenant="globex"))).tenant_id == "globex"
    assert jwks_server.requests == 1  # the key set is cached
    refused(verifier, sign(signing_key, claims(), kid="rotated-away"), "unknown_key")
    refused(verifier, sign(signing_key, claims(), kid="another-one"), "unknown_key")
    assert jwks_server.requests <= 2  # unknown kids refetch at most once per cooldown


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'{"keys": []}', b"[]"])
def test_jwks_endpoint_serving_garbage_is_refused_cleanly(
    jwks_server: _JwksServer, signing_key: rsa.RSAPrivateKey, body: bytes
) -> None:
    jwks_server.body = body
    verifier = TokenVerifier(AuthSettings(issuer=ISSUER, audience=(CLIENT_ID,), jwks_url=jwks_server.url))
    with pytest.raises(AuthError):
        verifier.verify(sign(signing_key, claims()))


def test_absurd_expiry_is_refused(verifier: TokenVerifier, signing_key: rsa.RSAPrivateKey) -> None:
    refused(verifier, sign(signing_key, claims(exp=10**20)), "malformed_token")


def test_jwks_endpoint_down_is_keys_unavailable(signing_key: rsa.RSAPrivateKey) -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    httpd.server_close()  # nothing listens there any more
    settings = AuthSettings(issuer=ISSUER, audience=(CLIENT_ID,), jwks_url=url, jwks_timeout_seconds=2)
    with pytest.raises(KeysUnavailableError) as raised:
        TokenVerifier(settings).verify(sign(signing_key, claims()))
    assert raised.value.code == "keys_unavailable"


# -- the dev issuer and its CLI --------------------------------------------------------------------


def test_dev_issuer_creates_its_key_once_with_0600_and_reuses_it(tmp_path: Path) -> None:
    key_file = tmp_path / "nested" / "dev-issuer.pem"
    first = DevIssuer(key_file)
    token = first.issue("demo", "alice", roles=["admin"], ttl_seconds=120)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    pem = key_file.read_bytes()
    assert [p.name for p in key_file.parent.iterdir()] == ["dev-issuer.pem"]  # no temporary file left

    second = DevIssuer(key_file)  # a new process, same file: same key, same kid
    assert second.kid == first.kid
    assert key_file.read_bytes() == pem
    principal = TokenVerifier(second.settings()).verify(token)
    assert principal.tenant_id == "demo" and principal.user_id == "alice" and principal.is_admin
    assert principal.token_id

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == first.kid
    payload = jwt.decode(token, options={"verify_signature": False})
    assert payload["iss"] == DEV_ISSUER and payload["aud"] == DEV_AUDIENCE
    assert payload["exp"] - payload["iat"] == 120 and payload["nbf"] == payload["iat"]


def test_dev_issuer_key_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRADEFLOW_DEV_KEY_FILE", str(tmp_path / "k.pem"))
    DevIssuer().issue("demo", "alice")
    assert (tmp_path / "k.pem").exists()


def test_dev_issuer_tightens_a_key_file_readable_by_others(tmp_path: Path) -> None:
    key_file = tmp_path / "dev.pem"
    DevIssuer(key_file).issue("demo", "alice")
    key_file.chmod(0o644)
    DevIssuer(key_file).issue("demo", "alice")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_dev_issuer_jwks_verifies_its_tokens(tmp_path: Path) -> None:
    issuer = DevIssuer(tmp_path / "dev.pem")
    (jwk,) = issuer.jwks()["keys"]
    assert jwk["kid"] == issuer.kid and jwk["alg"] == "RS256" and "d" not in jwk
    public = jwt.PyJWK(jwk)
    payload = jwt.decode(issuer.issue("demo", "bob"), public, algorithms=["RS256"], audience=DEV_AUDIENCE)
    assert payload["sub"] == "bob"


def test_dev_issuer_refuses_bad_ids(tmp_path: Path) -> None:
    issuer = DevIssuer(tmp_path / "dev.pem")
    with pytest.raises(ValueError, match="tenant"):
        issuer.issue("no such/tenant", "alice")
    with pytest.raises(ValueError, match="user"):
        issuer.issue("demo", "alice smith")
    with pytest.raises(ValueError, match="ttl"):
        issuer.issue("demo", "alice", ttl_seconds=0)


def test_dev_tokens_from_another_key_are_refused(tmp_path: Path) -> None:
    mine = DevIssuer(tmp_path / "mine.pem")
    theirs = DevIssuer(tmp_path / "theirs.pem")
    with pytest.raises(AuthError) as raised:
        TokenVerifier(mine.settings()).verify(theirs.issue("demo", "mallory"))
    assert raised.value.code == "unknown_key"


def test_cli_prints_a_token_that_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "dev.pem"
    monkeypatch.setenv("TRADEFLOW_DEV_KEY_FILE", str(key_file))
    argv = ["local", "token", "--tenant", "demo", "--user", "alice", "--role", "admin", "--role", "trader"]
    assert main([*argv, "--ttl", "600"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # just the token: TOKEN=$(tradeflow local token ...)
    principal = TokenVerifier(DevIssuer(key_file).settings()).verify(out.strip())
    assert principal.tenant_id == "demo" and principal.user_id == "alice"
    assert principal.roles == {"admin", "trader"}


def test_cli_names_a_bad_tenant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TRADEFLOW_DEV_KEY_FILE", str(tmp_path / "dev.pem"))
    assert main(["local", "token", "--tenant", "a b", "--user", "alice"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "tenant" in captured.err
