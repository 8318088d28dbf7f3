"""The push API (docs/openapi-push.yaml): create, read, list and cancel pushes over HTTP, with bearer tokens.

:func:`make_app` builds the aiohttp application; the daemon serves it through
:class:`gateway.ops.http_listener.HttpListener` like every listener (the body limit, 413, is the listener's).

- Authentication: ``Authorization: Bearer TOKEN`` (RFC 6750 §2.1), looked up by its hash in the store and kept
  for ``ApiSettings.token_cache_s`` (5 s): a token revoked by ``ussd-gateway token revoke`` in another process is
  refused within that time, and the store is not asked on every request. Scopes
  ``push:write`` (POST, DELETE) and ``push:read`` (GET); a token's MSISDN prefix limits the pushes it may create
  (403) and see (404: another's push does not exist for it); its rate is a token bucket in memory.
- Validation: msgspec (one small C extension, no dependencies of its own) checks each field's type and bounds
  from the declarations in :data:`FIELDS`, converted one field at a time so that an error names its field; what
  a type cannot say (the text fits one USSD-String, a known route, an http(s) URL) is checked by hand after it.
- Idempotency (``Idempotency-Key``, Stripe's rules, design.md §8): the store keeps (token, key, hash of the
  request); the same key and body replay the first push (``Idempotent-Replayed: true``), never a second one.
- Group commits (design.md §8): the creations of one loop turn go to the store together (:class:`_Creator`, one
  transaction for all, each request with its own answer), as the push service's state changes do.
- Every error is ``{"error": {"code", "message", "field"}}`` with ``field`` null when no single field is at
  fault: the contract's shape, the listener's own answers (413, 408, 431) included (``ERROR_BODY``). It is not
  RFC 9457's problem+json, whose members differ, but keeps its point: a stable machine-readable code beside a
  human message. Never a traceback, and never the token: only the token's name is ever logged.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web
from yarl import URL

from gateway.codecs import dcs as dcs_mod
from gateway.codecs import ussd_string
from gateway.codecs.errors import TextEncodingError
from gateway.ops import logs
from gateway.ops.http_listener import BODY_LIMIT, ERROR_BODY
from gateway.push import tokens
from gateway.push.model import Mode, State
from gateway.push.store import (
    CampaignNotFoundError,
    Created,
    Creation,
    IdempotencyInFlightError,
    IdempotencyMismatchError,
    NotCancellableError,
    Push,
    PushNotFoundError,
    PushStore,
    Token,
    new_push,
)

READ, WRITE = "push:read", "push:write"
SCOPES = (READ, WRITE)
METADATA_MAX_BYTES = 4096  # metadata is echoed in every answer and callback: a label, not a payload
PAGE_DEFAULT, PAGE_MAX = 50, 200
IDEMPOTENCY_KEY_MAX = 255
TOKEN_CACHE_MAX = 1024  # tokens kept at once (the oldest looked up goes first)
MSISDN_PATTERN = "^[1-9][0-9]{0,14}$"  # E.164: a country code (never 0) and at most 15 digits in all
_IDEMPOTENCY_KEY = re.compile(rf"[\x21-\x7e]{{1,{IDEMPOTENCY_KEY_MAX}}}")  # visible ASCII

Msisdn = Annotated[str, msgspec.Meta(pattern=MSISDN_PATTERN)]
# The request body's fields and what msgspec checks of each; the rest is checked in _parse_create.
FIELDS: dict[str, Any] = {
    "msisdn": Msisdn,
    "text": Annotated[str, msgspec.Meta(min_length=1)],
    "mode": Mode,
    "route": Annotated[str, msgspec.Meta(min_length=1, max_length=64)],
    "callback_url": Annotated[str, msgspec.Meta(max_length=2048)],
    "ttl_s": Annotated[float, msgspec.Meta(gt=0)],
    "expires_at": Annotated[datetime, msgspec.Meta(tz=True)],  # RFC 3339 with an offset
    "dcs": Annotated[int, msgspec.Meta(ge=0, le=255)],
    "language": Annotated[str, msgspec.Meta(pattern="^[a-z]{2}$")],  # ISO 639-1
    "priority": Annotated[int, msgspec.Meta(ge=0, le=100)],
    "metadata": dict[str, Any],
}
REQUIRED = ("msisdn", "text")


@dataclass(frozen=True, slots=True)
class ApiSettings:
    default_ttl_s: float = 86_400.0  # a push without ttl_s or expires_at
    max_ttl_s: float = 7 * 86_400.0
    retention_s: float = 7 * 86_400.0  # an idempotency key is honoured this long (then the store purges it)
    # A CSV campaign upload's own body limit (streamed into the store, never held whole; about a million
    # recipients), given to the listener for that request only (gateway/push/campaign_api.py).
    max_upload_bytes: int = 32 * 1024 * 1024
    # How long a token looked up in the store is trusted without asking again: a revocation takes effect within
    # it. 0: every request asks the store.
    token_cache_s: float = 5.0
    clock: Callable[[], float] = field(default=time.time)  # Unix seconds: the pushes' times and the rate buckets


class ApiError(Exception):
    """An answer other than success: its status, code, message, the field at fault and extra headers."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = dict(headers or {})


