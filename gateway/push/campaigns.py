"""Bulk campaigns: one template sent to many recipients at a pace, inside a delivery window. Pure.

A campaign (``POST /v1/campaigns``, gateway/push/campaign_api.py) is stored in the ``campaigns`` table
(migrations/0003_campaigns.sql); each recipient becomes an ordinary queued push with ``campaign`` set, its text the
template filled with the recipient's ``vars``. From there a campaign push lives like any push (retries, expiry,
callbacks), except that it is claimed only while its campaign is ``active``, inside its window, and within its
rate:

- **rate**: a token bucket per campaign, ``rate_per_s`` tokens a second and at most one second's worth (at least
  one) saved up, kept in the campaign's row (``bucket``, ``bucket_at``) and spent in the claim's transaction
  (:func:`level`, :func:`pick`), so that several gateway nodes on one PostgreSQL database share one pace. The push
  service's own ``rate`` (``[push] rate``) still caps all pushes together: it is the ``limit`` of claim_due.
- **window**: local times ``start`` to ``end`` (``end`` before ``start``: across midnight) in an IANA time zone;
  outside it (the quiet hours) nothing of the campaign is claimed; a push already under way goes on.
- **states**: ``loading`` while the upload is being stored (nothing claimed, nothing shown: the campaign exists
  once the answer says so), ``active``, ``paused`` (nothing claimed; resume), ``cancelled`` (final: its waiting
  pushes are cancelled). The API shows ``done`` for an active campaign with no push left waiting or in flight.
"""

from __future__ import annotations

import enum
import re
import string
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.push.model import Mode


class CampaignState(enum.StrEnum):
    LOADING = "loading"
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"


_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def parse_hhmm(value: str) -> time:
    """``HH:MM`` (24 h) as a time; ValueError otherwise."""
    found = _HHMM.fullmatch(value)
    if found is None:
        raise ValueError(f"{value!r} is not a time HH:MM (00:00 to 23:59)")
    return time(int(found[1]), int(found[2]))


@dataclass(frozen=True, slots=True)
class Window:
    """Delivery allowed from ``start`` (included) to ``end`` (excluded), local time in ``tz``; across midnight when
    ``end`` is before ``start``."""

    start: str  # HH:MM
    end: str
    tz: str  # IANA, e.g. Europe/Berlin

    def problem(self) -> tuple[str, str] | None:
        """None when usable, else (the member at fault, why)."""
        for name in ("start", "end"):
            try:
                parse_hhmm(getattr(self, name))
            except ValueError as exc:
                return name, str(exc)
        if self.start == self.end:
            return "end", "end must differ from start (an empty window would never deliver)"
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            return "tz", f"{self.tz!r} is not an IANA time zone (e.g. Europe/Berlin)"
        return None

    def contains(self, now: float) -> bool:
        local = datetime.fromtimestamp(now, ZoneInfo(self.tz)).time().replace(tzinfo=None)
        start, end = parse_hhmm(self.start), parse_hhmm(self.end)
        if start < end:
            return start <= local < end
        return local >= start or local < end


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    text: str  # the template, with {name} placeholders
    mode: Mode
    rate_per_s: float
    state: CampaignState
    created_at: float
    updated_at: float
    route: str | None = None
    callback_url: str | None = None
    window: Window | None = None
    token: str | None = None  # the name of the API token that created it
    msisdn_prefix: str = ""  # that token's prefix: every recipient starts with it, and it decides who sees it
    priority: int = 0


def new_campaign_id() -> str:
    return "c_" + uuid.uuid4().hex


# --- templates ---

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def placeholders(template: str) -> frozenset[str]:
    """The ``{name}`` placeholders of a template (``{{`` and ``}}`` are literal braces); ValueError for anything
    else in braces (positional ``{}``, ``{0}``, attributes, indexes, conversions, format specs), so that filling
    never reaches beyond the recipient's vars."""
    names: set[str] = set()
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"the template's braces do not pair up ({exc}); write {{{{ and }}}} for literal ones") \
            from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not _NAME.fullmatch(name) or spec or conversion:
            raise ValueError(f"placeholder {{{name}{'!' + conversion if conversion else ''}"
                             f"{':' + spec if spec else ''}}} is not a plain {{name}} (letters, digits, _)")
        names.add(name)
    return frozenset(names)


