"""The board as a reader sees it: filters and the search language, sorting, the columns a track shows,
and the flat records of CSV/JSON export. Pure functions over ranked row dicts (api/board.py makes
them, api/board_snapshot.py shares them between API processes); nothing here reads the database."""
import json
import shlex
from dataclasses import dataclass
from datetime import datetime

from core.errors import InvalidRequestError
from core.tracks import Track

SEARCH_FIELDS = {"model": "model", "name": "model", "owner": "owner", "family": "family", "license": "license",
                 "precision": "precision", "hardware": "hardware_class", "hardware_class": "hardware_class"}


@dataclass
class Filters:
    """What a board request narrows the rows to (applied by api/served_board.py's ServedView.select)."""
    family: list[str] | None = None
    params_min: int | None = None
    params_max: int | None = None
    precision: list[str] | None = None
    hardware_class: list[str] | None = None
    license: list[str] | None = None
    q: str | None = None


def parse_search(query: str) -> list[tuple[str, str]]:
    """`family:clip owner:alice gpt` → [(family, clip), (owner, alice), (model, gpt)]; all must match.

    Plain words match the model name; `field:value` matches that field; both are case-insensitive
    substring matches. Quotes group words: `owner:"big lab"`.
    """
    try:
        words = shlex.split(query)
    except ValueError:  # an unbalanced quote: take the words as they are
        words = query.split()
    terms = []
    for word in words:
        key, sep, value = word.partition(":")
        if not sep:
            terms.append(("model", word.lower()))
        elif key.lower() in SEARCH_FIELDS:
            terms.append((SEARCH_FIELDS[key.lower()], value.lower()))
        else:
            raise InvalidRequestError(f"unknown search field {key!r}; use one of: "
                                      f"{', '.join(sorted(SEARCH_FIELDS))}, or plain words for the model name",
                                      field="q")
    return list(dict.fromkeys(terms))  # a word said twice is one more pass over every row for nothing


def column_value(row: dict, column: str, normalised: bool = True):
    """A row's value for a board column: a top-level field, a capability, `task:NAME` or `eff:METRIC`."""
    if column in row and not isinstance(row[column], dict):
        return row[column]
    if column.startswith("task:"):
        score = row["tasks"].get(column[5:])
        return None if score is None else score["normalised" if normalised else "raw"]
    if column.startswith("eff:"):
        return row["efficiency"].get(column[4:])
    return row["capabilities"].get(column)


BASE_COLUMNS = ["rank", "rank_range", "band", "row_id", "model_id", "model", "owner", "family", "params",
                "precision", "chat_template", "hardware_class", "license", "flagged", "track", "coverage",
                "missing_tasks", "overall", "overall_low", "overall_high", "interval_method"]
# Only on tracks that report a contamination gap (a fresh draw of a bundled set), in points.
CONTAMINATION_COLUMNS = ["contamination_gap", "contamination_gap_stderr"]


def _points(value: float | None) -> float | None:
    """Display units: ×100, one decimal (normalised 0 = chance, 100 = perfect)."""
    return None if value is None else round(100 * value, 1)


def _json_default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def fast_json(payload: dict) -> bytes:
    """JSON as Starlette's JSONResponse writes it (no NaN, compact, UTF-8), without FastAPI's walk."""
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"),
                      default=_json_default).encode()


def columns_for(track: Track, capabilities: list[str], tasks: list[str], efficiency_metrics: list[str]) -> list[str]:
    """Every column a track's board can show, sort by and export, in display order."""
    columns = list(BASE_COLUMNS)
    if track.contamination_tasks:
        columns += CONTAMINATION_COLUMNS
    for c in capabilities:
        columns += [c, f"{c}_low", f"{c}_high"]
    columns += [f"task:{t}" for t in tasks]
    columns += [f"eff:{m}" for m in efficiency_metrics]
    return columns


def flat_record(row: dict, columns: list[str], normalised: bool) -> dict:
    """One board row in display units. Score columns are points; `eff:` columns keep their unit."""
    low_high = {"overall": row["overall_ci"], **row["capabilities_ci"]}
    record = {}
    for column in columns:
        if column == "rank_range":
            best_worst = row["rank_range"]
            record[column] = None if best_worst is None else (
                str(best_worst[0]) if best_worst[0] == best_worst[1] else f"{best_worst[0]}-{best_worst[1]}")
        elif column.endswith(("_low", "_high")) and column.rsplit("_", 1)[0] in low_high:
            name, end = column.rsplit("_", 1)
            bounds = low_high.get(name)
            record[column] = None if bounds is None else _points(bounds[0 if end == "low" else 1])
        elif column == "overall" or column in row["capabilities"] or column.startswith("task:") \
                or column in CONTAMINATION_COLUMNS:
            record[column] = _points(column_value(row, column, normalised))
        elif column == "missing_tasks":
            record[column] = "; ".join(row["missing_tasks"])
        elif column.startswith("eff:"):
            record[column] = column_value(row, column, normalised)
        else:
            record[column] = column_value(row, column, normalised)
    return record
