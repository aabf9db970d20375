"""The ranked board, one track at a time: filters, search, sort, pages, and CSV/JSON export of exactly what
the board shows; the tracks and their rules; efficiency, its own view per hardware class.

Every answer here is read from the published board (api/board_snapshot.py) and carries its version as
ETag: a client that sends it back gets 304, and a repeated query is served from encoded bytes
(api/http_cache.py)."""
import csv
import io
import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from api import board_snapshot
from api.board_view import Filters, fast_json, flat_record, parse_search
from api.http_cache import Encoded, cached_async
from api.schemas import BoardFacets, EfficiencyView, LeaderboardPage, TrackSummary
from api.served_board import ServedTrack
from core.errors import InvalidRequestError, RateLimitedError
from core.results import csv_cell
from core.tracks import Track, get_track, load_tracks
from runners.dispatch import get_redis

router = APIRouter(prefix="/leaderboard", tags=["leaderboard"])
MAX_PARAMS = 10**15  # parameter counts filtered by: far above any model, exact as a float
MAX_SEARCH_CHARS = 200

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


@router.get("", response_model=LeaderboardPage | list[dict[str, Any]],
            responses={200: {"description": "the page (or, with `format=json`, the flat records shown; with "
                                            "`format=csv`, the same as CSV)",
                             "content": {"application/json": {}, "text/csv": {}}},
                           304: {"description": "Not modified: the board version named by If-None-Match is current."}})
async def leaderboard(
    request: Request, track: TrackParam = None,
    limit: int = Query(100, ge=1, le=10_000), offset: int = Query(0, ge=0),
    family: ListParam = None, precision: ListParam = None, hardware_class: ListParam = None, license: ListParam = None,
    # Bounded: a 400-digit count passed int parsing and then overflowed float comparison (a 500).
    params_min: int | None = Query(None, ge=0, le=MAX_PARAMS),
    params_max: int | None = Query(None, ge=0, le=MAX_PARAMS),
    include_flagged: bool = Query(False, description="also show models flagged by an admin"),
    # Bounded: each search word is a pass over every row (8,000 one-letter words took 7.5 s at 10,000 rows).
    q: str | None = Query(None, max_length=MAX_SEARCH_CHARS, description=(
        "words match the model name; `family:clip`, `owner:alice`, `license:`, `precision:`, `hardware:` "
        "match those fields")),
    normalised: bool = Query(True, description="false: raw primary-metric means instead of normalised ones"),
    sort: str | None = Query(None, description="a column, `-column` for descending; default: rank"),
    format: Literal["csv", "json"] | None = Query(None, description="export the board's rows as shown"),
    columns: str | None = Query(None, description="export only these columns, comma-separated, in this order"),
):
    """One track's rows (model × precision × chat-template use): those with a score for every task of the track ranked, with
    95% intervals and rank bands from a bootstrap over items paired across models; then the partial
    ones, unranked (`rank` null), with their coverage and missing tasks (GET /aggregation and
    GET /leaderboard/tracks give the rules)."""
    served = await board_snapshot.served()
    filters_family = _split(family)
    on_track = chosen_track(track, filters_family)
    board_track = _served_track(served.board, on_track)
    known = board_track.columns
    if sort and sort.lstrip("-") not in known:
        raise InvalidRequestError(f"cannot sort by {sort.lstrip('-')!r}; columns: {', '.join(known)}", field="sort")
    chosen = known
    if columns:
        chosen = [c.strip() for c in columns.split(",") if c.strip()]
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise InvalidRequestError(f"unknown columns {', '.join(unknown)}; columns: {', '.join(known)}",
                                      field="columns")
        # Each column is a cell per exported row: 2,000 repeats of one cost 20 s of CPU at 10,000 rows.
        if len(set(chosen)) != len(chosen):
            raise InvalidRequestError("columns are named once each", field="columns")
    filters = Filters(family=filters_family, precision=_split(precision), hardware_class=_split(hardware_class),
                      license=_split(license), params_min=params_min, params_max=params_max, q=q)
    parse_search(q or "")  # a bad search is a 422 before anything is cached
    if format is not None or limit > PAGE_WITHOUT_LIMIT:
        await run_in_threadpool(limit_exports, request)
    view = board_track.view(normalised, include_flagged)

    def make() -> Encoded:
        shown = view.order(view.select(filters, served.hidden), sort)
        page = shown[offset:offset + limit]
        if format is None:
            return Encoded(view.page_json({"track": on_track.id, "total": len(shown),
                                           "ranked": view.ranked_count(shown), "limit": limit, "offset": offset,
                                           "normalised": normalised, "capabilities": board_track.capabilities,
                                           "tasks": board_track.tasks}, page), "application/json")
        records = [flat_record(view.row(p), chosen, normalised) for p in page.tolist()]
        headers = {"X-Total-Count": str(len(shown)), "X-Track": on_track.id,
                   "Content-Disposition": f'attachment; filename="evalboard-{on_track.suite}.{format}"'}
        if format == "json":
            return Encoded(json.dumps(records, ensure_ascii=False).encode(), "application/json", headers)
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=chosen, lineterminator="\n")
        writer.writeheader()
        writer.writerows({key: csv_cell(value) for key, value in record.items()} for record in records)
        return Encoded(out.getvalue().encode(), "text/csv; charset=utf-8", headers)
    return await cached_async(request, served.etag, make)


