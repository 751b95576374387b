"""`/v1/accounts`: paper accounts (create with starting cash, reset) and broker accounts (Alpaca, a ccxt
exchange) whose credentials go to Secrets Manager only; responses show a key hint (first 4…last 4),
never a secret. The lifecycle rules live in `tradeflow.accounts.service`."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tradeflow.accounts.credentials import AlpacaCredentials, CcxtCredentials
from tradeflow.accounts.service import (
    AccountConflict,
    AccountNotFound,
    AccountService,
    AccountSummary,
    CredentialsMismatch,
    CredentialsUnavailable,
    PaperOptions,
    new_account_id,
)
from tradeflow.api.context import Caller
from tradeflow.api.errors import ApiError, FieldError, field_error, not_found, problem_doc
from tradeflow.api.pagination import Cursor, Limit, Page, query_page
from tradeflow.domain import Account
from tradeflow.domain.timeframes import TIMEFRAME_SECONDS
from tradeflow.domain.types import Money, UtcDatetime

router = APIRouter(prefix="/accounts", tags=["accounts"])
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: problem_doc("the id is taken, or the account is in use (see the description)")
}

MAX_STARTING_CASH = Decimal("1000000000000")  # 1e12: bounded, so no input overflows the books
NewAccountId = Annotated[
    str | None,
    Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="letters, digits, '_', '.', '-' (1-64); generated when omitted",
    ),
]
AccountId = Annotated[str, Path(min_length=1, max_length=64)]
Name = Annotated[str, Field(default="", max_length=100)]
Currency = Annotated[str, Field(default="USD", pattern=r"^[A-Z0-9]{3,10}$", description="e.g. USD, EUR, USDT")]


# -- requests ------------------------------------------------------------------------------------


class PaperAccountCreate(BaseModel):
    """A simulated account (the built-in paper broker) with its fill model."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["paper"]
    account_id: NewAccountId = None
    name: Name = ""
    starting_cash: Decimal = Field(gt=0, le=MAX_STARTING_CASH, decimal_places=8, description="opening balance")
    currency: Currency = "USD"
    fill_model: Literal["next_open", "last_price"] = Field(
        default="next_open", description="market orders fill at the next bar's open, or at once at the last close"
    )
    slippage_bps: Decimal = Field(default=Decimal(0), ge=0, le=1000, decimal_places=4)
    fee_rate: Decimal = Field(default=Decimal(0), ge=0, le=Decimal("0.1"), decimal_places=8)
    timeframe: str = Field(default="1m", description="the bars the simulated exchange matches against")
    allow_margin: bool = False

    @field_validator("timeframe")
    @classmethod
    def _timeframe(cls, value: str) -> str:
        if value not in TIMEFRAME_SECONDS:
            raise ValueError(f"unknown timeframe; known: {', '.join(TIMEFRAME_SECONDS)}")
        return value


class AlpacaAccountCreate(AlpacaCredentials):
    """An Alpaca account (paper or live endpoint); the keys go to Secrets Manager only."""

    account_id: NewAccountId = None
    name: Name = ""
    currency: Currency = "USD"

    def credentials(self) -> AlpacaCredentials:
        return AlpacaCredentials(api_key_id=self.api_key_id, secret_key=self.secret_key, paper=self.paper)


class CcxtAccountCreate(CcxtCredentials):
    """An account on a ccxt exchange (sandbox or live); the keys go to Secrets Manager only."""

    account_id: NewAccountId = None
    name: Name = ""
    currency: Currency = "USD"

    def credentials(self) -> CcxtCredentials:
        return CcxtCredentials(
            exchange=self.exchange,
            api_key=self.api_key,
            secret=self.secret,
            password=self.password,
            sandbox=self.sandbox,
        )


AccountCreate = Annotated[PaperAccountCreate | AlpacaAccountCreate | CcxtAccountCreate, Field(discriminator="kind")]


CredentialsUpdate = Annotated[AlpacaCredentials | CcxtCredentials, Field(discriminator="kind")]

_CREATE_MODELS: dict[str, type[BaseModel]] = {
    "paper": PaperAccountCreate,
    "alpaca": AlpacaAccountCreate,
    "ccxt": CcxtAccountCreate,
}
_CREDENTIAL_MODELS: dict[str, type[BaseModel]] = {"alpaca": AlpacaCredentials, "ccxt": CcxtCredentials}