def _invalid(field: str | None, message: str) -> ApiError:
    # RFC 9110 §15.5.21: 422 when the content is well-formed JSON but its values are not acceptable.
    return ApiError(422, "invalid_field", message, field)


# The codes of the listener's own answers and of aiohttp's routing errors, by status.
_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          408: "request_timeout", 409: "conflict", 413: "body_too_large", 414: "uri_too_long",
          415: "unsupported_media_type", 422: "invalid_field", 429: "rate_limited", 431: "headers_too_large",
          500: "internal_error"}  # fmt: skip


def error_body(status: int, message: str, code: str | None = None, field: str | None = None) -> dict[str, Any]:
    """The contract's error object; also the listener's error shape for this application (``ERROR_BODY``)."""
    return {"error": {"code": code or _CODES.get(status, "error"), "message": message, "field": field}}


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def push_view(push: Push) -> dict[str, Any]:
    """The push object of the API (times as RFC 3339 UTC strings; the store keeps Unix seconds)."""
    view: dict[str, Any] = {
        "id": push.id, "msisdn": push.msisdn, "text": push.text, "mode": push.mode.value, "state": push.state.value,
        "cause": push.cause, "answer": push.answer, "attempts": push.attempts,
        "created_at": rfc3339(push.created_at), "updated_at": rfc3339(push.updated_at),
        "expires_at": rfc3339(push.expires_at), "campaign": push.campaign, "metadata": dict(push.metadata),
        "priority": push.priority,
        "history": [{"state": h.state.value, "time": rfc3339(h.at), "detail": h.detail} for h in push.history],
    }  # fmt: skip
    if push.route is not None:
        view["route"] = push.route
    if push.callback_url is not None:
        view["callback_url"] = push.callback_url
    return view


class _Buckets:
    """A token bucket per API token (its ``rate`` pushes a second, a burst of one second's worth, at least 1)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._state: dict[str, tuple[float, float]] = {}  # token name -> (tokens, at)

    def take(self, name: str, rate: float) -> float:
        """0 when a push may go now (and it is counted), else the seconds until one may."""
        now = self._clock()
        burst = max(1.0, rate)
        tokens_, at = self._state.get(name, (burst, now))
        tokens_ = min(burst, tokens_ + (now - at) * rate)
        if tokens_ >= 1.0:
            self._state[name] = (tokens_ - 1.0, now)
            return 0.0
        self._state[name] = (tokens_, now)
        return (1.0 - tokens_) / rate


class _TokenCache:
    """The live tokens looked up in the last ``ttl_s`` seconds, by hash, at most :data:`TOKEN_CACHE_MAX` of them.
    Only live tokens are kept: an unknown one is asked for again (a token created meanwhile works at once)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._tokens: dict[str, tuple[Token, float]] = {}  # hash -> (token, when it was looked up)

    def get(self, hash: str) -> Token | None:
        found = self._tokens.get(hash)
        if found is None or self._clock() - found[1] >= self._ttl_s:
            return None
        return found[0]

    def put(self, hash: str, token: Token) -> None:
        self._tokens.pop(hash, None)  # re-inserted last: the dict's order is the lookups' order
        if len(self._tokens) >= TOKEN_CACHE_MAX:
            del self._tokens[next(iter(self._tokens))]
        self._tokens[hash] = (token, self._clock())


