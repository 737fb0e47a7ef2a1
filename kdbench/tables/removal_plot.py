"""The removal curves' figure: accuracy against the share of training samples removed, one line per estimator
and end, random dashed as the floor (the table is ``kdbench.tables.removal``)."""

from __future__ import annotations

import pandas as pd

from kdbench.tables.plots import add_caption, add_legend, new_figure, note_empty, png_bytes, set_title
from kdbench.tables.removal import RANDOM, curve_points


def removal_png(tidy: pd.DataFrame, teacher: str, student: str, metric: str = "best") -> bytes:
    """One pair's curves, from the removal table's tidy rows (mean ± std over seeds as error bars)."""
    figure, ax = new_figure()
    points = curve_points(tidy, teacher, student)
    handles, labels = [], []
    for curve, values in points.items():
        if not values:
            continue
        pct, mean, std = zip(*values, strict=True)
        style = {"linestyle": "--", "color": "0.35", "marker": "s"} if curve == RANDOM else {"marker": "o"}
        container = ax.errorbar(pct, mean, yerr=std, capsize=3, linewidth=1.4, markersize=4, **style)  # type: ignore[arg-type]
        handles.append(container)
        labels.append(curve)
    if not handles:
        note_empty(ax, "no removal runs")
    ax.set_xlabel("training samples removed (%)")
    ax.set_ylabel(f"{metric} top-1 (%)")
    ax.grid(alpha=0.3)
    set_title(ax, f"Removal curves: {teacher} → {student}")
    add_legend(ax, handles, labels)
    add_caption(figure, "Each point: a student trained without the given share of its training samples, mean ± "
                        "std over seeds; 0% is the same method on all of them. A curve above random at a share "
                        "removed means its estimator found samples that hurt.")
    return png_bytes(figure)
