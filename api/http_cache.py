"""Conditional, cacheable and compressed answers for the public reads of the board.

Every board view is a function of the published board version (and the models hidden since): that is
its ETag. A client that sends it back in If-None-Match gets 304 with no body; a repeated query is a
lookup in this process's cache of encoded responses (the gzip encoding made once, on first demand).
`Cache-Control: public, max-age=MAX_AGE_S` lets a browser or proxy reuse an answer for a few seconds
without asking at all.
"""
import gzip
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

MAX_AGE_S = 5
GZIP_MIN_BYTES = 1024
CACHED_RESPONSES = 512
# A byte budget too: `?limit=10000&x=1`, `&x=2`, … are distinct queries of 30 MB answers each at 10,000
# models; without it, 1 KB requests could make the cache hold gigabytes.
CACHED_BYTES = 64 * 1024**2
LARGEST_CACHED = 4 * 1024**2
PUBLIC = f"public, max-age={MAX_AGE_S}"
# An answer that depends on who asks (a token was sent): a shared cache must not keep it.
PRIVATE = "private, no-cache"


@dataclass
class Encoded:
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)
    gzipped: bytes | None = None

    @property
    def size(self) -> int:
        # Counted as if gzipped too: the compressed copy is made on first demand, after the entry is kept.
        return len(self.body) + len(self.body) // 4

    def gzip(self) -> bytes:
        if self.gzipped is None:
            self.gzipped = gzip.compress(self.body, compresslevel=5, mtime=0)
        return self.gzipped


class ResponseCache:
    """The last CACHED_RESPONSES encoded answers of this process, by (ETag, path, its parameters), within CACHED_BYTES;
    an answer over LARGEST_CACHED (a whole-board export) is made per request and never kept."""

    def __init__(self, size: int = CACHED_RESPONSES, max_bytes: int = CACHED_BYTES):
        self.size, self.max_bytes, self.bytes = size, max_bytes, 0
        self._entries: OrderedDict[tuple, Encoded] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> Encoded | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple, entry: Encoded) -> None:
        if len(entry.body) > LARGEST_CACHED:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            self.bytes -= previous.size if previous else 0
            self._entries[key] = entry
            self.bytes += entry.size
            while len(self._entries) > self.size or self.bytes > self.max_bytes:
                self.bytes -= self._entries.popitem(last=False)[1].size

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


responses = ResponseCache()


def etag_matches(request: Request, etag: str) -> bool:
    """If-None-Match holds this ETag (or *); weak comparison, as RFC 9110 asks for GET."""
    header = request.headers.get("if-none-match")
    if not header:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def accepts_gzip(request: Request) -> bool:
    """The very test Starlette's GZipMiddleware (api/main.py) makes: whatever it would compress gets the cached
    gzip copy. A stricter test here (`x-gzip`, `gzip;q=0` refused) only sent it the plain body, which it then
    compressed afresh at level 9 on every request: a 4 MB page's worth of CPU for one header."""
    return "gzip" in request.headers.get("accept-encoding", "")


def respond(request: Request, entry: Encoded, etag: str, cache_control: str = PUBLIC) -> Response:
    headers = {**entry.headers, "ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"}
    if len(entry.body) >= GZIP_MIN_BYTES and accepts_gzip(request):
        return Response(entry.gzip(), media_type=entry.media_type, headers={**headers, "Content-Encoding": "gzip"})
    return Response(entry.body, media_type=entry.media_type, headers=headers)


def not_modified(etag: str, cache_control: str = PUBLIC) -> Response:
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control, "Vary": "Accept-Encoding"})


def query_key(request: Request) -> tuple:
    """The query as the route reads it: its own parameters only, in a fixed order. Junk parameters
    (`&x=1`, `&x=2`, …) name the same answer, so they can neither fill the cache nor bypass it."""
    route = request.scope.get("route")
    known = {p.alias for p in getattr(getattr(route, "dependant", None), "query_params", [])}
    return tuple(sorted((k, v) for k, v in request.query_params.multi_items() if k in known))


def _kept(request: Request, etag: str) -> tuple[tuple, Response | Encoded | None]:
    """(the cache key, then a 304 for a client holding this version, else the kept answer or None)."""
    key = (etag, request.url.path, query_key(request))
    return key, not_modified(etag, PUBLIC) if etag_matches(request, etag) else responses.get(key)


async def cached_async(request: Request, etag: str, make: Callable[[], Encoded]) -> Response:
    """`cached` for async routes: a 304 or a kept answer at once; an answer to make in the thread pool (a
    filter over 10,000 rows must not hold the event loop)."""
    key, kept = _kept(request, etag)
    if isinstance(kept, Response):
        return kept
    if kept is None:
        kept = await run_in_threadpool(make)
        responses.put(key, kept)
    return respond(request, kept, etag, PUBLIC)


def cached(request: Request, etag: str, make: Callable[[], Encoded], *, shared: bool = True) -> Response:
    """304 when the client holds this version; else the encoded answer for this version and query, made
    once per process. `shared=False`: the answer depends on the caller, so it is neither kept here nor
    marked public."""
    if not shared:
        if etag_matches(request, etag):
            return not_modified(etag, PRIVATE)
        return respond(request, make(), etag, PRIVATE)
    key, kept = _kept(request, etag)
    if isinstance(kept, Response):
        return kept
    if kept is None:
        kept = make()
        responses.put(key, kept)
    return respond(request, kept, etag, PUBLIC)
