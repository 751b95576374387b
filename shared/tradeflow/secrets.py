"""The secrets port: broker credentials in AWS Secrets Manager, and nowhere else (design rule 5).

A secret is named `tradeflow-<stage>/<tenant>/<account>`: the stage keeps deployments apart, the tenant
comes right after it so IAM can be scoped to a stage (`tradeflow-<stage>/*`) and a reader can never
build another tenant's name from an id of its own. Values are JSON objects, written and read whole.

Secret values never reach a log line: this module logs names and error codes only, and it installs a
filter on botocore's wire loggers (`botocore.endpoint` logs request bodies and `botocore.parsers`
response bodies at DEBUG) that blanks any record carrying a `SecretString`, so even a DEBUG run of the
SDK cannot leak one.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Protocol

from tradeflow.catalogue import PREFIX, SECRETS, stage
from tradeflow.runtime.aws import client

# Secrets Manager allows [A-Za-z0-9/_+=.@-] in names; ids outside this set are refused, never mangled
_PART = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_RECOVERY_DAYS = SECRETS["broker_credentials"].recovery_days
REDACTED = "[redacted: a Secrets Manager payload]"
_WIRE_LOGGERS = ("botocore.endpoint", "botocore.parsers", "botocore.httpsession", "botocore.awsrequest")

log = logging.getLogger(__name__)


class SecretNotFound(LookupError):
    """No secret of that name (or it is scheduled for deletion)."""


class SecretStoreError(RuntimeError):
    """Secrets Manager refused or failed; the message holds the secret's name and the error code only."""


class SecretStore(Protocol):
    def put(self, name: str, value: dict[str, Any], *, description: str = "") -> None: ...
    def get(self, name: str) -> dict[str, Any]: ...
    def schedule_deletion(self, name: str, recovery_days: int = DEFAULT_RECOVERY_DAYS) -> None: ...


def secret_name(tenant_id: str, account_id: str, stage_name: str | None = None) -> str:
    """`tradeflow-<stage>/<tenant>/<account>`; ValueError for an id a secret name cannot hold."""
    for label, part in (("tenant id", tenant_id), ("account id", account_id)):
        if not _PART.match(part):
            raise ValueError(f"{label} {part!r} cannot name a secret: use letters, digits, '_', '.' or '-'")
    return f"{PREFIX}-{stage_name or stage()}/{tenant_id}/{account_id}"


def secret_prefix(stage_name: str | None = None) -> str:
    """What every secret of a stage starts with (for IAM: `arn:...:secret:tradeflow-<stage>/*`)."""
    return SECRETS["broker_credentials"].prefix(stage_name)


class _RedactSecretPayloads(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot even be formatted is not worth the risk
            text = "SecretString"
        if "SecretString" in text:
            record.msg, record.args = REDACTED, ()
        return True


_FILTER = _RedactSecretPayloads()


def guard_sdk_logs() -> None:
    """Blank SDK debug records that carry a secret payload (idempotent)."""
    for name in _WIRE_LOGGERS:
        wire = logging.getLogger(name)
        if _FILTER not in wire.filters:
            wire.addFilter(_FILTER)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


class SecretsManagerStore:
    """The Secrets Manager adapter (moto's in the local cloud and tests)."""

    def __init__(self) -> None:
        guard_sdk_logs()

    @property
    def _sm(self) -> Any:
        return client("secretsmanager")

    def put(self, name: str, value: dict[str, Any], *, description: str = "") -> None:
        """Create the secret or store a new version of it (restoring it first when it was scheduled for
        deletion: an account re-created within the recovery window)."""
        body = json.dumps(value, separators=(",", ":"), sort_keys=True)
        sm = self._sm
        try:
            try:
                sm.create_secret(Name=name, SecretString=body, Description=description)
                return
            except (sm.exceptions.ResourceExistsException, sm.exceptions.InvalidRequestException):
                pass  # it exists, possibly scheduled for deletion (AWS says InvalidRequest, moto ResourceExists)
            if "DeletedDate" in sm.describe_secret(SecretId=name):
                sm.restore_secret(SecretId=name)
            sm.put_secret_value(SecretId=name, SecretString=body)
        except Exception as exc:
            log.warning("secret write failed", extra={"secret": name, "error": _code(exc)})
            raise SecretStoreError(f"could not store secret {name}: {_code(exc)}") from None

    def get(self, name: str) -> dict[str, Any]:
        sm = self._sm
        try:
            out = sm.get_secret_value(SecretId=name)
        except (sm.exceptions.ResourceNotFoundException, sm.exceptions.InvalidRequestException):
            raise SecretNotFound(name) from None
        except Exception as exc:
            log.warning("secret read failed", extra={"secret": name, "error": _code(exc)})
            raise SecretStoreError(f"could not read secret {name}: {_code(exc)}") from None
        try:
            value = json.loads(out["SecretString"])
        except (KeyError, ValueError):
            raise SecretStoreError(f"secret {name} does not hold a JSON object") from None
        if not isinstance(value, dict):
            raise SecretStoreError(f"secret {name} does not hold a JSON object")
        return value

    def schedule_deletion(self, name: str, recovery_days: int = DEFAULT_RECOVERY_DAYS) -> None:
        """Schedule the secret's deletion after the recovery window; a missing secret is fine."""
        sm = self._sm
        try:
            sm.delete_secret(SecretId=name, RecoveryWindowInDays=recovery_days)
        except sm.exceptions.ResourceNotFoundException:
            return
        except sm.exceptions.InvalidRequestException:
            return  # already scheduled for deletion
        except Exception as exc:
            log.warning("secret deletion failed", extra={"secret": name, "error": _code(exc)})
            raise SecretStoreError(f"could not schedule deletion of secret {name}: {_code(exc)}") from None
