"""Support/resistance zones: pivot highs and lows clustered into price zones.

Algorithm (deterministic, no look-ahead):
1. Pivots. Bar i is a pivot high when high[i] is strictly above the `width` highs before it and at
   least every one of the `width` highs after it (so a flat top counts once, at its first bar); pivot
   lows mirror this on the lows. A pivot needs `width` bars on each side, so it is confirmed only
   `width` bars later: the last `width` bars never hold one.
2. Clustering. All pivot prices (highs and lows together) are sorted ascending (ties by bar index)
   and swept once: a price joins the current zone while price <= zone low * (1 + tolerance), else it
   opens a new zone. Every zone is thus at most `tolerance` (a fraction of its low) wide, and the
   result depends only on the set of pivots, not on their order in time.
3. A zone reports its price range (lowest and highest pivot price in it), its touch count (pivots in
   it), how many of them are highs and lows, and the bar index of its latest pivot. Zones with fewer
   than `min_touches` touches are dropped; the rest are returned in ascending price order.
Whether a zone acts as support or resistance depends on where price is: below it, resistance; above
it, support (see `Zone.role`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

from tradeflow.indicators._kernels import check_period

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class Pivot(NamedTuple):
    bar: int
    price: float
    kind: Literal["high", "low"]


@dataclass(frozen=True, slots=True)
class Zone:
    low: float
    high: float
    touches: int
    pivot_highs: int
    pivot_lows: int
    last_index: int

    @property
    def mid(self) -> float:
        return (self.low + self.high) / 2

    def role(self, price: float) -> Literal["support", "resistance", "inside"]:
        """'support' when `price` is above the zone, 'resistance' when below, else 'inside'."""
        if price > self.high:
            return "support"
        if price < self.low:
            return "resistance"
        return "inside"


def pivots(high: Sequence[float], low: Sequence[float], width: int = 5) -> list[Pivot]:
    """Pivot highs and lows (step 1 of the module's algorithm), ordered by bar index, highs first."""
    check_period(width, 1, "width")
    found: list[Pivot] = []
    for i in range(width, len(high) - width):
        if high[i] > max(high[i - width : i]) and high[i] >= max(high[i + 1 : i + width + 1]):
            found.append(Pivot(i, high[i], "high"))
        if low[i] < min(low[i - width : i]) and low[i] <= min(low[i + 1 : i + width + 1]):
            found.append(Pivot(i, low[i], "low"))
    return found


def pivot_series(high: npt.ArrayLike, low: npt.ArrayLike, width: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised `pivots`: boolean arrays (is pivot high, is pivot low) per bar."""
    import numpy as np

    check_period(width, 1, "width")
    h, lo = np.asarray(high, dtype=float), np.asarray(low, dtype=float)
    is_high, is_low = np.zeros(h.shape, dtype=bool), np.zeros(lo.shape, dtype=bool)
    n = h.size
    if n < 2 * width + 1:
        return is_high, is_low
    wh = np.lib.stride_tricks.sliding_window_view(h, width)  # wh[j] = h[j : j + width]
    wl = np.lib.stride_tricks.sliding_window_view(lo, width)
    centre = slice(width, n - width)
    left_h, right_h = wh[: n - 2 * width].max(axis=1), wh[width + 1 :].max(axis=1)
    left_l, right_l = wl[: n - 2 * width].min(axis=1), wl[width + 1 :].min(axis=1)
    is_high[centre] = (h[centre] > left_h) & (h[centre] >= right_h)
    is_low[centre] = (lo[centre] < left_l) & (lo[centre] <= right_l)
    return is_high, is_low


def cluster_pivots(found: Sequence[Pivot], tolerance: float = 0.005, min_touches: int = 2) -> list[Zone]:
    """Cluster pivots into zones (steps 2-3 of the module's algorithm)."""
    if tolerance < 0:
        raise ValueError("tolerance must not be negative")
    zones: list[Zone] = []
    group: list[Pivot] = []

    def close_group() -> None:
        if len(group) >= min_touches:
            highs = sum(1 for p in group if p.kind == "high")
            zones.append(
                Zone(group[0].price, group[-1].price, len(group), highs, len(group) - highs, max(p.bar for p in group))
            )

    for p in sorted(found, key=lambda p: (p.price, p.bar)):
        if group and p.price > group[0].price * (1 + tolerance):
            close_group()
            group = []
        group.append(p)
    if group:
        close_group()
    return zones


def zones(
    high: Sequence[float], low: Sequence[float], width: int = 5, tolerance: float = 0.005, min_touches: int = 2
) -> list[Zone]:
    """Support/resistance zones of the bars given (see the module docstring for the algorithm)."""
    return cluster_pivots(pivots(high, low, width), tolerance, min_touches)


def zones_series(
    high: npt.ArrayLike, low: npt.ArrayLike, width: int = 5, tolerance: float = 0.005, min_touches: int = 2
) -> list[Zone]:
    """As `zones`, with the pivots found vectorised (`pivot_series`); equal to `zones` on the same bars."""
    import numpy as np

    h, lo = np.asarray(high, dtype=float), np.asarray(low, dtype=float)
    is_high, is_low = pivot_series(h, lo, width)
    found = [Pivot(int(i), float(h[i]), "high") for i in np.flatnonzero(is_high)]
    found += [Pivot(int(i), float(lo[i]), "low") for i in np.flatnonzero(is_low)]
    return cluster_pivots(found, tolerance, min_touches)