def _named_fields(models: dict[str, type[BaseModel]]) -> Any:
    """A dependency validating the body against the model its `kind` names, so every 422 names the field
    as `body.<field>` (a tagged union would name it `body.<kind>.<field>`, or just `body` for a bad kind).
    Messages never quote an input: these bodies carry secrets."""

    async def check(request: Request, _caller: Caller) -> None:  # after authentication: a 401 comes first
        try:
            body = await request.json()
        except ValueError:
            return  # FastAPI answers malformed JSON itself
        if not isinstance(body, dict):
            return
        kind = body.get("kind")
        if kind is None:
            raise field_error("body.kind", f"required: one of {', '.join(models)}")
        model = models.get(kind) if isinstance(kind, str) else None
        if model is None:
            raise field_error("body.kind", f"unknown kind; use one of {', '.join(models)}")
        try:
            model.model_validate(body)
        except ValidationError as exc:
            errors = [
                FieldError(
                    field=".".join(["body", *(str(p) for p in e["loc"])]),
                    message=str(e["msg"]).removeprefix("Value error, "),
                )
                for e in exc.errors(include_input=False, include_url=False)
            ]
            detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
            raise ApiError(422, detail, errors=errors) from None

    return check


# -- responses -----------------------------------------------------------------------------------


class PaperSettings(BaseModel):
    fill_model: str
    slippage_bps: Money
    fee_rate: Money
    timeframe: str
    allow_margin: bool


class CredentialsHint(BaseModel):
    key_hint: str = Field(description="first 4 … last 4 characters of the key id; secrets are never shown")
    exchange: str | None = None
    sandbox: bool | None = None
    paper: bool | None = None


class AccountOut(BaseModel):
    account_id: str
    name: str
    kind: Literal["paper", "alpaca", "ccxt"]
    broker: str = Field(description="paper, alpaca or ccxt:<exchange>")
    mode: Literal["paper", "live"]
    status: Literal["in_use", "idle"] = Field(description="in_use while a deployment (active or paused) trades it")
    in_use_by: list[str] = Field(description="deployments (not stopped) that trade the account")
    halted: str | None = Field(
        default=None,
        description="why the system halted this account's trading (the broker refused its credentials, or "
        "reconciliation found books that disagree with the broker); null while it trades",
    )
    currency: str
    starting_cash: Money | None = Field(description="paper accounts: the balance a reset restores")
    cash: Money
    equity: Money = Field(description="cash + positions at their last price")
    reserved: Money = Field(description="notional held back by approved orders not final yet")
    paper: PaperSettings | None = None
    credentials: CredentialsHint | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime


def _out(summary: AccountSummary) -> AccountOut:
    account = summary.account
    kind = summary.kind
    config = account.broker_config
    paper = None
    credentials = None
    if kind == "paper":
        paper = PaperSettings(
            fill_model=str(config.get("fill_model", "next_open")),
            slippage_bps=Decimal(str(config.get("slippage_bps", 0))),
            fee_rate=Decimal(str(config.get("fee_rate", 0))),
            timeframe=str(config.get("timeframe", "1m")),
            allow_margin=bool(config.get("allow_margin", False)),
        )
    else:
        credentials = CredentialsHint(
            key_hint=str(config.get("key_hint", "…")),
            exchange=config.get("exchange"),
            sandbox=config.get("sandbox"),
            paper=config.get("paper"),
        )
    return AccountOut(
        account_id=account.account_id,
        name=account.name,
        kind=kind if kind in ("paper", "alpaca", "ccxt") else "paper",
        broker=account.broker,
        mode="live" if account.mode == "live" else "paper",
        status="in_use" if summary.in_use_by else "idle",
        in_use_by=list(summary.in_use_by),
        halted=summary.halted,
        currency=account.currency,
        starting_cash=account.starting_cash if kind == "paper" else None,
        cash=account.cash,
        equity=summary.equity,
        reserved=summary.reserved,
        paper=paper,
        credentials=credentials,
        created_at=account.created_at,
        updated_at=account.updated_at,
    )


def _actor(caller: Caller) -> str:
    return f"user:{caller.user_id}"


def _now() -> datetime:
    return datetime.now(UTC)


def _conflict(exc: AccountConflict) -> ApiError:
    return ApiError(409, str(exc))


def _unavailable() -> ApiError:
    return ApiError(
        503, "the secret store is unavailable; nothing was changed, retry later", headers={"Retry-After": "5"}
    )


# -- routes --------------------------------------------------------------------------------------


