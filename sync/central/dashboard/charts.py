"""Plotly figures as plain dicts (``data`` + ``layout``) that the page hands to Plotly.js.

Plain dicts, not ``plotly.graph_objects``: building and validating those costs tens of
milliseconds a page. Every label that may hold a stored string (site, desk, tag) goes through
:func:`label`: Plotly reads a subset of HTML in text (``<b>``, ``<a href>``), so stored text
is entity-escaped and is shown as written. Colours are the Okabe-Ito set (distinguishable with
colour blindness) and every series also differs by line style or carries its value as text.
"""

from __future__ import annotations

import html

BLUE, ORANGE, GREEN, VERMILLION, SKY, PURPLE, GREY = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#D55E00",
    "#56B4E9",
    "#CC79A7",
    "#6B7280",
)
SERIES = (BLUE, ORANGE, GREEN, VERMILLION, SKY, PURPLE, GREY)
FONT = "DejaVu Sans, system-ui, sans-serif"


def label(text: str) -> str:
    return html.escape(str(text), quote=False)


def _layout(y_title: str, **extra) -> dict:
    layout = {
        "font": {"family": FONT, "size": 13, "color": "#1f2933"},
        "margin": {"l": 56, "r": 16, "t": 36, "b": 48},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "#ffffff",
        "legend": {"orientation": "h", "x": 0, "y": 1.12, "font": {"size": 12}},
        "hovermode": "x unified",
        "yaxis": {"title": {"text": y_title}, "gridcolor": "#e5e7eb", "zeroline": False},
        "xaxis": {"gridcolor": "#f1f3f5"},
        "height": 320,
    }
    layout.update(extra)
    return layout


def _target_line(target: float) -> dict:
    return {
        "shapes": [
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": target,
                "y1": target,
                "line": {"color": VERMILLION, "width": 1.5, "dash": "dot"},
            }
        ],
        "annotations": [
            {
                "xref": "paper",
                "x": 1,
                "y": target,
                "xanchor": "right",
                "yanchor": "bottom",
                "text": f"target {target:g} min",
                "showarrow": False,
                "font": {"color": VERMILLION, "size": 12},
            }
        ],
    }


def waits_by_day(days: list[dict], target: float) -> dict:
    x = [d["day"] for d in days]
    n = [d["waits"] for d in days]
    return {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "median wait",
                "x": x,
                "y": [d["wait_median_min"] for d in days],
                "customdata": n,
                "hovertemplate": "median %{y:.1f} min (n = %{customdata})<extra></extra>",
                "line": {"color": BLUE, "width": 2.5},
            },
            {
                "type": "scatter",
                # Markers too: a day between two closed days is a lone point, which a line
                # alone would not draw.
                "mode": "lines+markers",
                "marker": {"size": 5, "symbol": "diamond"},
                "name": "90th percentile",
                "x": x,
                "y": [d["wait_p90_min"] for d in days],
                "hovertemplate": "p90 %{y:.1f} min<extra></extra>",
                "line": {"color": ORANGE, "width": 2, "dash": "dash"},
            },
        ],
        "layout": _layout("minutes waited", **_target_line(target)),
    }


def satisfaction_by_day(days: list[dict]) -> dict:
    """Responses as bars, Happy Index and % negative as lines over them.

    Plotly draws an overlaying axis's traces above the base axis's, so the bars take the base
    axis (shown on the right) and the lines the overlaying one (on the left): a low day's
    Happy Index is never hidden behind its own bar.
    """
    x = [d["day"] for d in days]
    return {
        "data": [
            {
                "type": "bar",
                "name": "responses (n)",
                "x": x,
                "y": [d["ratings"] for d in days],
                "marker": {"color": "#d9e2ec"},
                "hovertemplate": "n = %{y}<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "Happy Index",
                "x": x,
                "y": [d["happy_index"] for d in days],
                "yaxis": "y2",
                "line": {"color": GREEN, "width": 2.5},
                "hovertemplate": "Happy Index %{y:.1f}<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "marker": {"size": 5, "symbol": "square"},
                "name": "% negative",
                "x": x,
                "y": [d["pct_negative"] for d in days],
                "yaxis": "y2",
                "line": {"color": VERMILLION, "width": 2, "dash": "dot"},
                "hovertemplate": "%{y:.1f}% negative<extra></extra>",
            },
        ],
        "layout": _layout(
            "Happy Index / %",
            yaxis={
                "title": {"text": "responses"},
                "side": "right",
                "showgrid": False,
                "rangemode": "tozero",
                "tickmode": "auto",
                "tickformat": ",d",
            },
            yaxis2={
                "title": {"text": "Happy Index / %"},
                "overlaying": "y",
                "side": "left",
                "range": [0, 100],
                "tickmode": "linear",
                "tick0": 0,
                "dtick": 20,
                "showgrid": True,
                "gridcolor": "#e5e7eb",
            },
            margin={"l": 56, "r": 56, "t": 36, "b": 48},
        ),
    }


