"""`orders`: place a manual order, list, get, cancel.

A manual order goes through the same risk and execution path as a strategy's orders (design rules 4
and 8; see `tradeflow.manual`): `POST /v1/orders` answers **202** with the client order id and a
status URL; the order is `pending` until risk decides, then `rejected` (with the reason) or the order
record's own state (`new`, `submitted`, `accepted`, `partially_filled`, `filled`, `cancelled`,
`expired`, `rejected`). POST accepts an `Idempotency-Key` header (see `tradeflow.api.idempotency`);
its key also determines the client order id, so a retry can never place a second order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tradeflow.api.context import Caller
from tradeflow.api.errors import ApiError, field_error, not_found, problem_doc
from tradeflow.api.idempotency import IdempotencyKey, fingerprint, idempotent
from tradeflow.api.pagination import Cursor, Limit, Page, query_page
from tradeflow.api.routers._filters import AccountQuery, Since, SymbolQuery, Until, window
from tradeflow.api.routers.positions import account_or_404
from tradeflow.api.views import OrderView, ViewStatus, order_view
from tradeflow.domain import Order, OrderSide, OrderStatus, OrderType, SignalOutcome, TimeInForce
from tradeflow.domain.orders import OrderTerms
from tradeflow.domain.types import Price, Quantity, ResourceId, Symbol
from tradeflow.manual.service import (
    InvalidOrder,
    ManualOrderService,
    OrderConflict,
    OrderNotFound,
    OrderState,
    PlaceRequest,
)
from tradeflow.messaging.sqs import SqsQueues
from tradeflow.storage.dynamo import DynamoTable
from tradeflow.storage.keys import tenant_account

router = APIRouter(prefix="/orders", tags=["orders"])
_queues = SqsQueues()

OrderId = Annotated[str, Path(min_length=1, max_length=48, pattern=r"^[A-Za-z0-9_.:-]+$")]


class PlaceOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: ResourceId
    symbol: Symbol
    side: OrderSide
    quantity: Quantity = Field(gt=0, le=Decimal("1e12"), description="units, as a decimal string")
    type: OrderType = OrderType.MARKET
    limit_price: Price | None = Field(default=None, gt=0, le=Decimal("1e12"))
    stop_price: Price | None = Field(default=None, gt=0, le=Decimal("1e12"))
    time_in_force: TimeInForce = TimeInForce.DAY
    client_tag: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")

    @model_validator(mode="after")
    def _prices_match_type(self) -> PlaceOrder:
        needs_limit = self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = self.type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit != (self.limit_price is not None):
            raise ValueError(f"limit_price is {'required' if needs_limit else 'not allowed'} for a {self.type} order")
        if needs_stop != (self.stop_price is not None):
            raise ValueError(f"stop_price is {'required' if needs_stop else 'not allowed'} for a {self.type} order")
        return self

    def terms(self) -> OrderTerms:
        return OrderTerms(
            symbol=self.symbol,
            side=self.side,
            quantity=self.quantity,
            order_type=self.type,
            time_in_force=self.time_in_force,
            limit_price=self.limit_price,
            stop_price=self.stop_price,
        )


class OrderAccepted(BaseModel):
    client_order_id: str
    status: Literal["pending"] = "pending"
    status_url: str
    account_id: str
    symbol: str
    side: OrderSide
    quantity: Quantity
    type: OrderType
    reference_price: Price = Field(description="the last price known when the order was placed")


class CancelAccepted(BaseModel):
    client_order_id: str
    status: ViewStatus
    cancel: Literal["requested", "done"]
    status_url: str


def _service() -> ManualOrderService:
    return ManualOrderService(_queues)


def _status_url(coid: str) -> str:
    return f"/v1/orders/{coid}"


def _view(state: OrderState) -> OrderView:
    if state.order is not None:
        return order_view(state.order, state.manual, state.journal)
    manual, journal = state.manual, state.journal
    assert manual is not None and journal is not None
    status: ViewStatus = "pending" if journal.outcome is SignalOutcome.PENDING else journal.outcome.value  # type: ignore[assignment]
    if journal.outcome in (SignalOutcome.ORDERED, SignalOutcome.FILLED):
        status = "approved"  # (the order record is being written)
    return OrderView(
        client_order_id=manual.client_order_id,
        account_id=manual.account_id,
        source="manual",
        symbol=manual.symbol,
        side=manual.side,
        quantity=manual.quantity,
        type=manual.order_type,
        time_in_force=manual.time_in_force,
        limit_price=manual.limit_price,
        stop_price=manual.stop_price,
        status=status,
        reason=journal.reason if journal.outcome.final else None,
        client_tag=manual.client_tag,
        created_at=journal.created_at,
        updated_at=journal.updated_at,
    )


@router.post(
    "",
    response_model=OrderAccepted,
    status_code=202,
    summary="place a manual order (risk-checked and executed like a strategy's)",
    responses={409: problem_doc("a request with this Idempotency-Key is still running")},
)
def place_order(body: PlaceOrder, caller: Caller, idempotency_key: IdempotencyKey = None) -> JSONResponse:
    def run() -> OrderAccepted:
        try:
            terms = body.terms()
        except ValidationError as exc:  # (the model's own checks make this unreachable)
            raise field_error("body", str(exc)) from exc
        try:
            order = _service().place(
                caller.tenant_id,
                f"user:{caller.user_id}",
                PlaceRequest(body.account_id, terms, body.client_tag),
                datetime.now(UTC),
                idempotency_key=idempotency_key,
                request_hash=fingerprint(body),
            )
        except InvalidOrder as exc:
            raise field_error(exc.field, exc.message) from exc
        except OrderConflict as exc:
            raise field_error("header.Idempotency-Key", str(exc)) from exc
        return OrderAccepted(
            client_order_id=order.client_order_id,
            status_url=_status_url(order.client_order_id),
            account_id=order.account_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            type=order.order_type,
            reference_price=order.reference_price,
        )

    def location(result: BaseModel) -> dict[str, str]:
        assert isinstance(result, OrderAccepted)
        return {"Location": result.status_url}

    return idempotent(caller, "orders.create", idempotency_key, body, run, status_code=202, headers=location)


@router.get("", response_model=Page[OrderView], summary="an account's orders, newest first")
def list_orders(
    caller: Caller,
    account_id: AccountQuery,
    symbol: SymbolQuery = None,
    status: Annotated[OrderStatus | None, Query(description="the order record's status")] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[OrderView]:
    account_or_404(caller.tenant_id, account_id)
    sk_condition, values = window(since, until)
    filters, names = [], {}
    if symbol is not None:
        filters.append("#symbol = :symbol")
        names["#symbol"] = "symbol"
        values[":symbol"] = symbol
    if status is not None:
        filters.append("#status = :status")
        names["#status"] = "status"
        values[":status"] = status.value
    return query_page(
        DynamoTable("orders"),
        tenant_account(caller.tenant_id, account_id),
        lambda item: order_view(Order.model_validate(item)),
        limit=limit,
        cursor=cursor,
        partition_attribute="account_key",
        index="by_account",
        sk_condition=sk_condition,
        values=values,
        forward=False,
        filter_expression=" AND ".join(filters) or None,
        names=names or None,
    )


@router.get("/{client_order_id}", response_model=OrderView, summary="an order and its current state")
def get_order(client_order_id: OrderId, caller: Caller) -> OrderView:
    try:
        return _view(_service().state(caller.tenant_id, client_order_id))
    except OrderNotFound:
        raise not_found("order", client_order_id) from None


@router.post(
    "/{client_order_id}/cancel",
    response_model=CancelAccepted,
    status_code=202,
    summary="cancel an order (at the broker, through execution); 409 once it is final",
    responses={409: problem_doc("the order is final, or a cancel is in flight (with `Retry-After`)")},
)
def cancel_order(client_order_id: OrderId, caller: Caller) -> CancelAccepted:
    service = _service()
    try:
        state = service.cancel(caller.tenant_id, client_order_id, f"user:{caller.user_id}", datetime.now(UTC))
    except OrderNotFound:
        raise not_found("order", client_order_id) from None
    except OrderConflict as exc:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        raise ApiError(409, str(exc), headers=headers) from None
    view = _view(state)
    done = view.status == "cancelled"
    return CancelAccepted(
        client_order_id=client_order_id,
        status=view.status,
        cancel="done" if done else "requested",
        status_url=_status_url(client_order_id),
    )
