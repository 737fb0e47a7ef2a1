"""Units a figure's axis reads well in: shared by the PNG figures (matplotlib) and the page's SVG ones, which
must not import matplotlib for it."""

from __future__ import annotations

import math


def time_unit(seconds: float) -> tuple[float, str]:
    """Divisor and name of the unit in which ``seconds`` reads well: s below 2 min, min below 2 h, else h."""
    if not math.isfinite(seconds) or seconds < 120:
        return 1.0, "s"
    if seconds < 7200:
        return 60.0, "min"
    return 3600.0, "h"
