"""Chart specs (altair) and the small geometry they need; no data fetching here."""
import math

import altair as alt
import pandas as pd


def pareto_front(points: list[tuple[float, float]], *, x_higher_is_better: bool = True) -> list[int]:
    """Indices of the points no other point beats on both axes (score: higher is better).

    A point is dominated when another is at least as good on both axes and better on one.
    """
    def better_x(a: float, b: float) -> bool:
        return a > b if x_higher_is_better else a < b

    front = []
    for i, (x, y) in enumerate(points):
        dominated = any((better_x(ox, x) or ox == x) and oy >= y and (better_x(ox, x) or oy > y)
                        for j, (ox, oy) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


RINGS = (25, 50, 75, 100)


def radar(capabilities: dict[str, float], title: str = "") -> alt.LayerChart:
    """Capability scores (points, 0 = chance, 100 = perfect) on spokes around a circle, each grid ring
    labelled with the score it stands for, so the shape can be read as numbers."""
    names = list(capabilities)
    angle = {name: math.pi / 2 - 2 * math.pi * i / len(names) for i, name in enumerate(names)}
    shape = pd.DataFrame([{"capability": n, "score": capabilities[n], "order": i,
                           "x": max(capabilities[n], 0) * math.cos(angle[n]),
                           "y": max(capabilities[n], 0) * math.sin(angle[n])}
                          for i, n in enumerate(names + names[:1])])  # closed outline
    grid = pd.DataFrame([{"ring": r, "order": i, "x": r * math.cos(angle[n]), "y": r * math.sin(angle[n])}
                         for r in RINGS for i, n in enumerate(names + names[:1])])
    labels = pd.DataFrame([{"capability": n, "x": 115 * math.cos(angle[n]), "y": 115 * math.sin(angle[n])}
                           for n in names])
    # The scale: each ring's value written where it crosses the vertical axis, between the first two spokes.
    ring_labels = pd.DataFrame([{"text": str(r), "x": 4, "y": r} for r in RINGS] + [{"text": "0", "x": 4, "y": 0}])
    scale = alt.Scale(domain=[-130, 130])
    x, y = alt.X("x:Q", scale=scale, axis=None), alt.Y("y:Q", scale=scale, axis=None)
    rings = alt.Chart(grid).mark_line(color="#ddd").encode(x=x, y=y, detail="ring:N", order="order:Q")
    outline = alt.Chart(shape).mark_line(point=True, filled=True, opacity=0.8).encode(
        x=x, y=y, order="order:Q", tooltip=["capability", alt.Tooltip("score:Q", format=".1f")])
    text = alt.Chart(labels).mark_text(fontSize=12).encode(x=x, y=y, text="capability")
    scale_text = alt.Chart(ring_labels).mark_text(fontSize=10, color="#888", align="left", baseline="bottom").encode(
        x=x, y=y, text="text")
    return (rings + scale_text + outline + text).properties(width=360, height=360, title=title)


def interval_chart(frame: pd.DataFrame, *, label: str, value: str, low: str, high: str, x_title: str,
                   color: str | None = None, reference: str | None = None,
                   height_per_row: int = 26) -> alt.LayerChart:
    """One dot per row at `value` with a bar from `low` to `high` (its 95% interval), rows top to bottom
    in the frame's order; `color` groups rows (e.g. models on one aggregate), `reference` is a column
    drawn as a grey tick on each row (e.g. the chance level). Rows without an interval get the dot alone."""
    order = list(dict.fromkeys(frame[label]))
    y = alt.Y(f"{label}:N", sort=order, title=None, axis=alt.Axis(labelLimit=260))
    colour = {"color": alt.Color(f"{color}:N", title=None)} if color else {}
    offset = {"yOffset": alt.YOffset(f"{color}:N")} if color else {}
    tooltip = [alt.Tooltip(f"{c}:N") for c in dict.fromkeys([label] + ([color] if color else []))] + [
        alt.Tooltip(f"{value}:Q", format=".1f"), alt.Tooltip(f"{low}:Q", format=".1f", title="95% low"),
        alt.Tooltip(f"{high}:Q", format=".1f", title="95% high")]
    base = alt.Chart(frame).encode(y=y, **offset, **colour)
    bars = base.mark_rule(strokeWidth=3, opacity=0.55).encode(
        x=alt.X(f"{low}:Q", title=x_title, scale=alt.Scale(zero=False)), x2=f"{high}:Q")
    dots = base.mark_circle(size=80, opacity=1).encode(x=f"{value}:Q", tooltip=tooltip)
    if reference:
        ticks = alt.Chart(frame).mark_tick(color="#999", thickness=2).encode(
            y=y, x=f"{reference}:Q", tooltip=[alt.Tooltip(f"{label}:N"), alt.Tooltip(f"{reference}:Q", format=".1f")])
        return (ticks + bars + dots).properties(height=alt.Step(height_per_row))
    # A step per row (per row and group with `color`): the chart grows with its rows, labels never overlap.
    return (bars + dots).properties(height=alt.Step(height_per_row))


def efficiency_scatter(frame: pd.DataFrame, metric: str, unit: str | None) -> alt.LayerChart:
    """Score against an efficiency metric, one colour per hardware class, the Pareto front joined up.

    `frame` has columns model, hardware_class, value, score and pareto (bool), and optionally
    stderr: each measured figure is drawn with its ±1 standard error as a horizontal bar.
    """
    x_title = f"{metric} ({unit})" if unit else metric
    base = alt.Chart(frame).encode(
        x=alt.X("value:Q", title=x_title), y=alt.Y("score:Q", title="overall (normalised, points)"),
        color=alt.Color("hardware_class:N", title="hardware"))
    dots = base.mark_circle(size=70).encode(
        tooltip=["model", "hardware_class", alt.Tooltip("value:Q", title=metric), alt.Tooltip("score:Q", format=".1f")],
        opacity=alt.condition("datum.pareto", alt.value(1.0), alt.value(0.35)))
    front = base.transform_filter("datum.pareto").mark_line(strokeDash=[4, 3]).encode(
        order="value:Q", detail="hardware_class:N")
    layers = dots + front
    if "stderr" in frame and frame["stderr"].notna().any():
        bars = alt.Chart(frame.assign(low=frame["value"] - frame["stderr"], high=frame["value"] + frame["stderr"])
                         .dropna(subset=["stderr"])).mark_rule(opacity=0.6).encode(
            x="low:Q", x2="high:Q", y="score:Q", color=alt.Color("hardware_class:N", title="hardware"))
        layers = bars + layers
    return layers.properties(height=420)
