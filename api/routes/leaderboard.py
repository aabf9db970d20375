"""The ranked board: filters, search, sort, pages, and CSV/JSON export of exactly what the board shows."""
import csv
import io
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.board import (
    Filters,
    column_value,
    columns_of,
    current_board,
    fast_json,
    flat_record,
    sort_rows,
)
from api.deps import SessionDep
from core.errors import InvalidRequestError
from core.results import csv_cell

router = APIRouter(prefix="/leaderboard", tags=["leaderboard"])

ListParam = Annotated[list[str] | None, Query(description="repeat the parameter or separate values by commas")]


def _split(values: list[str] | None) -> list[str] | None:
    return [v.strip() for value in values for v in value.split(",") if v.strip()] if values else None


@router.get("", responses={200: {"content": {"application/json": {}, "text/csv": {}}}})
def leaderboard(
    session: SessionDep,
    limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0),
    family: ListParam = None, precision: ListParam = None, hardware_class: ListParam = None, license: ListParam = None,
    params_min: int | None = Query(None, ge=0), params_max: int | None = Query(None, ge=0),
    include_flagged: bool = Query(False, description="also show models flagged by an admin"),
    q: str | None = Query(None, description="words match the model name; `family:clip`, `owner:alice`, "
                                            "`license:`, `precision:`, `hardware:` match those fields"),
    normalised: bool = Query(True, description="false: raw primary-metric means instead of normalised ones"),
    sort: str | None = Query(None, description="a column, `-column` for descending; default: rank"),
    format: Literal["csv", "json"] | None = Query(None, description="export the board's rows as shown"),
    columns: str | None = Query(None, description="export only these columns, comma-separated, in this order"),
):
    """Ranked models: each task's latest finished primary score, normalised and aggregated, with
    95% bootstrap intervals and rank bands (GET /aggregation gives the formulas)."""
    board = current_board(session)
    known = columns_of(board)
    if sort and sort.lstrip("-") not in known:
        raise InvalidRequestError(f"cannot sort by {sort.lstrip('-')!r}; columns: {', '.join(known)}", field="sort")
    chosen = known
    if columns:
        chosen = [c.strip() for c in columns.split(",") if c.strip()]
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise InvalidRequestError(f"unknown columns {', '.join(unknown)}; columns: {', '.join(known)}",
                                      field="columns")
    filters = Filters(family=_split(family), precision=_split(precision), hardware_class=_split(hardware_class),
                      license=_split(license), params_min=params_min, params_max=params_max, q=q)
    rows = board.view(normalised=normalised, include_flagged=include_flagged)
    if filters.active:
        keep = filters.matcher()
        rows = [r for r in rows if keep(r)]
    rows = sort_rows(rows, sort, normalised)
    page = rows[offset:offset + limit]
    if format is None:
        # Rows are plain JSON-ready dicts: encoded directly, as FastAPI's generic encoder walked every
        # value of the page (measured: 55% of a 10,000-model board request).
        return Response(fast_json({"total": len(rows), "limit": limit, "offset": offset, "normalised": normalised,
                                   "capabilities": board.capabilities, "tasks": board.tasks, "rows": page}),
                        media_type="application/json")
    records = [flat_record(r, chosen, normalised) for r in page]
    headers = {"X-Total-Count": str(len(rows)),
               "Content-Disposition": f'attachment; filename="evalboard-leaderboard.{format}"'}
    if format == "json":
        return Response(json.dumps(records, ensure_ascii=False), media_type="application/json", headers=headers)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=chosen, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in record.items()} for record in records)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/facets")
def facets(session: SessionDep) -> dict:
    """What the board's filters can choose from, and the columns it can show."""
    board = current_board(session)
    rows = board.view()

    def values(key: str) -> list[str]:
        # From the unranked rows: ranking the flagged view here would cost a second bootstrap.
        return sorted({getattr(r, key) for r in board.rows if getattr(r, key)})
    params = [r["params"] for r in rows if r["params"] is not None]
    return {"total": len(rows), "families": values("family"), "precisions": values("precision"),
            "hardware_classes": values("hardware_class"), "licenses": values("license"),
            "capabilities": board.capabilities, "tasks": board.tasks,
            "efficiency_metrics": board.efficiency_metrics, "columns": columns_of(board),
            "params_min": min(params, default=None), "params_max": max(params, default=None),
            "flagged": sum(1 for r in board.rows if r.flagged)}


@router.get("/efficiency")
def efficiency(session: SessionDep, metric: str | None = None) -> dict:
    """Score against efficiency: one point per (model, hardware class, metric) with the model's overall."""
    board = current_board(session)
    by_id = {r["model_id"]: r for r in board.view()}
    flagged = {r.model_id for r in board.rows if r.flagged}
    # A model measured for efficiency only still gets its points, with no overall score to plot against.
    points = [{"model_id": e["model_id"], "model": e["model"],
               "overall": column_value(by_id[e["model_id"]], "overall") if e["model_id"] in by_id else None,
               "hardware_class": e["hardware_class"], "precision": e["precision"], "metric": e["metric"],
               "value": e["value"], "stderr": e["stderr"], "n": e["n"], "unit": e["unit"],
               "higher_is_better": e["higher_is_better"], "hardware_profile_id": e["hardware_profile_id"]}
              for e in board.efficiency if e["model_id"] not in flagged and (metric is None or e["metric"] == metric)]
    return {"metrics": board.efficiency_metrics, "points": points}