@router.post(
    "",
    status_code=201,
    response_model=AccountOut,
    summary="Open a paper account or connect a broker account",
    responses=_CONFLICT,
    dependencies=[Depends(_named_fields(_CREATE_MODELS))],
)
def create_account(caller: Caller, body: Annotated[AccountCreate, Body()]) -> AccountOut:
    service = AccountService()
    account_id = body.account_id or new_account_id()
    at = _now()
    try:
        if isinstance(body, PaperAccountCreate):
            options = PaperOptions(
                fill_model=body.fill_model,
                slippage_bps=body.slippage_bps,
                fee_rate=body.fee_rate,
                timeframe=body.timeframe,
                allow_margin=body.allow_margin,
            )
            account = service.open_paper(
                caller.tenant_id,
                account_id,
                name=body.name,
                starting_cash=body.starting_cash,
                currency=body.currency,
                options=options,
                actor=_actor(caller),
                at=at,
            )
        else:
            account = service.open_broker(
                caller.tenant_id,
                account_id,
                name=body.name,
                currency=body.currency,
                credentials=body.credentials(),
                actor=_actor(caller),
                at=at,
            )
    except AccountConflict as exc:
        raise _conflict(exc) from None
    except CredentialsUnavailable:
        raise _unavailable() from None
    return _out(service.summary(account))


@router.get("", response_model=Page[AccountOut], summary="List accounts")
def list_accounts(
    caller: Caller,
    limit: Limit = 50,
    cursor: Cursor = None,
    kind: Annotated[Literal["paper", "alpaca", "ccxt"] | None, Query(description="broker kind")] = None,
    mode: Annotated[Literal["paper", "live"] | None, Query(description="paper or live")] = None,
) -> Page[AccountOut]:
    service = AccountService()
    using = service.deployments_by_account(caller.tenant_id)
    filters: list[str] = []
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    if kind == "ccxt":
        filters.append("begins_with(#broker, :broker)")
        names["#broker"], values[":broker"] = "broker", "ccxt:"
    elif kind is not None:
        filters.append("#broker = :broker")
        names["#broker"], values[":broker"] = "broker", kind
    if mode is not None:
        filters.append("#mode = :mode")
        names["#mode"], values[":mode"] = "mode", mode
    query: dict[str, Any] = {}
    if filters:
        query = {"filter_expression": " AND ".join(filters), "names": names, "values": values}

    def parse(item: dict[str, Any]) -> AccountOut:
        return _out(service.summary(Account.model_validate(item), using))

    return query_page(service.accounts.table, caller.tenant_id, parse, limit=limit, cursor=cursor, **query)


@router.get("/{account_id}", response_model=AccountOut, summary="An account: cash, equity, reserved, status")
def get_account(caller: Caller, account_id: AccountId) -> AccountOut:
    service = AccountService()
    try:
        account = service.get(caller.tenant_id, account_id)
    except AccountNotFound:
        raise not_found("account", account_id) from None
    return _out(service.summary(account))


@router.post(
    "/{account_id}/reset",
    response_model=AccountOut,
    summary="Reset a paper account",
    responses=_CONFLICT,
    description=(
        "Cancels its open orders, flattens its positions and restores the starting cash (a `reset` ledger "
        "entry records the difference). Paper accounts only; refused with 409 while a deployment that is "
        "not stopped (active or paused) trades the account."
    ),
)
def reset_account(caller: Caller, account_id: AccountId) -> AccountOut:
    service = AccountService()
    try:
        account = service.reset(caller.tenant_id, account_id, actor=_actor(caller), at=_now())
    except AccountNotFound:
        raise not_found("account", account_id) from None
    except AccountConflict as exc:
        raise _conflict(exc) from None
    return _out(service.summary(account))


@router.put(
    "/{account_id}/credentials",
    response_model=AccountOut,
    summary="Rotate a broker account's credentials",
    responses=_CONFLICT,
    description="Stores a new version of the secret; the account keeps its endpoint (paper/live, sandbox).",
    dependencies=[Depends(_named_fields(_CREDENTIAL_MODELS))],
)
def rotate_credentials(caller: Caller, account_id: AccountId, body: Annotated[CredentialsUpdate, Body()]) -> AccountOut:
    service = AccountService()
    try:
        account = service.rotate(caller.tenant_id, account_id, body, actor=_actor(caller), at=_now())
    except AccountNotFound:
        raise not_found("account", account_id) from None
    except AccountConflict as exc:
        raise _conflict(exc) from None
    except CredentialsMismatch as exc:
        raise field_error(f"body.{exc.field}", str(exc)) from None
    except CredentialsUnavailable:
        raise _unavailable() from None
    return _out(service.summary(account))


@router.delete(
    "/{account_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an account",
    responses=_CONFLICT,
    description=(
        "Removes the account and schedules its secret's deletion (7-day recovery window). Refused with 409 "
        "while a deployment that is not stopped trades it or while it has open orders. Its id is not reused."
    ),
)
def delete_account(caller: Caller, account_id: AccountId) -> Response:
    service = AccountService()
    try:
        service.delete(caller.tenant_id, account_id, actor=_actor(caller), at=_now())
    except AccountNotFound:
        raise not_found("account", account_id) from None
    except AccountConflict as exc:
        raise _conflict(exc) from None
    except CredentialsUnavailable:
        raise _unavailable() from None
    return Response(status_code=204)