class _Creator:
    """Group commit of creations (design.md §8), as the push service's ``_Committer`` does for state changes: the
    pushes asked for in one loop turn go to the store in one transaction (:meth:`PushStore.create_many`), and each
    caller gets its own answer once the batch is durable: its Created, or its own error (an idempotency key
    mismatch, ...); an error of the store fails the whole batch."""

    def __init__(self, store: PushStore) -> None:
        self._store = store
        self._pending: list[tuple[Creation, asyncio.Future[Created]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def create(self, item: Creation) -> asyncio.Future[Created]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Created] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._spawn_flush)
        self._pending.append((item, future))
        return future

    def _spawn_flush(self) -> None:
        self._tasks.add(task := asyncio.create_task(self._flush()))
        task.add_done_callback(self._tasks.discard)

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        try:
            results = await self._store.create_many([item for item, _ in batch])
        except Exception as exc:
            for _, future in batch:
                if not future.done():  # done: its request was cancelled (the client went away)
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)


@dataclass(frozen=True, slots=True)
class _Create:
    """A valid creation request: what :func:`gateway.push.store.new_push` takes."""

    msisdn: str
    text: str
    mode: Mode
    ttl_s: float
    extra: dict[str, Any]
    request_hash: str  # the same request whatever its key order or white space: the hash of its canonical JSON


