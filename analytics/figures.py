"""Figure 1 of the reference study: four Kaplan-Meier panels (RFS, MFS, LRFS, OS) with numbers at risk.

The pooled figure draws one curve per centre plus the pooled curve; a centre's figure draws its own curve. Each
panel has its confidence band (the plan's CI method), censoring marks, axis labels, a legend and an at-risk row
per curve under the axis. Saved as PNG (for the report) and SVG (for print).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from analytics.competing_risks import CumulativeIncidence
from analytics.kaplan_meier import CI_LABEL, KaplanMeier
from analytics.plan import AnalysisPlan

PANEL_LETTERS = "abcdefgh"
MONTHS_PER_YEAR = 12.0
POOLED_STYLE = {"color": "black", "linewidth": 2.0}


def figure1(curves: dict[str, list[tuple[str, KaplanMeier]]], plan: AnalysisPlan, title: str,
            hide_below: int = 0) -> Figure:
    """`curves[endpoint]` lists (label, fitted estimator) pairs. With `hide_below` (suppression) counts below it show
    as '<n', only the pooled curve's counts are printed, and a curve of fewer patients or events is not drawn."""
    names = [n for n in plan.figure_endpoints if n in curves]
    columns = 2
    rows = int(np.ceil(len(names) / columns))
    most = max((len(curves[n]) for n in names), default=1)
    figure, axes = plt.subplots(rows, columns, figsize=(13, 5.2 * rows + 0.25 * most * rows), squeeze=False)
    for index, name in enumerate(names):
        ax = axes[index // columns][index % columns]
        endpoint = plan.endpoint(name)
        _panel(ax, curves[name], f"{PANEL_LETTERS[index]}  {endpoint.label}", hide_below)
    for index in range(len(names), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.suptitle(f"{title}\nKaplan-Meier estimates, {int((1 - plan.alpha) * 100)}% CI: {CI_LABEL[plan.ci_method]}",
                    fontsize=12)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    return figure


def _panel(ax: Axes, curves: Sequence[tuple[str, KaplanMeier]], title: str, hide_below: int) -> None:
    horizon = max(km.follow_up_beyond for _, km in curves) / MONTHS_PER_YEAR
    ticks = np.arange(0, np.floor(horizon) + 1, 2 if horizon > 6 else 1)
    for label, km in curves:
        if 0 < km.n_ < hide_below or 0 < km.events_ < hide_below:  # its steps would be a few patients' own times
            ax.plot([], [], label=f"{label} (n or events <{hide_below}: not drawn)")
            continue
        table = km.table_
        years = np.concatenate([[0.0], table["time"].to_numpy() / MONTHS_PER_YEAR])
        survival = np.concatenate([[1.0], table["survival"].to_numpy()])
        style = POOLED_STYLE if label == "pooled" else {"linewidth": 1.4}
        counts = f" (n={_count(km.n_, hide_below)}, events={_count(km.events_, hide_below)})" if _counted(
            label, hide_below) else ""
        line = ax.step(years, survival, where="post", label=f"{label}{counts}", **style)[0]
        lower = np.concatenate([[1.0], table["lower"].to_numpy()])
        upper = np.concatenate([[1.0], table["upper"].to_numpy()])
        ax.fill_between(years, lower, upper, step="post", alpha=0.12, color=line.get_color())
        censored = table[table["censored"] > 0]
        ax.plot(censored["time"] / MONTHS_PER_YEAR, censored["survival"], "|", color=line.get_color(), markersize=7)
    ax.set(title=title, xlabel="Years", ylabel="Survival probability", ylim=(0, 1.02), xlim=(0, horizon * 1.02))
    ax.set_xticks(ticks)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    _at_risk_rows(ax, curves, ticks, hide_below)


def _at_risk_rows(ax: Axes, curves: Sequence[tuple[str, KaplanMeier]], ticks: np.ndarray, hide_below: int) -> None:
    """Numbers at risk at each tick, one row per curve, drawn under the x axis label."""
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    ax.text(-0.05, -0.2, "At risk", transform=ax.transAxes, ha="right", fontsize=8, fontweight="bold")
    for row, (label, km) in enumerate(curves):
        y = -0.27 - 0.07 * row
        ax.text(-0.05, y, label, transform=ax.transAxes, ha="right", fontsize=8)
        for at_tick, estimate in zip(ticks, km.at(ticks * MONTHS_PER_YEAR), strict=True):
            shown = _count(estimate.at_risk, hide_below) if _counted(label, hide_below) else "-"
            ax.text(at_tick, y, shown, transform=transform, ha="center", fontsize=8)


def _count(count: int, hide_below: int) -> str:
    return f"<{hide_below}" if 0 < count < hide_below else str(count)


def _counted(label: str, hide_below: int) -> bool:
    """Whether a curve's counts are printed: always without suppression; under it, the pooled curve's only. A
    centre's counts are protected in the tables together with the other centres' (complementary suppression),
    and a figure printing them would give those back."""
    return not hide_below or label == "pooled"


def save(figure: Figure, folder: Path, stem: str) -> list[Path]:
    """Write PNG and SVG; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.png", folder / f"{stem}.svg"]
    figure.savefig(paths[0], dpi=110, bbox_inches="tight")
    figure.savefig(paths[1], bbox_inches="tight")
    plt.close(figure)
    return paths


def cumulative_incidence_figure(curves: dict[str, list[tuple[str, CumulativeIncidence]]], labels: dict[str, str],
                                title: str, hide_below: int = 0) -> Figure:
    """A panel per endpoint: the cumulative incidence of its event and of death without it, each with its band;
    with `hide_below` (suppression), no event count is printed and a curve of fewer events is not drawn."""
    names = list(curves)
    figure, axes = plt.subplots(1, max(len(names), 1), figsize=(13, 5.2), squeeze=False)
    for index, name in enumerate(names):
        ax = axes[0][index]
        horizon = 0.0
        for label, cif in curves[name]:
            if 0 < cif.events_ < hide_below:  # its steps would be a few patients' own times
                ax.plot([], [], label=f"{label} (events <{hide_below}: not drawn)")
                continue
            table = cif.table_
            horizon = max(horizon, float(table["time"].max()) / MONTHS_PER_YEAR if not table.empty else 0.0)
            years = np.concatenate([[0.0], table["time"].to_numpy() / MONTHS_PER_YEAR])
            counts = "" if hide_below else f" (events={cif.events_})"  # under suppression: the table's, protected
            line = ax.step(years, np.concatenate([[0.0], table["incidence"].to_numpy()]), where="post",
                           label=f"{label}{counts}", linewidth=1.6)[0]
            ax.fill_between(years, np.concatenate([[0.0], table["lower"].fillna(0).to_numpy()]),
                            np.concatenate([[0.0], table["upper"].fillna(0).to_numpy()]), step="post", alpha=0.12,
                            color=line.get_color())
        ax.set(title=f"{PANEL_LETTERS[index]}  {labels[name]}", xlabel="Years", ylabel="Cumulative incidence",
               ylim=(0, 1.02), xlim=(0, max(horizon, 1.0) * 1.02))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    figure.suptitle(f"{title}\nCumulative incidence (Aalen-Johansen), death as a competing event; 95% CI log(-log)",
                    fontsize=12)
    figure.tight_layout(rect=(0, 0, 1, 0.92))
    return figure