def fill(template: str, names: frozenset[str], values: Mapping[str, str]) -> str:
    """The template with each placeholder replaced; KeyError naming the first placeholder ``values`` lacks."""
    for name in sorted(names):
        if name not in values:
            raise KeyError(name)
    return template.format_map(values) if names else template.replace("{{", "{").replace("}}", "}")


# --- pacing ---


def burst(rate: float) -> float:
    """The most a campaign's bucket holds: one second's worth, at least one push."""
    return max(1.0, rate)


def level(rate: float, bucket: float, bucket_at: float, now: float) -> float:
    """The bucket at ``now``: refilled at ``rate`` since ``bucket_at`` (never backwards: two nodes' clocks differ
    slightly), capped at :func:`burst`."""
    return min(burst(rate), bucket + max(0.0, now - bucket_at) * rate)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A due push claim_due may take, with what picking needs."""

    id: str
    msisdn: str
    campaign: str | None
    priority: int
    created_at: float


def pick(candidates: Sequence[Candidate], allowance: Mapping[str, int], limit: int) -> list[Candidate]:
    """In claiming order (priority first, then oldest), at most ``limit`` candidates, one per MSISDN, at most
    ``allowance[c]`` of campaign ``c`` (none of a campaign not in ``allowance``)."""
    taken: list[Candidate] = []
    seen: set[str] = set()
    spent: dict[str, int] = {}
    for c in sorted(candidates, key=lambda c: (-c.priority, c.created_at, c.id)):
        if len(taken) >= limit:
            break
        if c.msisdn in seen:
            continue
        if c.campaign is not None:
            if spent.get(c.campaign, 0) >= allowance.get(c.campaign, 0):
                continue
            spent[c.campaign] = spent.get(c.campaign, 0) + 1
        seen.add(c.msisdn)
        taken.append(c)
    return taken


def spent_by_campaign(taken: Sequence[Candidate]) -> dict[str, int]:
    spent: dict[str, int] = {}
    for c in taken:
        if c.campaign is not None:
            spent[c.campaign] = spent.get(c.campaign, 0) + 1
    return spent


@dataclass(frozen=True, slots=True)
class Pace:
    """An active campaign as claim_due sees it: its bucket now, and how many pushes it may have claimed now."""

    id: str
    rate: float
    bucket_at: float
    level: float
    allowance: int


def pace(row: Iterable[Any], now: float) -> Pace:
    """From (id, rate_per_s, bucket, bucket_at, window_start, window_end, window_tz): see :data:`PACE_SELECT`."""
    id_, rate, bucket, bucket_at, start, end, tz = row
    now_level = level(rate, bucket, bucket_at, now)
    inside = start is None or Window(start, end, tz).contains(now)
    return Pace(id_, rate, bucket_at, now_level, int(now_level) if inside else 0)


PACE_SELECT = ("SELECT id, rate_per_s, bucket, bucket_at, window_start, window_end, window_tz FROM campaigns "
               "WHERE state = 'active'")  # fmt: skip


# --- CSV uploads ---


async def csv_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[int, str]]:
    """(line number, text) of each CSV record read from ``chunks`` (lines with their line ends), one record at a
    time: a quoted field across line ends is one record, numbered by its first line. Bytes that are not UTF-8
    come out as U+FFFD, and the record is rejected for its MSISDN or its text, not the whole upload."""
    lineno = 0
    pending: list[str] = []
    start = 0
    quotes = 0
    async for raw in chunks:
        lineno += 1
        line = raw.decode("utf-8", errors="replace")
        if not pending:
            start = lineno
        pending.append(line)
        quotes += line.count('"')
        if quotes % 2 == 0:
            yield start, "".join(pending)
            pending, quotes = [], 0
    if pending:
        yield start, "".join(pending)
