"""Figure 1 of the reference study: four Kaplan-Meier panels (RFS, MFS, LRFS, OS) with numbers at risk.

The pooled figure draws one curve per centre plus the pooled curve; a centre's figure draws its own curve. Each
panel has its confidence band (the plan's CI method), censoring marks, axis labels, a legend and an at-risk row
per curve under the axis. Saved as PNG (for the report) and SVG (for print).

Under the plan's output policy the estimators were fitted on protected risk tables (`survival_tables`), so every
step is a band of patients; a curve is drawn, and its numbers at risk printed, only while at least the policy's
threshold remain at risk, as Table 3 shows a rate only where they do.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory

from analytics.competing_risks import CumulativeIncidence
from analytics.kaplan_meier import CI_LABEL, KaplanMeier
from analytics.plan import AnalysisPlan
from analytics.policy import OutputPolicy

PANEL_LETTERS = "abcdefgh"
MONTHS_PER_YEAR = 12.0
POOLED_STYLE = {"color": "black", "linewidth": 2.0}


def figure1(curves: dict[str, list[tuple[str, KaplanMeier]]], plan: AnalysisPlan, title: str) -> Figure:
    """`curves[endpoint]` lists (label, fitted estimator) pairs."""
    names = [n for n in plan.figure_endpoints if n in curves]
    columns = 2
    rows = int(np.ceil(len(names) / columns))
    most = max((len(curves[n]) for n in names), default=1)
    figure, axes = plt.subplots(rows, columns, figsize=(13, 5.2 * rows + 0.25 * most * rows), squeeze=False)
    for index, name in enumerate(names):
        ax = axes[index // columns][index % columns]
        endpoint = plan.endpoint(name)
        _panel(ax, curves[name], f"{PANEL_LETTERS[index]}  {endpoint.label}", plan.policy)
    for index in range(len(names), rows * columns):
        axes[index // columns][index % columns].set_visible(False)
    figure.suptitle(f"{title}\nKaplan-Meier estimates, {int((1 - plan.alpha) * 100)}% CI: {CI_LABEL[plan.ci_method]}",
                    fontsize=12)
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    return figure


def drawn(table: pd.DataFrame, policy: OutputPolicy) -> pd.DataFrame:
    """The steps of an estimate's table that a figure draws: those with at least the threshold at risk."""
    return table[[not policy.too_small(n) for n in table["at_risk"]]]


def _panel(ax: Axes, curves: Sequence[tuple[str, KaplanMeier]], title: str, policy: OutputPolicy) -> None:
    horizon = max(km.follow_up_beyond for _, km in curves) / MONTHS_PER_YEAR
    ticks = np.arange(0, np.floor(horizon) + 1, 2 if horizon > 6 else 1)
    for label, km in curves:
        table = drawn(km.table_, policy)
        if policy.too_small(km.n_):
            ax.plot([], [], label=f"{label} (fewer than {policy.threshold} patients: not drawn)")
            continue
        years = np.concatenate([[0.0], table["time"].to_numpy() / MONTHS_PER_YEAR])
        survival = np.concatenate([[1.0], table["survival"].to_numpy()])
        style = POOLED_STYLE if label == "pooled" else {"linewidth": 1.4}
        line = ax.step(years, survival, where="post", label=f"{label} (n={km.n_}, events={km.events_})",
                       **style)[0]
        lower = np.concatenate([[1.0], table["lower"].to_numpy()])
        upper = np.concatenate([[1.0], table["upper"].to_numpy()])
        ax.fill_between(years, lower, upper, step="post", alpha=0.12, color=line.get_color())
        censored = table[table["censored"] > 0]
        ax.plot(censored["time"] / MONTHS_PER_YEAR, censored["survival"], "|", color=line.get_color(), markersize=7)
    ax.set(title=title, xlabel="Years", ylabel="Survival probability", ylim=(0, 1.02), xlim=(0, horizon * 1.02))
    ax.set_xticks(ticks)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8, frameon=False)
    _at_risk_rows(ax, curves, ticks, policy)


def _at_risk_rows(ax: Axes, curves: Sequence[tuple[str, KaplanMeier]], ticks: np.ndarray,
                  policy: OutputPolicy) -> None:
    """Numbers at risk at each tick, one row per curve, drawn under the x axis label ('-' below the threshold)."""
    transform = blended_transform_factory(ax.transData, ax.transAxes)
    ax.text(-0.05, -0.2, "At risk", transform=ax.transAxes, ha="right", fontsize=8, fontweight="bold")
    for row, (label, km) in enumerate(curves):
        y = -0.27 - 0.07 * row
        ax.text(-0.05, y, label, transform=ax.transAxes, ha="right", fontsize=8)
        for at_tick, estimate in zip(ticks, km.at(ticks * MONTHS_PER_YEAR), strict=True):
            shown = "-" if policy.too_small(estimate.at_risk) else str(estimate.at_risk)
            ax.text(at_tick, y, shown, transform=transform, ha="center", fontsize=8)


def save(figure: Figure, folder: Path, stem: str) -> list[Path]:
    """Write PNG and SVG; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.png", folder / f"{stem}.svg"]
    figure.savefig(paths[0], dpi=110, bbox_inches="tight")
    figure.savefig(paths[1], bbox_inches="tight")
    plt.close(figure)
    return paths


def cumulative_incidence_figure(curves: dict[str, list[tuple[str, CumulativeIncidence]]], labels: dict[str, str],
                                title: str, policy: OutputPolicy) -> Figure:
    """A panel per endpoint: the cumulative incidence of its event and of death without it, each with its band,
    drawn while at least the policy's threshold remain at risk."""
    names = list(curves)
    figure, axes = plt.subplots(1, max(len(names), 1), figsize=(13, 5.2), squeeze=False)
    for index, name in enumerate(names):
        ax = axes[0][index]
        horizon = 0.0
        for label, cif in curves[name]:
            table = drawn(cif.table_, policy)
            horizon = max(horizon, float(cif.table_["time"].max()) / MONTHS_PER_YEAR if not cif.table_.empty
                          else 0.0)
            years = np.concatenate([[0.0], table["time"].to_numpy() / MONTHS_PER_YEAR])
            line = ax.step(years, np.concatenate([[0.0], table["incidence"].to_numpy()]), where="post",
                           label=f"{label} (events={cif.events_})", linewidth=1.6)[0]
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
