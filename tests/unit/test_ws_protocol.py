"""The WebSocket frame protocol: client frames, errors that name the field and the valid values, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tradeflow.realtime.protocol import (
    ACTIONS,
    MAX_FRAME_BYTES,
    VALID_CHANNELS,
    ClientFrame,
    ErrorReply,
    FrameError,
    SubscriptionReply,
    Update,
    parse_channel,
    parse_frame,
    pong,
)


def _error(body: str | bytes | None) -> FrameError:
    with pytest.raises(FrameError) as caught:
        parse_frame(body)
    return caught.value


def test_subscribe_frame_with_topics_and_quotes() -> None:
    frame = parse_frame(json.dumps({"action": "subscribe", "channels": ["orders", "quotes:BTC/USD", "orders"]}))
    assert frame == ClientFrame(action="subscribe", channels=("orders", "quotes:BTC/USD"))  # de-duplicated


def test_unsubscribe_and_ping_and_correlation_id() -> None:
    assert parse_frame('{"action": "unsubscribe", "channels": ["fills"], "id": "u1"}').id == "u1"
    ping = parse_frame(b'{"action": "ping"}')
    assert ping.action == "ping" and ping.channels == ()


@pytest.mark.parametrize("channel", ["orders", "fills", "positions", "signals", "controls", "alerts", "quotes:GOOG"])
def test_every_channel_is_valid(channel: str) -> None:
    assert parse_channel(channel) == channel


def test_unknown_action_lists_the_valid_ones() -> None:
    err = _error('{"action": "dance", "id": "x"}')
    assert err.code == "unknown_action" and err.field == "action" and err.valid == ACTIONS
    assert "'dance'" in err.message and "subscribe, unsubscribe, ping" in err.message
    assert err.reply().id == "x"  # the client's id is echoed even on errors


def test_missing_action_is_named() -> None:
    err = _error('{"channels": ["orders"]}')
    assert err.code == "unknown_action" and "missing action" in err.message


def test_unknown_channel_names_its_position_and_lists_the_valid_ones() -> None:
    err = _error('{"action": "subscribe", "channels": ["orders", "trades"]}')
    assert err.code == "unknown_channel" and err.field == "channels[1]"
    assert err.valid == VALID_CHANNELS and "'trades'" in err.message and "quotes:SYMBOL" in err.message


@pytest.mark.parametrize("symbol", ["", "BAD SYMBOL", "X" * 33, "AAPL;DROP"])
def test_quotes_symbol_is_validated_like_the_domain_symbol(symbol: str) -> None:
    err = _error(json.dumps({"action": "subscribe", "channels": [f"quotes:{symbol}"]}))
    assert err.code == "invalid_symbol" and err.field == "channels[0]"


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"action": "subscribe"}, "channels"),
        ({"action": "subscribe", "channels": []}, "channels"),
        ({"action": "subscribe", "channels": "orders"}, "channels"),
        ({"action": "subscribe", "channels": [1]}, "channels[0]"),
        ({"action": "ping", "channels": ["orders"]}, "channels"),
        ({"action": "ping", "id": 7}, "id"),
        ({"action": "ping", "extra": 1}, "extra"),
    ],
)
def test_bad_fields_are_named(frame: dict[str, object], field: str) -> None:
    assert _error(json.dumps(frame)).field == field


@pytest.mark.parametrize("body", ["not json", "{", "[1, 2]", '"ping"', "null", "", None, b"\xff\xfe"])
def test_non_json_or_non_object_frames_are_errors(body: str | bytes | None) -> None:
    err = _error(body)
    assert err.code in {"invalid_json", "invalid_frame", "empty_frame"}
    assert err.reply().type == "error"


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    assert _error("[" * 100_000 + "]" * 100_000).code in {"invalid_json", "frame_too_large"}
    assert _error("[" * 10_000 + "]" * 10_000).code in {"invalid_json", "invalid_frame"}


def test_oversized_frame_is_refused_before_parsing() -> None:
    body = json.dumps({"action": "ping", "id": "a"}) + " " * MAX_FRAME_BYTES
    err = _error(body)
    assert err.code == "frame_too_large" and str(MAX_FRAME_BYTES) in err.message
    assert len(body.encode()) > MAX_FRAME_BYTES
    # exactly at the limit is fine
    at_limit = '{"action": "ping"}'.ljust(MAX_FRAME_BYTES)
    assert parse_frame(at_limit).action == "ping"


def test_multibyte_size_is_counted_in_bytes() -> None:
    body = '{"action": "ping", "id": "x"}'.ljust(MAX_FRAME_BYTES - 10) + "é" * 10
    assert len(body) <= MAX_FRAME_BYTES < len(body.encode())
    assert _error(body).code == "frame_too_large"


def test_reply_frames_serialise_without_empty_fields() -> None:
    at = datetime(2026, 1, 5, 14, 31, tzinfo=UTC)
    assert json.loads(pong(at, "p1").to_bytes()) == {"type": "pong", "ts": "2026-01-05T14:31:00.000000Z", "id": "p1"}
    sub = SubscriptionReply(type="subscribed", channels=["orders"], subscriptions=["fills", "orders"])
    assert json.loads(sub.to_bytes()) == {
        "type": "subscribed",
        "channels": ["orders"],
        "subscriptions": ["fills", "orders"],
    }
    err = ErrorReply(code="unknown_action", message="m", field="action", valid=list(ACTIONS))
    assert json.loads(err.to_bytes())["valid"] == ["subscribe", "unsubscribe", "ping"]


def test_update_envelope() -> None:
    at = datetime(2026, 1, 5, 14, 31, tzinfo=UTC)
    update = Update(channel="fills", data={"symbol": "GOOG", "quantity": "10"}, ts=at, seq=3)
    assert set(json.loads(update.to_bytes())) == {"type", "channel", "data", "ts", "seq"}
    with pytest.raises(ValueError):
        Update(channel="fills", data={}, ts=at, seq=0)