def _parse_create(body: bytes, now: float, settings: ApiSettings, routes: Callable[[str], bool]) -> _Create:
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        # RFC 9110 §15.5.1: 400 for a body that cannot be parsed at all.
        raise ApiError(400, "bad_json", f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise _invalid(None, "the body must be a JSON object")
    for name in data:
        if name not in FIELDS:
            raise _invalid(name, f"unknown field {name!r}")
    for name in REQUIRED:
        if name not in data:
            raise _invalid(name, f"{name} is required")
    values: dict[str, Any] = {}
    for name, value in data.items():
        try:
            values[name] = msgspec.convert(value, FIELDS[name])
        except msgspec.ValidationError as exc:
            raise _invalid(name, f"{name}: {exc}") from None
    mode: Mode = values.get("mode", Mode.NOTIFY)
    route: str | None = values.get("route")
    if mode is Mode.REQUEST and route is None:
        raise _invalid("route", "route is required with mode request (the application the answer goes to)")
    if mode is Mode.NOTIFY and route is not None:
        raise _invalid("route", "route is only for mode request")
    if route is not None and not routes(route):
        raise _invalid("route", f"no route is named {route!r}")
    extra: dict[str, Any] = {"route": route, "priority": values.get("priority", 0)}
    extra["dcs"] = _check_text(values["text"], values.get("dcs"), values.get("language"))
    extra["language"] = values.get("language")
    if "callback_url" in values:
        url = URL(values["callback_url"])
        if url.scheme not in ("http", "https") or not url.host:
            raise _invalid("callback_url", "callback_url must be an absolute http or https URL")
        extra["callback_url"] = values["callback_url"]
    if "metadata" in values:
        size = len(json.dumps(values["metadata"], separators=(",", ":"), ensure_ascii=False).encode())
        if size > METADATA_MAX_BYTES:
            raise _invalid("metadata", f"metadata is {size} bytes encoded; at most {METADATA_MAX_BYTES}")
        extra["metadata"] = values["metadata"]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _Create(values["msisdn"], values["text"], mode, _ttl(values, now, settings), extra,
                   hashlib.sha256(canonical.encode()).hexdigest())


def _check_text(text: str, dcs: int | None, language: str | None) -> int:
    """The DCS the push will be sent with (the one given, else GSM 7-bit or UCS2 as the text needs); 422 for a text
    that does not fit one USSD-String in it, naming the limit (gateway/codecs/ussd_string.py's message)."""
    if dcs is not None:
        scheme = dcs_mod.parse(dcs)
        if scheme.compressed:
            raise _invalid("dcs", f"DCS 0x{dcs:02X} asks for compression, which USSD texts do not use")
        if scheme.language_indication and language is None:
            raise _invalid("language", f"DCS 0x{dcs:02X} needs a language (ISO 639-1, two letters)")
    try:
        chosen, _ = ussd_string.encode(text, dcs, language=language)
    except TextEncodingError as exc:
        raise _invalid("text", f"text: {exc}") from None
    return chosen


def _ttl(values: Mapping[str, Any], now: float, settings: ApiSettings) -> float:
    if "ttl_s" in values and "expires_at" in values:
        raise _invalid("expires_at", "give ttl_s or expires_at, not both")
    if "expires_at" in values:
        name, ttl = "expires_at", values["expires_at"].timestamp() - now
        if ttl <= 0:
            raise _invalid(name, "expires_at is in the past")
    else:
        name, ttl = "ttl_s", values.get("ttl_s", settings.default_ttl_s)
    if ttl > settings.max_ttl_s:
        raise _invalid(name, f"a push lives at most {settings.max_ttl_s:g} s (max_ttl_s)")
    return float(ttl)


def make_app(store: PushStore, *, on_created: Callable[[], None], routes: Callable[[str], bool],
             settings: ApiSettings) -> web.Application:  # fmt: skip
    """The push API over ``store``. ``on_created`` is called after each new push is committed (the push service's
    wake); ``routes(name)`` tells whether a route exists (request mode)."""
    log = logs.get("ussd.push.api")
    buckets = _Buckets(settings.clock)
    known = _TokenCache(settings.token_cache_s, settings.clock)
    creator = _Creator(store)

    async def authorize(request: web.Request, scope: str) -> Token:
        header = request.headers.get("Authorization")
        scheme, _, credentials = (header or "").partition(" ")
        if header is None or scheme.lower() != "bearer" or not credentials.strip():
            # RFC 6750 §3.1: a request without credentials gets a challenge without an error code.
            raise ApiError(401, "unauthorized", "an Authorization: Bearer token is required",
                           headers={"WWW-Authenticate": 'Bearer realm="push"'})  # fmt: skip
        hash_ = tokens.token_hash(credentials.strip())
        token = known.get(hash_)
        if token is None:
            token = await store.token_by_hash(hash_)
            if token is not None:
                known.put(hash_, token)
        if token is None:
            log.info("push.api.refused", reason="unknown or revoked token", path=request.path)
            # RFC 6750 §3.1: invalid_token (unknown, revoked) -> 401 with the error in the challenge.
            raise ApiError(401, "unauthorized", "the token is unknown or revoked",
                           headers={"WWW-Authenticate": 'Bearer realm="push", error="invalid_token"'})  # fmt: skip
        if scope not in token.scopes:
            log.info("push.api.refused", reason="scope", token=token.name, scope=scope, path=request.path)
            # RFC 6750 §3.1: insufficient_scope -> 403, naming the scope needed.
            raise ApiError(403, "forbidden", f"this token lacks the scope {scope}",
                           headers={"WWW-Authenticate": f'Bearer realm="push", error="insufficient_scope", '
                                                        f'scope="{scope}"'})  # fmt: skip
        return token

    async def visible(token: Token, push_id: str) -> Push:
        push = await store.get(push_id)
        if not push.msisdn.startswith(token.msisdn_prefix):
            # RFC 9110 §15.5.5: 404 rather than 403 for a push outside the token's prefix, whose existence it
            # is not to learn.
            raise PushNotFoundError(push_id)
        return push

    async def create(request: web.Request) -> web.Response:
        token = await authorize(request, WRITE)
        key = request.headers.get("Idempotency-Key")
        if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
            raise _invalid("Idempotency-Key", f"Idempotency-Key must be 1..{IDEMPOTENCY_KEY_MAX} visible ASCII "
                                              "characters")  # fmt: skip
        now = settings.clock()
        parsed = _parse_create(await request.read(), now, settings, routes)
        if not parsed.msisdn.startswith(token.msisdn_prefix):
            raise ApiError(403, "forbidden", f"this token may only push to MSISDNs starting {token.msisdn_prefix}",
                           "msisdn")  # fmt: skip
        if token.rate is not None:
            wait = buckets.take(token.name, token.rate)
            if wait > 0:
                # RFC 6585 §4: 429 Too Many Requests; RFC 9110 §10.2.3: Retry-After in whole seconds.
                raise ApiError(429, "rate_limited", f"this token may create {token.rate:g} pushes a second",
                               headers={"Retry-After": str(max(1, math.ceil(wait)))})  # fmt: skip
        push = new_push(msisdn=parsed.msisdn, text=parsed.text, mode=parsed.mode, now=now, ttl_s=parsed.ttl_s,
                        **parsed.extra)  # fmt: skip
        try:
            created = await creator.create(Creation(push, key, parsed.request_hash, token.name))
        except IdempotencyMismatchError:
            raise _invalid("Idempotency-Key", "this Idempotency-Key was used with another request body") from None
        except IdempotencyInFlightError:
            # RFC 9110 §15.5.10: 409, the request conflicts with the state of the resource: the first request
            # with this key is still being processed; retry it later.
            raise ApiError(409, "idempotency_in_flight", "a request with this Idempotency-Key is still in "
                           "progress", "Idempotency-Key") from None  # fmt: skip
        headers = {"Location": f"/v1/pushes/{created.push.id}"}
        if created.replayed:
            if created.push.created_at < now - settings.retention_s:
                raise _invalid("Idempotency-Key", f"this Idempotency-Key was first used more than "
                                                  f"{settings.retention_s:g} s ago; use a new key")  # fmt: skip
            headers["Idempotent-Replayed"] = "true"
        else:
            log.info("push.created", push=created.push.id, token=token.name, mode=created.push.mode.value)
            on_created()
        # RFC 9110 §15.3.3: 202 Accepted, the push is queued, not yet done; §10.2.2: Location names it.
        return web.json_response(push_view(created.push), status=202, headers=headers)

    async def get(request: web.Request) -> web.Response:
        token = await authorize(request, READ)
        return web.json_response(push_view(await visible(token, request.match_info["id"])))

    async def cancel(request: web.Request) -> web.Response:
        token = await authorize(request, WRITE)
        push = await visible(token, request.match_info["id"])
        try:
            push = await store.cancel(push.id, settings.clock())
        except NotCancellableError as exc:
            # RFC 9110 §15.5.10: 409, the push's state does not allow it.
            raise ApiError(409, "not_cancellable", str(exc)) from None
        log.info("push.cancelled", push=push.id, token=token.name)
        return web.json_response(push_view(push))

    async def list_(request: web.Request) -> web.Response:
        token = await authorize(request, READ)
        query = request.query
        for name in query:
            if name not in ("state", "msisdn", "campaign", "cursor", "limit"):
                raise _invalid(name, f"unknown query parameter {name!r}")
        state = msisdn = None
        if "state" in query:
            try:
                state = State(query["state"])
            except ValueError:
                raise _invalid("state", f"state must be one of {', '.join(s.value for s in State)}") from None
        if "msisdn" in query:
            try:
                msisdn = msgspec.convert(query["msisdn"], Msisdn)
            except msgspec.ValidationError as exc:
                raise _invalid("msisdn", f"msisdn: {exc}") from None
        limit = PAGE_DEFAULT
        if "limit" in query:
            if not query["limit"].isdigit() or not 1 <= int(query["limit"]) <= PAGE_MAX:
                raise _invalid("limit", f"limit must be an integer from 1 to {PAGE_MAX}")
            limit = int(query["limit"])
        try:
            page = await store.list(state=state, msisdn=msisdn, campaign=query.get("campaign"),
                                    cursor=query.get("cursor"), limit=limit)  # fmt: skip
        except ValueError:
            raise _invalid("cursor", "cursor is not one this API gave out") from None
        # A token with a prefix sees only its MSISDNs: a page may come out shorter than limit (even empty) while
        # next_cursor goes on.
        items = [push_view(p) for p in page.items if p.msisdn.startswith(token.msisdn_prefix)]
        return web.json_response({"items": items, "next_cursor": page.cursor})

    @web.middleware
    async def errors(request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return web.json_response(error_body(exc.status, exc.message, exc.code, exc.field), status=exc.status,
                                     headers=exc.headers)  # fmt: skip
        except PushNotFoundError:
            return web.json_response(error_body(404, "no such push"), status=404)
        except CampaignNotFoundError:
            return web.json_response(error_body(404, "no such campaign"), status=404)
        except web.HTTPRequestEntityTooLarge:
            raise  # the listener answers it (413) and closes the connection
        except web.HTTPException as exc:
            # aiohttp's own: 404 for an unknown path, 405 (with the Allow header RFC 9110 §15.5.6 requires).
            headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
            return web.json_response(error_body(exc.status, exc.reason.lower()), status=exc.status, headers=headers)
        except Exception as exc:
            # The traceback as text, not structlog's exc_info: its dict tracebacks carry each frame's locals, and
            # authorize's hold the token.
            log.error("push.api.error", method=request.method, path=request.path,
                      traceback="".join(traceback.format_exception(exc)))  # fmt: skip
            return web.json_response(error_body(500, "internal error"), status=500)

    app = web.Application(middlewares=[errors])
    app[ERROR_BODY] = error_body
    app.router.add_post("/v1/pushes", create)
    app.router.add_get("/v1/pushes", list_, allow_head=False)
    app.router.add_get("/v1/pushes/{id}", get, allow_head=False)
    app.router.add_delete("/v1/pushes/{id}", cancel)
    # Imported here: campaign_api builds on this module's helpers (a cycle at import time otherwise).
    from gateway.push import campaign_api  # noqa: PLC0415

    campaign_api.add_routes(app, store, authorize, on_created=on_created, routes=routes, settings=settings)
    app[BODY_LIMIT] = lambda request: settings.max_upload_bytes if campaign_api.is_upload(request) else None
    return app