# Exports and pages larger than this are counted per client address (a whole-board export at 10,000
# models costs about a second of CPU to make; the answer cache keeps none over 4 MB).
PAGE_WITHOUT_LIMIT = 1000
EXPORTS_PER_MINUTE = 30


def limit_exports(request: Request) -> None:
    """At most EXPORTS_PER_MINUTE large answers per client address and minute (429 with Retry-After)."""
    address = request.client.host if request.client else "unknown"
    minute = int(time.time() // 60)
    key = f"evalboard:exports:{address}:{minute}"
    pipe = get_redis().pipeline()
    pipe.incr(key)
    pipe.expire(key, 120)
    count = pipe.execute()[0]
    if count > EXPORTS_PER_MINUTE:
        raise RateLimitedError(f"at most {EXPORTS_PER_MINUTE} exports or pages over {PAGE_WITHOUT_LIMIT} rows a "
                               "minute from one address; try again in a minute", retry_after_s=60 - int(time.time() % 60))


def _served_track(board, track: Track) -> ServedTrack:
    served = board.track(track.id)
    if served is None:  # a suite file added since the board was built: nothing ranked on it yet
        raise InvalidRequestError(f"the board of track {track.id} is being built; try again in a few seconds",
                                  field="track")
    return served


@router.get("/tracks", response_model=list[TrackSummary])
async def tracks(request: Request):
    """Every track: its rules as the suite YAML states them, and how many rows it ranks and lists unranked."""
    served = await board_snapshot.served()

    def make() -> Encoded:
        out = []
        for t in load_tracks().values():
            counted = served.board.track(t.id)
            counts = counted.shown(served.hidden) if counted else {"ranked": 0, "unranked": 0}
            out.append({**t.describe(), "ranked": counts["ranked"], "unranked": counts["unranked"]})
        return Encoded(fast_json(out), "application/json")
    return await cached_async(request, served.etag, make)


@router.get("/facets", response_model=BoardFacets)
async def facets(request: Request, track: TrackParam = None, family: ListParam = None):
    """What the track's filters can choose from, the columns it can show, and the tracks to choose from."""
    served = await board_snapshot.served()
    chosen = chosen_track(track, _split(family))
    board_track = _served_track(served.board, chosen)

    def make() -> Encoded:
        # Without the models hidden since the build (api/served_board.py ServedTrack.shown).
        shown = board_track.shown(served.hidden)
        return Encoded(fast_json({
            "track": chosen.id, "tracks": [{"id": t.id, "family": t.family, "default": t.default_for_family,
                                            "rows": served.board.track(t.id).shown(served.hidden)["rows"]
                                            if served.board.track(t.id) else 0}
                                           for t in load_tracks().values()],
            "total": shown["total"], "ranked": shown["ranked"], **shown["facets"],
            "capabilities": board_track.capabilities, "tasks": board_track.tasks,
            "efficiency_metrics": served.board.efficiency_metrics, "columns": board_track.columns}),
            "application/json")
    return await cached_async(request, served.etag, make)


@router.get("/efficiency", response_model=EfficiencyView)
async def efficiency(request: Request, metric: str | None = Query(None, max_length=64)):
    """Efficiency, its own view per hardware class: one point per (model, hardware class, metric), beside
    the model's overall on its family's default track (its row at the measured precision where there is one)."""
    served = await board_snapshot.served()

    def make() -> Encoded:
        # A model measured for efficiency only still gets its points, with no overall score to plot against.
        points = [p for p in served.board.efficiency_points
                  if p["model_id"] not in served.hidden and (metric is None or p["metric"] == metric)]
        return Encoded(fast_json({"metrics": served.board.efficiency_metrics, "points": points}), "application/json")
    return await cached_async(request, served.etag, make)
