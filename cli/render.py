"""Rich tables for the terminal: a submission's runs, and its results."""
from rich.table import Table


def submission_table(sub: dict) -> Table:
    table = Table(title=f"{sub['model_name']} · {sub['suite']} · {sub['hardware_class']} · {sub['status']}")
    for column in ("task", "status", "stage", "progress", "queue", "scores / error"):
        table.add_column(column)
    for run in sub["runs"]:
        scores = ", ".join(f"{k}={v:.3f}" for k, v in sorted(run["scores"].items()))
        detail = scores or (f"[{run['error_kind']}] {run['error']}" if run["error"] else "")
        queue = "" if run["queue_position"] is None else str(run["queue_position"])
        table.add_row(run["task"], run["status"], run["stage"] or "", f"{run['progress']:.0%}", queue, detail)
    return table


def results_table(payload: dict) -> Table:
    sub = payload["submission"]
    table = Table(title=f"{sub['model_name']} · {sub['suite']} · {sub['status']}")
    for column in ("task", "capability", "metric", "value", "± stderr", "n"):
        table.add_column(column)
    for task in payload["tasks"]:
        for m in task["metrics"]:
            stderr = "" if m["stderr"] is None else f"{m['stderr']:.4f}"
            name = f"{m['metric']} *" if m["primary"] else m["metric"]
            table.add_row(task["task"], task["capability"], name, f"{m['value']:.4f}", stderr, str(m["n"] or ""))
    return table
