"""Rich tables for the terminal: a submission's runs, its results with their scales, your submissions."""
from rich.table import Table
from rich.text import Text

# sacrebleu's corpus metrics (as lm-eval reports them) are percentages; the other text and choice
# metrics are fractions. An efficiency metric carries its own unit.
PERCENT_METRICS = {"bleu", "chrf", "ter"}
LOWER_IS_BETTER = {"ter"}


def _plain(value: object) -> Text:
    """Author-supplied strings (names, errors) are shown as they are: never parsed as Rich markup."""
    return Text("" if value is None else str(value))


def scale_of(metric: dict) -> str:
    if metric.get("unit"):
        return str(metric["unit"])
    base = metric["metric"].partition(",")[0]
    return "0–100" if base in PERCENT_METRICS else "0–1"


def submission_table(sub: dict) -> Table:
    table = Table(title=Text(f"{sub['model_name']} · {sub['suite']} · {sub['hardware_class']} · {sub['status']}"))
    for column in ("task", "status", "stage", "progress", "queue", "scores / error"):
        table.add_column(column)
    for run in sub["runs"]:
        scores = ", ".join(f"{k}={v:.3f}" for k, v in sorted(run["scores"].items()))
        detail = scores or (f"[{run['error_kind']}] {run['error']}" if run["error"] else "")
        queue = "" if run["queue_position"] is None else str(run["queue_position"])
        table.add_row(run["task"], run["status"], _plain(run["stage"]), f"{run['progress']:.0%}", queue,
                      _plain(detail))
    return table


def results_summary(payload: dict, standing: dict | None) -> Text:
    """Overall, capabilities, rank and band of the model on the board: what the numbers add up to."""
    sub = payload["submission"]
    lines = [f"{sub['model_name']} · {sub['suite']} · {sub['hardware_class']} · {sub['precision']} · {sub['status']}"]
    if not standing or standing.get("overall") is None:
        lines.append("not on the board: a model is ranked once its tasks have finished, unless it was withdrawn, "
                     "hidden or flagged")
        return Text("\n".join(lines))
    overall = f"overall {standing['overall']:.3f}"
    if standing.get("overall_ci"):
        low, high = standing["overall_ci"]
        overall += f" (95% CI {low:.3f} to {high:.3f})"  # "to": a bound may be negative
    where = f" on track {standing['track']}" if standing.get("track") else ""
    if standing.get("rank") is None:
        missing = standing.get("missing_tasks") or []
        coverage = f" ({standing['coverage']})" if standing.get("coverage") else ""
        place = f"not ranked{where}: only models with every task are ranked{coverage}" + (
            f"; missing {', '.join(missing)}" if missing else "")
        lines.append(f"{overall} over the tasks done · {place}")
    else:
        place = f"rank {standing['rank']}" + (f" of {standing['of']}" if standing.get("of") else "") + where
        if standing.get("rank_range"):
            best, worst = standing["rank_range"]
            if best != worst:
                place += f" (could be {best}–{worst})"
        band = f"band {standing['band']}" if standing.get("band") is not None else "no band"
        lines.append(f"{overall} · {place} · {band}")
    capabilities = standing.get("capabilities") or {}
    if capabilities:
        lines.append("capabilities: " + ", ".join(f"{name} {value:.3f}" for name, value in capabilities.items()))
    lines.append("overall and capabilities are normalised: 0 = random guessing, 1 = perfect; a band groups models "
                 "whose intervals overlap")
    return Text("\n".join(lines))


def results_table(payload: dict) -> Table:
    sub = payload["submission"]
    table = Table(title=Text(f"{sub['model_name']} · {sub['suite']} · {sub['status']}"))
    for column in ("task", "capability", "metric", "value", "± stderr", "scale", "n"):
        table.add_column(column)
    for task in payload["tasks"]:
        for m in task["metrics"]:
            stderr = "" if m["stderr"] is None else f"{m['stderr']:.4f}"
            name = f"{m['metric']} *" if m["primary"] else m["metric"]
            scale = scale_of(m)
            if m.get("higher_is_better") is False or m["metric"].partition(",")[0] in LOWER_IS_BETTER:
                scale += ", lower is better"
            table.add_row(task["task"], task["capability"], name, f"{m['value']:.4f}", stderr, _plain(scale),
                          str(m["n"] or ""))
    return table


def results_legend(payload: dict) -> Text:
    units = sorted({m["unit"] for t in payload["tasks"] for m in t["metrics"] if m.get("unit")})
    return Text("* primary metric: the one the board ranks by, normalised against the task's random baseline. "
                "Scales: acc, exact_match, f1 and rouge are 0–1; bleu, chrf and ter are 0–100"
                + (f"; units: {', '.join(units)}." if units else "."))


def submissions_table(page: dict) -> Table:
    table = Table(title=f"your submissions: {len(page['items'])} of {page['total']}, newest first")
    table.add_column("id", no_wrap=True)  # copied into other commands: never wrapped
    for column in ("model", "suite", "hardware", "status", "tasks done", "submitted"):
        table.add_column(column)
    for sub in page["items"]:
        done = sum(1 for run in sub["runs"] if run["status"] == "finished")
        table.add_row(sub["id"], _plain(sub["model_name"]), sub["suite"], sub["hardware_class"], sub["status"],
                      f"{done}/{len(sub['runs'])}", sub["submitted_at"][:19].replace("T", " "))
    return table
