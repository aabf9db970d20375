"""The ranked board, one track at a time: filters, search, sort, pages, and CSV/JSON export of exactly what
the board shows; the tracks and their rules; efficiency, its own view per hardware class."""
import csv
import io
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.board import (
    Filters,
    columns_of,
    current_board,
    fast_json,
    flat_record,
    sort_rows,
)
from api.deps import SessionDep
from core.errors import InvalidRequestError
from core.results import csv_cell
from core.tracks import Track, get_track, load_tracks

router = APIRouter(prefix="/leaderboard", tags=["leaderboard"])

ListParam = Annotated[list[str] | None, Query(description="repeat the parameter or separate values by commas")]
TrackParam = Annotated[str | None, Query(max_length=128, description=(
    "the track to rank, `suite@version` (e.g. `language-core@1.2`) or a suite name for its current version; "
    "default: the default track of `family` when one family is asked for, else the language track"))]


def _split(values: list[str] | None) -> list[str] | None:
    return [v.strip() for value in values for v in value.split(",") if v.strip()] if values else None


def chosen_track(track: str | None, family: list[str] | None) -> Track:
    """The named track, or the default one of the single family asked for (GET ?family=clip → clip-core)."""
    families = set(family or [])
    return get_track(track, next(iter(families)) if len(families) == 1 else None)


@router.get("", responses={200: {"content": {"application/json": {}, "text/csv": {}}}})
def leaderboard(
    session: SessionDep, track: TrackParam = None,
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
    """One track's rows (model × precision × chat-template use): those with a score for every task of the track ranked, with
    95% intervals and rank bands from a bootstrap over items paired across models; then the partial
    ones, unranked (`rank` null), with their coverage and missing tasks (GET /aggregation and
    GET /leaderboard/tracks give the rules)."""
    board = current_board(session)
    filters_family = _split(family)
    on_track = chosen_track(track, filters_family)
    known = columns_of(board, on_track)
    if sort and sort.lstrip("-") not in known:
        raise InvalidRequestError(f"cannot sort by {sort.lstrip('-')!r}; columns: {', '.join(known)}", field="sort")
    chosen = known
    if columns:
        chosen = [c.strip() for c in columns.split(",") if c.strip()]
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise InvalidRequestError(f"unknown columns {', '.join(unknown)}; columns: {', '.join(known)}",
                                      field="columns")
    filters = Filters(family=filters_family, precision=_split(precision), hardware_class=_split(hardware_class),
                      license=_split(license), params_min=params_min, params_max=params_max, q=q)
    rows = board.view(on_track, normalised=normalised, include_flagged=include_flagged)
    if filters.active:
        keep = filters.matcher()
        rows = [r for r in rows if keep(r)]
    rows = sort_rows(rows, sort, normalised)
    page = rows[offset:offset + limit]
    if format is None:
        # Rows are plain JSON-ready dicts: encoded directly, as FastAPI's generic encoder walked every
        # value of the page (measured: 55% of a 10,000-model board request).
        return Response(fast_json({"track": on_track.id, "total": len(rows),
                                   "ranked": sum(1 for r in rows if r["ranked"]), "limit": limit, "offset": offset,
                                   "normalised": normalised, "capabilities": board.capabilities(on_track),
                                   "tasks": board.tasks(on_track), "rows": page}),
                        media_type="application/json")
    records = [flat_record(r, chosen, normalised) for r in page]
    headers = {"X-Total-Count": str(len(rows)), "X-Track": on_track.id,
               "Content-Disposition": f'attachment; filename="evalboard-{on_track.suite}.{format}"'}
    if format == "json":
        return Response(json.dumps(records, ensure_ascii=False), media_type="application/json", headers=headers)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=chosen, lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: csv_cell(value) for key, value in record.items()} for record in records)
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/tracks")
def tracks(session: SessionDep) -> list[dict]:
    """Every track: its rules as the suite YAML states them, and how many rows it ranks and lists unranked."""
    board = current_board(session)
    out = []
    for t in load_tracks().values():
        rows = board.view(t)
        out.append({**t.describe(), "ranked": sum(1 for r in rows if r["ranked"]),
                    "unranked": sum(1 for r in rows if not r["ranked"])})
    return out


@router.get("/facets")
def facets(session: SessionDep, track: TrackParam = None, family: ListParam = None) -> dict:
    """What the track's filters can choose from, the columns it can show, and the tracks to choose from."""
    board = current_board(session)
    chosen = chosen_track(track, _split(family))
    rows = board.view(chosen)
    unranked_rows = board.rows(chosen)

    def values(key: str) -> list[str]:
        # From the unranked rows: ranking the flagged view here would cost a second bootstrap.
        return sorted({getattr(r, key) for r in unranked_rows if getattr(r, key)})
    params = [r["params"] for r in rows if r["params"] is not None]
    return {"track": chosen.id, "tracks": [{"id": t.id, "family": t.family, "default": t.default_for_family,
                                            "rows": len(board.rows(t))} for t in load_tracks().values()],
            "total": len(rows), "ranked": sum(1 for r in rows if r["ranked"]),
            "families": values("family"), "precisions": values("precision"),
            "hardware_classes": values("hardware_class"), "licenses": values("license"),
            "capabilities": board.capabilities(chosen), "tasks": board.tasks(chosen),
            "efficiency_metrics": board.efficiency_metrics, "columns": columns_of(board, chosen),
            "params_min": min(params, default=None), "params_max": max(params, default=None),
            "flagged": sum(1 for r in unranked_rows if r.flagged)}


@router.get("/efficiency")
def efficiency(session: SessionDep, metric: str | None = None) -> dict:
    """Efficiency, its own view per hardware class: one point per (model, hardware class, metric), beside
    the model's overall on its family's default track (its row at the measured precision where there is one)."""
    board = current_board(session)
    flagged = {r.model_id for rows in board.tracks.values() for r in rows if r.flagged}
    overall: dict[tuple[int, str | None], float | None] = {}
    for family in sorted({t.family for t in load_tracks().values()}):
        for row in board.view(get_track(None, family)):
            overall.setdefault((row["model_id"], row["precision"]), row["overall"])
            overall.setdefault((row["model_id"], None), row["overall"])
    # A model measured for efficiency only still gets its points, with no overall score to plot against.
    points = [{"model_id": e["model_id"], "model": e["model"],
               "overall": overall.get((e["model_id"], e["precision"]), overall.get((e["model_id"], None))),
               "hardware_class": e["hardware_class"], "precision": e["precision"], "metric": e["metric"],
               "value": e["value"], "stderr": e["stderr"], "n": e["n"], "unit": e["unit"],
               "higher_is_better": e["higher_is_better"], "hardware_profile_id": e["hardware_profile_id"]}
              for e in board.efficiency if e["model_id"] not in flagged and (metric is None or e["metric"] == metric)]
    return {"metrics": board.efficiency_metrics, "points": points}
