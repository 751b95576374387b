"""Support/resistance zones: pivots and clustering on hand-made bars, and against a brute-force
reference on real data."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tradeflow.indicators import Pivot, Zone, cluster_pivots, pivot_series, pivots, zones, zones_series
from tradeflow.marketdata import load_dataset


def test_pivots_hand_example() -> None:
    high = [1.0, 2.0, 5.0, 2.0, 1.0, 2.0, 5.05, 3.0, 2.0]
    low = [0.5, 1.5, 4.0, 1.0, 0.2, 1.0, 4.0, 2.0, 1.5]
    assert pivots(high, low, 2) == [Pivot(2, 5.0, "high"), Pivot(4, 0.2, "low"), Pivot(6, 5.05, "high")]
    is_high, is_low = pivot_series(high, low, 2)
    assert np.flatnonzero(is_high).tolist() == [2, 6]
    assert np.flatnonzero(is_low).tolist() == [4]


def test_flat_top_counts_once_and_edges_never_pivot() -> None:
    high = [1.0, 3.0, 3.0, 1.0, 0.5, 9.0]  # plateau at 1-2; the last bar lacks a right side
    low = [0.0] * 6
    assert pivots(high, low, 1) == [Pivot(1, 3.0, "high")]
    assert pivot_series(high, low, 1)[0].tolist() == [False, True, False, False, False, False]
    assert pivots(high[:2], low[:2], 1) == []
    assert pivot_series(high[:2], low[:2], 1)[0].tolist() == [False, False]


def test_clustering_by_relative_tolerance() -> None:
    found = [
        Pivot(3, 100.0, "low"),
        Pivot(9, 100.4, "high"),
        Pivot(15, 100.45, "low"),  # within 100 * 1.005: still in the first zone
        Pivot(20, 100.6, "high"),  # beyond: opens a new zone
        Pivot(30, 110.0, "high"),
    ]
    assert cluster_pivots(found, 0.005, 1) == [
        Zone(100.0, 100.45, 3, 1, 2, 15),
        Zone(100.6, 100.6, 1, 1, 0, 20),
        Zone(110.0, 110.0, 1, 1, 0, 30),
    ]
    assert cluster_pivots(found, 0.005, 2) == [Zone(100.0, 100.45, 3, 1, 2, 15)]
    assert cluster_pivots(list(reversed(found)), 0.005, 2) == cluster_pivots(found, 0.005, 2)  # order-free
    assert cluster_pivots([], 0.01) == []
    with pytest.raises(ValueError, match="tolerance"):
        cluster_pivots(found, -0.1)


def test_zone_role_and_mid() -> None:
    zone = Zone(99.0, 101.0, 3, 2, 1, 10)
    assert zone.mid == 100.0
    assert zone.role(102.0) == "support"
    assert zone.role(98.0) == "resistance"
    assert zone.role(100.0) == "inside"


def test_double_bottom_and_double_top_make_zones() -> None:
    # a range between ~90 and ~110 touched twice each side
    close = [100, 95, 90, 95, 100, 105, 110, 105, 100, 95, 90.2, 95, 100, 105, 109.8, 105, 100]
    high = [c + 0.1 for c in close]
    low = [c - 0.1 for c in close]
    found = zones(high, low, width=2, tolerance=0.01, min_touches=2)
    assert [(round(z.low, 1), round(z.high, 1), z.touches) for z in found] == [(89.9, 90.1, 2), (109.9, 110.1, 2)]
    support, resistance = found
    assert (support.pivot_lows, support.pivot_highs, resistance.pivot_highs) == (2, 0, 2)
    assert support.role(close[-1]) == "support" and resistance.role(close[-1]) == "resistance"


def _brute_pivots(high: list[float], low: list[float], width: int) -> list[tuple[int, float, str]]:
    out = []
    for i in range(len(high)):
        if i < width or i + width >= len(high):
            continue
        left_h, right_h = high[i - width : i], high[i + 1 : i + width + 1]
        if all(high[i] > x for x in left_h) and all(high[i] >= x for x in right_h):
            out.append((i, high[i], "high"))
        left_l, right_l = low[i - width : i], low[i + 1 : i + width + 1]
        if all(low[i] < x for x in left_l) and all(low[i] <= x for x in right_l):
            out.append((i, low[i], "low"))
    return out


@pytest.mark.parametrize("symbol", ["GOOG", "EURUSD", "BTCUSD"])
def test_zones_on_real_data_match_brute_force(symbol: str) -> None:
    bars = load_dataset(symbol)
    high, low = [float(b.high) for b in bars], [float(b.low) for b in bars]
    tolerance = 0.01
    ref = _brute_pivots(high, low, 3)
    assert [tuple(p) for p in pivots(high, low, 3)] == ref
    all_zones = zones(high, low, 3, tolerance, 1)
    assert sum(z.touches for z in all_zones) == len(ref)
    prices = sorted(p[1] for p in ref)
    assert (all_zones[0].low, all_zones[-1].high) == (prices[0], prices[-1])
    for zone in all_zones:
        assert zone.high <= zone.low * (1 + tolerance)
        inside = [p for p in ref if zone.low <= p[1] <= zone.high]
        assert len(inside) == zone.touches
        assert zone.last_index == max(p[0] for p in inside)
    for a, b in itertools.pairwise(all_zones):
        assert b.low > a.low * (1 + tolerance)  # a zone ends only when the next pivot is out of reach
    strong = zones(high, low, 3, tolerance, 3)
    assert strong == [z for z in all_zones if z.touches >= 3]
    assert strong == zones_series(high, low, 3, tolerance, 3)
