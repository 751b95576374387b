"""The WebSocket frame protocol: what a client may send, what the server answers, and the envelope of
live updates.

Client frames (text, JSON, at most `MAX_FRAME_BYTES`):

    {"action": "subscribe" | "unsubscribe", "channels": ["orders", "quotes:AAPL", ...], "id": "optional"}
    {"action": "ping", "id": "optional"}

Server frames, each with a `type`:

    {"type": "subscribed" | "unsubscribed", "channels": [...asked], "subscriptions": [...now], "id"?}
    {"type": "pong", "ts": "...", "id"?}
    {"type": "error", "code": "...", "message": "...", "field"?, "valid"?, "id"?}
    {"type": "update", "channel": "...", "data": {...}, "ts": "...", "seq": 1}

`id` is the client's own correlation id, echoed in the reply to that frame. Errors never close the socket:
each names what is wrong (`field`) and, for an unknown action or channel, lists the valid values (`valid`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tradeflow.domain.types import Symbol, UtcDatetime

MAX_FRAME_BYTES: Final = 32 * 1024
MAX_CHANNELS_PER_FRAME: Final = 100
MAX_CLIENT_ID_LENGTH: Final = 64
ACTIONS: Final = ("subscribe", "unsubscribe", "ping")
TOPICS: Final = ("orders", "fills", "positions", "signals", "controls", "alerts")
QUOTES_PREFIX: Final = "quotes:"
VALID_CHANNELS: Final = (*TOPICS, f"{QUOTES_PREFIX}SYMBOL")
FRAME_FIELDS: Final = ("action", "channels", "id")

Action = Literal["subscribe", "unsubscribe", "ping"]
_symbol: TypeAdapter[str] = TypeAdapter(Symbol)


class FrameError(ValueError):
    """A client frame that cannot be acted on. `code` is stable; `message` names what is wrong."""

    def __init__(
        self,
        code: str,
        message: str,
        field: str | None = None,
        valid: tuple[str, ...] | None = None,
        client_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        self.valid = valid
        self.client_id = client_id

    def reply(self) -> ErrorReply:
        return ErrorReply(
            code=self.code,
            message=self.message,
            field=self.field,
            valid=list(self.valid) if self.valid is not None else None,
            id=self.client_id,
        )


def parse_channel(value: object, field: str = "channel") -> str:
    """A channel name: one of `TOPICS`, or `quotes:SYMBOL` with a valid symbol. FrameError otherwise."""
    if not isinstance(value, str):
        raise FrameError("invalid_channel", f"{field} must be a string", field, VALID_CHANNELS)
    if value in TOPICS:
        return value
    if value.startswith(QUOTES_PREFIX):
        symbol = value[len(QUOTES_PREFIX) :]
        try:
            _symbol.validate_python(symbol, strict=True)
        except ValidationError:
            raise FrameError(
                "invalid_symbol",
                f"{field}: {symbol!r} is not a symbol (1-32 characters: A-Z a-z 0-9 . _ / -)",
                field,
            ) from None
        return value
    shown = value if len(value) <= 64 else value[:64] + "..."
    raise FrameError(
        "unknown_channel",
        f"{field}: unknown channel {shown!r}; valid channels: {', '.join(VALID_CHANNELS)}",
        field,
        VALID_CHANNELS,
    )


class ClientFrame(BaseModel):
    """A validated client frame. Build it with `parse_frame` (which gives the precise errors)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    action: Action
    channels: tuple[str, ...] = ()
    id: str | None = Field(default=None, max_length=MAX_CLIENT_ID_LENGTH)


def _decode(body: str | bytes | None) -> str:
    if not body:
        raise FrameError("empty_frame", "empty frame; send a JSON object with an 'action'", valid=ACTIONS)
    size = len(body) if isinstance(body, bytes) else len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_FRAME_BYTES:
        raise FrameError("frame_too_large", f"frame is {size} bytes; the limit is {MAX_FRAME_BYTES} bytes")
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError("invalid_json", "frame is not UTF-8 text (send JSON text frames)") from None
    return body


def parse_frame(body: str | bytes | None) -> ClientFrame:
    """Parse and validate one client frame. Raises FrameError naming the field and the valid values."""
    text = _decode(body)
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        raise FrameError("invalid_json", f"frame is not valid JSON: {reason}") from None
    if not isinstance(data, dict):
        raise FrameError("invalid_frame", "frame must be a JSON object with an 'action'", valid=ACTIONS)
    client_id = data.get("id")
    if client_id is not None and (not isinstance(client_id, str) or not 0 < len(client_id) <= MAX_CLIENT_ID_LENGTH):
        raise FrameError("invalid_field", f"id must be a string of 1-{MAX_CLIENT_ID_LENGTH} characters", "id")
    unknown = sorted(str(k) for k in data if k not in FRAME_FIELDS)
    if unknown:
        raise FrameError(
            "unknown_field",
            f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(FRAME_FIELDS)}",
            unknown[0],
            FRAME_FIELDS,
            client_id,
        )
    action = data.get("action")
    if action not in ACTIONS:
        what = "missing action" if action is None else f"unknown action {str(action)[:64]!r}"
        raise FrameError("unknown_action", f"{what}; valid actions: {', '.join(ACTIONS)}", "action", ACTIONS, client_id)
    channels: tuple[str, ...] = ()
    if action != "ping":
        raw = data.get("channels")
        if not isinstance(raw, list) or not raw:
            raise FrameError(
                "invalid_field",
                f"{action} needs 'channels': a non-empty list of channel names",
                "channels",
                VALID_CHANNELS,
                client_id,
            )
        if len(raw) > MAX_CHANNELS_PER_FRAME:
            raise FrameError(
                "invalid_field",
                f"channels: {len(raw)} given, at most {MAX_CHANNELS_PER_FRAME} per frame",
                "channels",
                client_id=client_id,
            )
        try:
            channels = tuple(dict.fromkeys(parse_channel(c, f"channels[{i}]") for i, c in enumerate(raw)))
        except FrameError as exc:
            exc.client_id = client_id
            raise
    elif data.get("channels") not in (None, []):
        raise FrameError("invalid_field", "ping takes no channels", "channels", client_id=client_id)
    return ClientFrame(action=action, channels=channels, id=client_id)


# -- server frames ---------------------------------------------------------------------------------


class _Reply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class SubscriptionReply(_Reply):
    type: Literal["subscribed", "unsubscribed"]
    channels: list[str]  # the channels of the frame
    subscriptions: list[str]  # everything the connection is subscribed to now
    id: str | None = None


class PongReply(_Reply):
    type: Literal["pong"] = "pong"
    ts: UtcDatetime
    id: str | None = None


class ErrorReply(_Reply):
    type: Literal["error"] = "error"
    code: str
    message: str
    field: str | None = None
    valid: list[str] | None = None
    id: str | None = None


Reply = Annotated[SubscriptionReply | PongReply | ErrorReply, Field(discriminator="type")]


class Update(_Reply):
    """A live update to one connection: `seq` counts per connection, so a client sees a gap and refetches."""

    type: Literal["update"] = "update"
    channel: str
    data: dict[str, Any]
    ts: UtcDatetime
    seq: int = Field(ge=1)


def pong(ts: datetime, client_id: str | None = None) -> PongReply:
    return PongReply(ts=ts, id=client_id)
