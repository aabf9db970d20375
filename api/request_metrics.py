"""Request latency per route, as a Prometheus histogram summed over every API process.

Each process counts into buckets in memory (a dict update per request) and adds its counts to one Redis
hash about once a second, so /metrics — answered by whichever process the scrape reaches — shows every
process's requests. Routes are their templates (`/api/v1/models/{model_id}`), never raw paths: a scan of
a million ids costs a million requests, not a million time series.
"""
import threading
import time
from collections import defaultdict

from runners.dispatch import get_redis

KEY = "evalboard:http:latency"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5, 5.0, 10.0)
FLUSH_EVERY_S = 1.0
UNMATCHED = "(unmatched)"
# Methods are a label too: any other token (HTTP allows made-up ones) counts as OTHER, or each one a client
# invents would be a new series kept in Redis for good.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_counts: dict[str, float] = defaultdict(float)
_lock = threading.Lock()
_flusher: threading.Thread | None = None


def observe(method: str, route: str, seconds: float) -> None:
    series = f"{method} {route}"
    with _lock:
        for bound in BUCKETS:
            if seconds <= bound:
                _counts[f"{series}|{bound}"] += 1
                break  # cumulative counts are made when shown: one increment per request here
        else:
            _counts[f"{series}|+Inf"] += 1
        _counts[f"{series}|sum"] += seconds
    _ensure_flusher()


def flush() -> None:
    with _lock:
        pending = dict(_counts)
        _counts.clear()
    if not pending:
        return
    try:
        pipe = get_redis().pipeline(transaction=False)
        for field, value in pending.items():
            pipe.hincrbyfloat(KEY, field, value)
        pipe.execute()
    except Exception:  # Redis away: keep the counts for the next flush
        with _lock:
            for field, value in pending.items():
                _counts[field] += value


def _flush_forever() -> None:
    while True:
        time.sleep(FLUSH_EVERY_S)
        flush()


def _ensure_flusher() -> None:
    global _flusher
    if _flusher is None or not _flusher.is_alive():
        with _lock:
            if _flusher is None or not _flusher.is_alive():
                _flusher = threading.Thread(target=_flush_forever, daemon=True, name="latency-flush")
                _flusher.start()


def histogram_lines() -> list[str]:
    """The histogram in Prometheus text format (cumulative buckets, _sum, _count) per method and route."""
    flush()
    raw = {k.decode(): float(v) for k, v in get_redis().hgetall(KEY).items()}
    series: dict[str, dict[str, float]] = defaultdict(dict)
    for field, value in raw.items():
        name, _, bound = field.rpartition("|")
        series[name][bound] = value
    name = "evalboard_http_request_duration_seconds"
    lines = [f"# HELP {name} API request latency by method and route (all API processes).",
             f"# TYPE {name} histogram"]
    for key in sorted(series):
        method, _, route = key.partition(" ")
        labels = f'method="{method}",route="{_escape(route)}"'
        total = 0.0
        for bound in (*BUCKETS, "+Inf"):
            total += series[key].get(str(bound), 0.0)
            lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {int(total)}')
        lines.append(f"{name}_sum{{{labels}}} {round(series[key].get('sum', 0.0), 6)}")
        lines.append(f"{name}_count{{{labels}}} {int(total)}")
    return lines


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class RequestTimer:
    """ASGI middleware: the time from request to the end of the response body, by route template."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "OTHER"
            observe(method, route_template(scope), time.perf_counter() - started)


def route_template(scope) -> str:
    """The matched route's template with the prefix it was included under (`/api/v1` + `/models/{model_id}`).

    FastAPI hands the route as declared in its router, without the include's prefix: the prefix is the part
    of the path before the part the route's own pattern matches whole."""
    route, path = scope.get("route"), scope.get("path", "")
    template, pattern = getattr(route, "path", None), getattr(route, "path_regex", None)
    if template is None:
        return UNMATCHED
    if pattern is not None and not pattern.fullmatch(path):
        for cut in (i for i, ch in enumerate(path) if ch == "/" and i > 0):
            if pattern.fullmatch(path[cut:]):
                return path[:cut] + template
    return template
