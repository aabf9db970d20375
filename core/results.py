"""A submission's results in the layouts people already use: JSON, CSV, lm-eval's results JSON,
and a Hugging Face `model-index` block to paste into a model card."""
import csv
import io
from dataclasses import dataclass

import yaml


@dataclass
class TaskResult:
    task: str
    capability: str
    status: str
    metrics: list[dict]
    """[{metric, value, stderr, n, primary, higher_is_better, unit}]"""
    provenance: dict


def as_json(submission: dict, results: list[TaskResult]) -> dict:
    return {"submission": submission,
            "tasks": [{"task": r.task, "capability": r.capability, "status": r.status, "metrics": r.metrics,
                       "provenance": r.provenance} for r in results]}


# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A text cell made inert for spreadsheets (a leading apostrophe); numbers stay numbers."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def as_csv(results: list[TaskResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["task", "capability", "metric", "value", "stderr", "n", "primary", "unit"])
    for r in results:
        for m in r.metrics:
            writer.writerow([csv_cell(v) for v in (r.task, r.capability, m["metric"], m["value"], m["stderr"],
                                                   m["n"], m["primary"], m.get("unit") or "")])
    return out.getvalue()


def as_lm_eval(model_name: str, results: list[TaskResult]) -> dict:
    """lm-eval's results-JSON layout ("metric,filter" keys), so its tooling reads our scores."""
    layout = {"results": {}, "versions": {}, "n-shot": {}, "n-samples": {}, "higher_is_better": {},
              "config": {"model": "hf", "model_args": f"pretrained={model_name}", "source": "evalboard"}}
    for r in results:
        name = r.provenance.get("lm_eval_task") or r.task
        entry = {"alias": name}
        for m in r.metrics:
            metric, _, filter_name = m["metric"].partition(",")
            filter_name = filter_name or "none"
            entry[f"{metric},{filter_name}"] = m["value"]
            entry[f"{metric}_stderr,{filter_name}"] = m["stderr"] if m["stderr"] is not None else "N/A"
            layout["higher_is_better"].setdefault(name, {})[metric] = m["higher_is_better"]
        layout["results"][name] = entry
        layout["versions"][name] = r.provenance.get("lm_eval_task_version")
        layout["n-shot"][name] = r.provenance.get("num_fewshot")
        n = next((m["n"] for m in r.metrics if m["n"] is not None), None)
        layout["n-samples"][name] = {"original": n, "effective": n}
    return layout


def as_model_index(model_name: str, source_url: str, results: list[TaskResult]) -> str:
    entries = []
    for r in results:
        dataset = r.provenance.get("dataset", {})
        entries.append({
            "task": {"type": "text-generation", "name": r.capability},
            "dataset": {"name": r.task, "type": f"evalboard/{dataset.get('name', r.task)}", "split": "test",
                        "revision": (dataset.get("sha256") or {}).get("test")},
            "metrics": [{"type": m["metric"], "value": round(m["value"], 6), "name": m["metric"], "verified": False}
                        for m in r.metrics],
            "source": {"name": "Evalboard", "url": source_url},
        })
    return yaml.safe_dump({"model-index": [{"name": model_name, "results": entries}]}, sort_keys=False)
