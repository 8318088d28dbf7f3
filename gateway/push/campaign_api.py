"""The campaign endpoints of the push API (docs/openapi-push.yaml): ``POST /v1/campaigns``, ``GET
/v1/campaigns/{id}``, ``POST /v1/campaigns/{id}/pause|resume|cancel``. Same tokens, scopes, error shape and
validation style as gateway/push/api.py, which mounts them (:func:`add_routes`).

Recipients come two ways:

- ``application/json``: the campaign with ``recipients``, a list of ``{"msisdn", "vars"}``, within the listener's
  body limit (``[http] max_body_bytes``, 64 KiB: about a thousand recipients);
- ``text/csv``: the campaign's fields in the query string, the body a CSV file with a header line naming an
  ``msisdn`` column (the other columns are the vars). The body is read line by line as it arrives and stored in
  batches of :data:`BATCH` pushes, never held whole; it has its own body limit
  (:attr:`gateway.push.api.ApiSettings.max_upload_bytes`, 32 MiB: about a million recipients), given to the
  listener through :data:`gateway.ops.http_listener.BODY_LIMIT` for this request only, so the listener's limit
  for everything else stays as it is.

A recipient that cannot be sent (an MSISDN that is not E.164 digits or outside the token's prefix, a placeholder
its vars do not fill, a filled text that does not fit one USSD-String, a CSV line with the wrong number of fields)
is rejected, not stored, and reported in the answer (``upload``: ``accepted``, ``rejected`` and the first
:data:`REPORTED` rejected rows with their CSV line or list index and the reason); the others go. Only a campaign
with no recipient accepted at all is refused (422). A malformed request (a field of the campaign, the JSON shape
of a recipient, a CSV without an ``msisdn`` column) is refused whole, like a push.

While the upload is being stored the campaign is ``loading``: invisible and never claimed; it becomes ``active``
when the last batch is stored, and an upload that fails half way (too large, the client gone, a store error) is
deleted with all its pushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
from aiohttp import web
from yarl import URL

from gateway.codecs import ussd_string
from gateway.codecs.errors import TextEncodingError
from gateway.ops import logs
from gateway.push import api as push_api
from gateway.push.campaigns import (
    Campaign,
    CampaignState,
    Window,
    csv_lines,
    fill,
    new_campaign_id,
    placeholders,
)
from gateway.push.model import FINAL, Mode, State
from gateway.push.store import CampaignNotFoundError, CampaignStateError, Push, PushStore, Token, new_push

# Pushes per store transaction while an upload streams in: measured on SQLite, 100,000 pushes take 12.6 s to store
# in batches of 1,000 and 5.6 s in batches of 5,000; two batches (one written, one filling) are ~10 MB.
BATCH = 5000
REPORTED = 10  # rejected rows named in the answer (all are counted)
CANCEL_BATCH = 1000
RATE_MAX = 10_000.0
_MSISDN = re.compile(push_api.MSISDN_PATTERN)


class WindowIn(msgspec.Struct, forbid_unknown_fields=True):
    start: str
    end: str
    tz: str


Var = str | int | float | bool
# The campaign's fields and what msgspec checks of each (query string values are converted from text).
FIELDS: dict[str, Any] = {
    "name": Annotated[str, msgspec.Meta(min_length=1, max_length=128)],
    "text": Annotated[str, msgspec.Meta(min_length=1)],
    "rate_per_s": Annotated[float, msgspec.Meta(gt=0, le=RATE_MAX)],
    "window": WindowIn,
    "mode": Mode,
    "route": push_api.FIELDS["route"],
    "callback_url": push_api.FIELDS["callback_url"],
    "ttl_s": push_api.FIELDS["ttl_s"],
    "priority": push_api.FIELDS["priority"],
}
REQUIRED = ("name", "text", "rate_per_s")
# The CSV upload's query string: the fields above, the window as three parameters.
QUERY_WINDOW = {"window_start": "start", "window_end": "end", "window_tz": "tz"}


class RecipientIn(msgspec.Struct, forbid_unknown_fields=True):
    msisdn: str
    vars: dict[str, Var] = {}


@dataclass(frozen=True, slots=True)
class _Settings:
    """A valid campaign request but its recipients."""

    name: str
    text: str
    names: frozenset[str]  # the template's placeholders
    mode: Mode
    route: str | None
    callback_url: str | None
    rate_per_s: float
    window: Window | None
    ttl_s: float
    priority: int


def _parse(data: Mapping[str, Any], *, strict: bool, now: float, settings: push_api.ApiSettings,
           routes: Callable[[str], bool]) -> _Settings:  # fmt: skip
    for name in REQUIRED:
        if name not in data:
            raise push_api._invalid(name, f"{name} is required")
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name not in FIELDS:
            raise push_api._invalid(name, f"unknown field {name!r}")
        try:
            values[name] = msgspec.convert(value, FIELDS[name], strict=strict)
        except msgspec.ValidationError as exc:
            raise push_api._invalid(name, f"{name}: {exc}") from None
    try:
        names = placeholders(values["text"])
    except ValueError as exc:
        raise push_api._invalid("text", f"text: {exc}") from None
    mode: Mode = values.get("mode", Mode.NOTIFY)
    route: str | None = values.get("route")
    if mode is Mode.REQUEST and route is None:
        raise push_api._invalid("route", "route is required with mode request (the application the answer goes to)")
    if mode is Mode.NOTIFY and route is not None:
        raise push_api._invalid("route", "route is only for mode request")
    if route is not None and not routes(route):
        raise push_api._invalid("route", f"no route is named {route!r}")
    callback_url = values.get("callback_url")
    if callback_url is not None:
        url = URL(callback_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise push_api._invalid("callback_url", "callback_url must be an absolute http or https URL")
    window = None
    if "window" in values:
        w: WindowIn = values["window"]
        window = Window(w.start, w.end, w.tz)
        problem = window.problem()
        if problem is not None:
            raise push_api._invalid(f"window.{problem[0]}", f"window.{problem[0]}: {problem[1]}")
    ttl = push_api._ttl(values, now, settings)
    return _Settings(values["name"], values["text"], names, mode, route, callback_url, values["rate_per_s"], window,
                     ttl, values.get("priority", 0))  # fmt: skip


@dataclass
class _Upload:
    """Recipients to pushes, in batches to the store; what was rejected and why."""

    store: PushStore
    campaign: Campaign
    parsed: _Settings
    now: float
    batch: list[Push] = field(default_factory=list)
    accepted: int = 0
    rejected: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # the first REPORTED rejections
    writing: asyncio.Future[None] | None = None

    def reject(self, where: dict[str, Any], reason: str) -> None:
        self.rejected += 1
        if len(self.rows) < REPORTED:
            self.rows.append({**where, "reason": reason})

    async def add(self, where: dict[str, Any], msisdn: str, values: Mapping[str, str]) -> None:
        msisdn = msisdn.strip().removeprefix("+")
        if not _MSISDN.fullmatch(msisdn):
            return self.reject(where, f"msisdn {msisdn[:32]!r} is not E.164 digits (country code first)")
        if not msisdn.startswith(self.campaign.msisdn_prefix):
            return self.reject(where, f"msisdn outside the token's prefix {self.campaign.msisdn_prefix}")
        try:
            text = fill(self.parsed.text, self.parsed.names, values)
        except KeyError as exc:
            return self.reject(where, f"no value for the placeholder {{{exc.args[0]}}}")
        try:
            dcs, _ = ussd_string.encode(text)
        except TextEncodingError as exc:
            return self.reject(where, f"text: {exc}")
        p = self.parsed
        self.batch.append(new_push(msisdn=msisdn, text=text, mode=p.mode, now=self.now, ttl_s=p.ttl_s, dcs=dcs,
                                   route=p.route, callback_url=p.callback_url, priority=p.priority,
                                   campaign=self.campaign.id, token=self.campaign.token))  # fmt: skip
        self.accepted += 1
        if len(self.batch) >= BATCH:
            await self.flush()
        return None

    async def flush(self) -> None:
        """Hand the batch to the store and go on reading while it is written (the store works off the loop: the
        next batch is parsed meanwhile); at most one batch is being written at a time."""
        await self.settle()
        if self.batch:
            batch, self.batch = self.batch, []
            self.writing = asyncio.ensure_future(self.store.campaign_add(batch))

    async def settle(self) -> None:
        """Wait for the batch being written (its error, if any, is raised here)."""
        writing, self.writing = self.writing, None
        if writing is not None:
            await writing


def _text_vars(values: Mapping[str, Var]) -> dict[str, str]:
    return {k: (("true" if v else "false") if isinstance(v, bool) else str(v)) for k, v in values.items()}


async def _json_recipients(upload: _Upload, recipients: Any) -> None:
    try:
        items = msgspec.convert(recipients, list[RecipientIn])
    except msgspec.ValidationError as exc:
        raise push_api._invalid("recipients", f"recipients: {exc}") from None
    for index, r in enumerate(items):
        await upload.add({"index": index}, r.msisdn, _text_vars(r.vars))


async def _csv_recipients(upload: _Upload, chunks: AsyncIterator[bytes]) -> None:
    header: list[str] | None = None
    column = 0
    async for lineno, record in csv_lines(chunks):
        if not record.strip():
            continue  # blank lines (a trailing one, most often)
        (fields,) = list(csv.reader([record])) or [[]]
        if header is None:
            header = [f.strip() for f in fields]
            header[0] = header[0].removeprefix("\ufeff")  # a byte order mark, as spreadsheets write
            lowered = [h.lower() for h in header]
            if "msisdn" not in lowered:
                raise push_api._invalid("recipients", "the CSV's first line must name the columns, one of them "
                                                      "msisdn")  # fmt: skip
            column = lowered.index("msisdn")
            continue
        if len(fields) != len(header):
            upload.reject({"line": lineno}, f"{len(fields)} fields where the header has {len(header)}")
            continue
        values = {name: value for i, (name, value) in enumerate(zip(header, fields, strict=True)) if i != column}
        await upload.add({"line": lineno}, fields[column], values)
    if header is None:
        raise push_api._invalid("recipients", "the CSV is empty: its first line must name the columns, one of "
                                              "them msisdn")  # fmt: skip


async def _limited(content: Any, limit: int) -> AsyncIterator[bytes]:
    """The body's lines as they arrive; 413 once more than ``limit`` bytes came (a chunked body declares no
    length the listener could refuse beforehand)."""
    seen = 0
    while True:
        try:
            line: bytes = await content.readline()
        except ValueError as exc:  # aiohttp: a line longer than its buffer (128 KiB)
            raise push_api._invalid("recipients", f"a CSV line is too long: {exc}") from None
        if not line:
            return
        seen += len(line)
        if seen > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=seen)
        yield line


def is_upload(request: web.BaseRequest) -> bool:
    return request.method == "POST" and request.path == "/v1/campaigns" and request.content_type == "text/csv"


def campaign_view(c: Campaign, counts: Mapping[State, int], last_minute: int, now: float) -> dict[str, Any]:
    """The campaign object of the API: its settings, its pushes per state, the rates."""
    unfinished = sum(n for s, n in counts.items() if s not in FINAL)
    state = "done" if c.state is CampaignState.ACTIVE and unfinished == 0 else c.state.value
    view: dict[str, Any] = {
        "id": c.id, "name": c.name, "text": c.text, "mode": c.mode.value, "state": state,
        "rate_per_s": c.rate_per_s, "rate_last_minute": round(last_minute / 60.0, 3),
        "window": None if c.window is None else {"start": c.window.start, "end": c.window.end, "tz": c.window.tz},
        "in_window": c.window is None or c.window.contains(now), "priority": c.priority,
        "created_at": push_api.rfc3339(c.created_at), "updated_at": push_api.rfc3339(c.updated_at),
        "counts": {s.value: counts.get(s, 0) for s in State}, "total": sum(counts.values()),
    }  # fmt: skip
    if c.route is not None:
        view["route"] = c.route
    if c.callback_url is not None:
        view["callback_url"] = c.callback_url
    return view


Authorize = Callable[[web.Request, str], Awaitable[Token]]


def add_routes(app: web.Application, store: PushStore, authorize: Authorize, *, on_created: Callable[[], None],
               routes: Callable[[str], bool], settings: push_api.ApiSettings) -> None:  # fmt: skip
    log = logs.get("ussd.push.api")

    async def view(campaign: Campaign) -> dict[str, Any]:
        now = settings.clock()
        counts, last_minute = await store.campaign_stats(campaign.id, now)
        return campaign_view(campaign, counts, last_minute, now)

    async def visible(token: Token, campaign_id: str) -> Campaign:
        campaign = await store.campaign_get(campaign_id)
        if not campaign.msisdn_prefix.startswith(token.msisdn_prefix):
            raise CampaignNotFoundError(campaign_id)  # as for pushes: not there for a token that may not see it
        return campaign

    async def create(request: web.Request) -> web.Response:
        token = await authorize(request, push_api.WRITE)
        now = settings.clock()
        if request.content_type == "application/json":
            try:
                data = msgspec.json.decode(await request.read())
            except msgspec.DecodeError as exc:
                raise push_api.ApiError(400, "bad_json", f"the body is not JSON: {exc}") from None
            if not isinstance(data, dict):
                raise push_api._invalid(None, "the body must be a JSON object")
            if "recipients" not in data:
                raise push_api._invalid("recipients", "recipients is required (or upload them as text/csv)")
            recipients = data.pop("recipients")
            parsed = _parse(data, strict=True, now=now, settings=settings, routes=routes)
        elif request.content_type == "text/csv":
            query: dict[str, Any] = {}
            window: dict[str, str] = {}
            for name, value in request.query.items():
                if name in QUERY_WINDOW:
                    window[QUERY_WINDOW[name]] = value
                elif name == "window":
                    raise push_api._invalid(name, "with text/csv the window is window_start, window_end, window_tz")
                else:
                    query[name] = value
            if window:
                query["window"] = window
            parsed = _parse(query, strict=False, now=now, settings=settings, routes=routes)
        else:
            # RFC 9110 §15.5.16: 415 for a content type the resource does not take.
            raise push_api.ApiError(415, "unsupported_media_type", "send application/json (recipients in the body) "
                                    "or text/csv (the campaign in the query string)")  # fmt: skip
        if token.rate is not None and parsed.rate_per_s > token.rate:
            raise push_api._invalid("rate_per_s", f"this token may push at most {token.rate:g} a second")
        campaign = Campaign(id=new_campaign_id(), name=parsed.name, text=parsed.text, mode=parsed.mode,
                            rate_per_s=parsed.rate_per_s, state=CampaignState.LOADING, created_at=now,
                            updated_at=now, route=parsed.route, callback_url=parsed.callback_url,
                            window=parsed.window, token=token.name, msisdn_prefix=token.msisdn_prefix,
                            priority=parsed.priority)  # fmt: skip
        await store.campaign_create(campaign)
        upload = _Upload(store, campaign, parsed, now)
        try:
            if request.content_type == "application/json":
                await _json_recipients(upload, recipients)
            else:
                await _csv_recipients(upload, _limited(request.content, settings.max_upload_bytes))
            await upload.flush()
            await upload.settle()
            if upload.accepted == 0:
                reasons = "; ".join(f"{'line' if 'line' in r else 'index'} {r.get('line', r.get('index'))}: "
                                    f"{r['reason']}" for r in upload.rows[:3])  # fmt: skip
                raise push_api._invalid("recipients", f"no recipient was accepted ({upload.rejected} rejected"
                                                      f"{': ' + reasons if reasons else ''})")  # fmt: skip
            campaign = await store.campaign_move(campaign.id, CampaignState.ACTIVE, settings.clock())
        except BaseException:
            # The batch being written first (on PostgreSQL it runs on another connection), then all of it.
            with contextlib.suppress(Exception):
                await upload.settle()
            await asyncio.shield(store.campaign_discard(campaign.id))
            raise
        log.info("push.campaign.created", campaign=campaign.id, token=token.name, accepted=upload.accepted,
                 rejected=upload.rejected)  # fmt: skip
        on_created()
        body = await view(campaign)
        body["upload"] = {"accepted": upload.accepted, "rejected": upload.rejected, "rejected_rows": upload.rows}
        # RFC 9110 §15.3.3: 202 Accepted, the pushes are queued; §10.2.2: Location names the campaign.
        return web.json_response(body, status=202, headers={"Location": f"/v1/campaigns/{campaign.id}"})

    async def get(request: web.Request) -> web.Response:
        token = await authorize(request, push_api.READ)
        return web.json_response(await view(await visible(token, request.match_info["id"])))

    def mover(state: CampaignState) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def move(request: web.Request) -> web.Response:
            token = await authorize(request, push_api.WRITE)
            campaign = await visible(token, request.match_info["id"])
            try:
                campaign = await store.campaign_move(campaign.id, state, settings.clock())
            except CampaignStateError as exc:
                # RFC 9110 §15.5.10: 409, the campaign's state does not allow it.
                raise push_api.ApiError(409, "campaign_state", str(exc)) from None
            if state is CampaignState.CANCELLED:
                # Its waiting pushes, in batches (each one transaction); none is claimed meanwhile, the campaign
                # no longer being active. A retried cancel finishes what an interrupted one left.
                while await store.campaign_cancel_waiting(campaign.id, settings.clock(), CANCEL_BATCH):
                    pass
            log.info("push.campaign." + {CampaignState.ACTIVE: "resumed", CampaignState.PAUSED: "paused",
                                         CampaignState.CANCELLED: "cancelled"}[state],
                     campaign=campaign.id, token=token.name)  # fmt: skip
            if state is CampaignState.ACTIVE:
                on_created()
            return web.json_response(await view(campaign))

        return move

    app.router.add_post("/v1/campaigns", create)
    app.router.add_get("/v1/campaigns/{id}", get, allow_head=False)
    app.router.add_post("/v1/campaigns/{id}/pause", mover(CampaignState.PAUSED))
    app.router.add_post("/v1/campaigns/{id}/resume", mover(CampaignState.ACTIVE))
    app.router.add_post("/v1/campaigns/{id}/cancel", mover(CampaignState.CANCELLED))