def by_hour(hours: list[dict], target: float) -> dict:
    x = [h["hour"] for h in hours]
    return {
        "data": [
            {
                "type": "bar",
                "name": "median wait (min)",
                "x": x,
                "y": [h["wait_median_min"] for h in hours],
                "customdata": [h["waits"] for h in hours],
                "marker": {"color": SKY},
                "hovertemplate": "median %{y:.1f} min (n = %{customdata})<extra></extra>",
            },
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "Happy Index",
                "x": x,
                "y": [h["happy_index"] for h in hours],
                "yaxis": "y2",
                "customdata": [h["ratings"] for h in hours],
                "line": {"color": GREEN, "width": 2.5},
                "hovertemplate": "Happy Index %{y:.1f} (n = %{customdata})<extra></extra>",
            },
        ],
        "layout": _layout(
            "minutes waited",
            yaxis2={
                "title": {"text": "Happy Index"},
                "overlaying": "y",
                "side": "right",
                "range": [0, 100],
                "showgrid": False,
                "tickmode": "linear",
                "dtick": 20,
            },
            margin={"l": 56, "r": 56, "t": 36, "b": 48},
            **_target_line(target),
        ),
    }


def rating_by_wait(buckets: list[dict]) -> dict:
    x = [f"{b['bucket']} min<br>n = {b['ratings']}" for b in buckets]

    def text(values):
        return ["no data" if v is None else f"{v:.0f}" for v in values]

    positive = [b["pct_positive"] for b in buckets]
    index = [b["happy_index"] for b in buckets]
    return {
        "data": [
            {
                "type": "bar",
                "name": "% positive",
                "x": x,
                "y": positive,
                "text": [t if t == "no data" else t + "%" for t in text(positive)],
                "textposition": "outside",
                "marker": {"color": BLUE},
                "hovertemplate": "%{y:.1f}% positive<extra></extra>",
            },
            {
                "type": "bar",
                "name": "Happy Index",
                "x": x,
                "y": index,
                "text": text(index),
                "textposition": "outside",
                "marker": {"color": GREEN},
                "hovertemplate": "Happy Index %{y:.1f}<extra></extra>",
            },
        ],
        "layout": _layout(
            "% positive / Happy Index",
            barmode="group",
            yaxis={"title": {"text": "0–100"}, "range": [0, 108], "gridcolor": "#e5e7eb"},
            xaxis={"title": {"text": "waiting time"}},
            height=360,
        ),
    }


def reasons_over_time(days: list[dict], tags: list[str]) -> dict:
    x = [d["day"] for d in days]
    return {
        "data": [
            {
                "type": "bar",
                "name": label(tag.replace("_", " ")),
                "x": x,
                "y": [d["tags"].get(tag, 0) for d in days],
                "marker": {"color": SERIES[i % len(SERIES)]},
                "hovertemplate": f"{label(tag)}: %{{y}}<extra></extra>",
            }
            for i, tag in enumerate(tags)
        ],
        "layout": _layout(
            "negative ratings with this tag",
            barmode="stack",
            legend={"orientation": "h", "x": 0, "y": 1.12, "traceorder": "normal"},
        ),
    }


def compare_bars(rows: list[dict], field: str, title: str, unit: str, color: str) -> dict:
    """One horizontal bar per group shown; groups under the threshold are left out."""
    shown = [
        r for r in rows if not r[f"{'ratings' if field != 'wait_median_min' else 'waits'}_hidden"]
    ]
    names = [label(r["name"]) for r in shown]
    values = [r[field] for r in shown]
    counts = [r["ratings"] if field != "wait_median_min" else r["waits"] for r in shown]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": title,
                "y": names,
                "x": values,
                "text": [
                    f"{v:.1f}{unit} (n = {n})" if v is not None else "no data"
                    for v, n in zip(values, counts, strict=True)
                ],
                "textposition": "auto",
                "marker": {"color": color},
                "hovertemplate": "%{y}: %{text}<extra></extra>",
            }
        ],
        "layout": _layout(
            "",
            xaxis={"title": {"text": title}, "gridcolor": "#e5e7eb", "rangemode": "tozero"},
            yaxis={"automargin": True, "autorange": "reversed"},
            height=max(180, 60 + 44 * len(shown)),
            hovermode="closest",
            margin={"l": 16, "r": 16, "t": 16, "b": 48},
        ),
    }
