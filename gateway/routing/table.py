"""Service-code routing: USSD strings such as ``*123#``, ``*123*4#`` or a direct dial ``*777*1*500#`` to routes.

Rules are compiled into a trie over the code's ``*``-separated parts, so a lookup costs the number of parts, not the
number of rules. The most specific rule wins, whatever the order of the file: an exact rule for the whole code,
else the prefix rule with the most parts (the remaining parts become the parameters: ``*777#`` with parameters
``["1", "500"]``), else the default route. Rules that conflict or can never match are refused at load time with
the file, the rule and the reason.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

_CODE = re.compile(r"^[*#]{1,2}[0-9]+(?:\*[0-9]+)*#$")


class RouteConfigError(ValueError):
    """A routing rule the gateway refuses to start with."""

    def __init__(self, file: str, rule: str, reason: str) -> None:
        super().__init__(f"{file}: route {rule!r}: {reason}")
        self.file = file
        self.rule = rule
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    code: str | None  # None: the default route
    match: str = "prefix"  # "exact": only the code itself; "prefix": the code with any parameters after it
    primary_url: str = ""
    backup_url: str | None = None
    dialect: str = "json"  # "json" (native) or "africastalking"
    timeout: float = 5.0
    max_sessions: int = 1000
    max_duration: float = 180.0
    allowed_msisdn: tuple[str, ...] | None = None  # prefixes; None = everyone
    allowed_imsi: tuple[str, ...] | None = None
    allowed_vlr: tuple[str, ...] | None = None
    texts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # kind -> language -> text
    sensitive: bool = False
    secret: str | None = None  # HMAC-SHA256 key for the X-USSD-Signature header (apps verify the gateway)
    end_notice_url: str | None = None  # where the end-of-session notice is POSTed (None: not sent)
    on_late: str = "text"  # the app missed its timeout: "text" (TC-END with the timeout text) or "abort" (U-ABORT)
    on_too_long: str = "truncate"  # a reply too long for one USSD string: "truncate" (with a marker) or "refuse"
    truncate_marker: str = "..."
    tls_ca_file: str | None = None  # https: trust only this CA bundle (PEM) instead of the system's

    def allows(self, msisdn: str | None, imsi: str | None, vlr: str | None) -> bool:
        return (_allowed(self.allowed_msisdn, msisdn) and _allowed(self.allowed_imsi, imsi)
                and _allowed(self.allowed_vlr, vlr))  # fmt: skip

    def text(self, kind: str, language: str | None = None, default: str = "") -> str:
        """The configured text of ``kind`` (busy, error, timeout, unknown) in ``language``, else in "default"."""
        by_language = self.texts.get(kind, {})
        return by_language.get(language or "", by_language.get("default", default))


def _allowed(prefixes: tuple[str, ...] | None, value: str | None) -> bool:
    if prefixes is None:
        return True
    return value is not None and value.startswith(prefixes)


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    params: tuple[str, ...]
    service_code: str  # the code the route is for (e.g. "*777#" for a direct dial "*777*1*500#")


def parts(code: str) -> tuple[str, ...] | None:
    """``*777*1*500#`` -> ("*777", "1", "500"); None when the string is not a service code (TS 22.090 §3)."""
    if not _CODE.match(code):
        return None
    body = code[:-1]
    lead = len(body) - len(body.lstrip("*#"))
    head, *rest = body[lead:].split("*")
    return (body[:lead] + head, *rest)


class _Node:
    __slots__ = ("children", "exact", "prefix")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.exact: Route | None = None
        self.prefix: Route | None = None


class RouteTable:
    """The compiled rules. Build with :meth:`compile`."""

    def __init__(self, root: _Node, default: Route | None, routes: tuple[Route, ...]) -> None:
        self._root = root
        self.default = default
        self.routes = routes

    def named(self, name: str) -> Route | None:
        """The route called ``name`` (a push in request mode names the route its answer continues with)."""
        return next((r for r in self.routes if r.name == name), None)

    @classmethod
    def compile(cls, routes: Iterable[Route], *, file: str = "<config>") -> RouteTable:
        root = _Node()
        default: Route | None = None
        seen_names: set[str] = set()
        all_routes = tuple(routes)
        for route in all_routes:
            if route.name in seen_names:
                raise RouteConfigError(file, route.name, "two routes have this name")
            seen_names.add(route.name)
            for label, prefixes in (("msisdn", route.allowed_msisdn), ("imsi", route.allowed_imsi),
                                    ("vlr", route.allowed_vlr)):  # fmt: skip
                if prefixes is not None and not prefixes:
                    raise RouteConfigError(file, route.name, f"allowed {label} prefixes is empty: it can never match")
            if route.code is None:
                if default is not None:
                    raise RouteConfigError(file, route.name, f"a second default route (the first is {default.name!r})")
                default = route
                continue
            if route.match not in ("exact", "prefix"):
                raise RouteConfigError(file, route.name, f"match must be 'exact' or 'prefix', not {route.match!r}")
            p = parts(route.code)
            if p is None:
                raise RouteConfigError(file, route.name, f"{route.code!r} is not a USSD service code (like *123# or "
                                                         "*123*4#): it can never match")  # fmt: skip
            node = root
            for part in p:
                node = node.children.setdefault(part, _Node())
            slot = "exact" if route.match == "exact" else "prefix"
            other = getattr(node, slot)
            if other is not None:
                raise RouteConfigError(file, route.name, f"{route.match} rule for {route.code} conflicts with route "
                                                         f"{other.name!r}")  # fmt: skip
            setattr(node, slot, route)
        return cls(root, default, all_routes)

    def lookup(self, code: str) -> Match | None:
        """The route for a dialled string (most specific wins), or None when nothing (not even a default) matches."""
        p = parts(code)
        if p is None:
            return Match(self.default, (), code) if self.default is not None else None
        node = self._root
        best: tuple[Route, int] | None = None
        for depth, part in enumerate(p):
            nxt = node.children.get(part)
            if nxt is None:
                break
            node = nxt
            if node.prefix is not None:
                best = (node.prefix, depth + 1)
            if depth == len(p) - 1 and node.exact is not None:
                return Match(node.exact, (), code)
        if best is not None:
            route, used = best
            head = p[:used]
            return Match(route, p[used:], "*".join(head) + "#")
        if self.default is not None:
            return Match(self.default, (), code)
        return None


TEXT_KINDS = ("busy", "error", "timeout", "unknown")
_KINDS: dict[str, tuple[type, ...]] = {
    "name": (str,), "code": (str,), "match": (str,), "primary_url": (str,), "backup_url": (str,), "dialect": (str,),
    "timeout": (int, float), "max_sessions": (int,), "max_duration": (int, float), "allowed_msisdn": (list,),
    "allowed_imsi": (list,), "allowed_vlr": (list,), "texts": (dict,), "sensitive": (bool,), "secret": (str,),
    "end_notice_url": (str,), "on_late": (str,), "on_too_long": (str,), "truncate_marker": (str,),
    "tls_ca_file": (str,),
}  # fmt: skip


def _is_http_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def routes_from_config(data: Mapping[str, Any], *, file: str = "<config>") -> RouteTable:
    """Build the table from the ``[[route]]`` entries of a parsed configuration file (TOML)."""
    routes = []
    for i, entry in enumerate(data.get("route", [])):
        name = str(entry.get("name", f"#{i + 1}"))
        known = set(Route.__dataclass_fields__)
        unknown = set(entry) - known
        if unknown:
            raise RouteConfigError(file, name, f"unknown keys {sorted(unknown)}")
        for key, value in entry.items():
            expected = _KINDS[key]
            if not isinstance(value, expected) or (isinstance(value, bool) and bool not in expected):
                kinds = " or ".join(k.__name__ for k in expected)
                raise RouteConfigError(file, name, f"{key}: expected {kinds}, got {type(value).__name__} {value!r}")
        for key in ("allowed_msisdn", "allowed_imsi", "allowed_vlr"):
            if key in entry and not all(isinstance(x, str) and x.isdigit() for x in entry[key]):
                raise RouteConfigError(file, name, f"{key}: expected a list of digit strings, got {entry[key]!r}")
        for key in ("primary_url", "backup_url", "end_notice_url"):
            url = entry.get(key)
            if url is not None and not _is_http_url(url):
                raise RouteConfigError(file, name, f"{key}: {url!r} is not an http:// or https:// URL")
        ca_file = entry.get("tls_ca_file")
        if ca_file is not None:
            try:
                ssl.create_default_context(cafile=ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise RouteConfigError(file, name, f"tls_ca_file: cannot load {ca_file!r}: {exc}") from None
        texts = entry.get("texts", {})
        for kind, by_language in texts.items():
            if kind not in TEXT_KINDS or not isinstance(by_language, dict) or not all(
                isinstance(v, str) for v in by_language.values()
            ):
                raise RouteConfigError(file, name, f"texts.{kind}: expected one of {', '.join(TEXT_KINDS)} = "
                                                   '{ default = "...", <language> = "..." }')  # fmt: skip
        try:
            kwargs = dict(entry)
            kwargs["name"] = name
            for key in ("allowed_msisdn", "allowed_imsi", "allowed_vlr"):
                if key in kwargs:
                    kwargs[key] = tuple(str(x) for x in kwargs[key])
            if not kwargs.get("code"):
                kwargs["code"] = None
            route = Route(**kwargs)
        except TypeError as exc:
            raise RouteConfigError(file, name, str(exc)) from None
        if route.code is not None and not route.primary_url:
            raise RouteConfigError(file, name, "primary_url is required")
        if route.dialect not in ("json", "africastalking"):
            raise RouteConfigError(file, name, f"dialect must be 'json' or 'africastalking', not {route.dialect!r}")
        if route.on_late not in ("text", "abort"):
            raise RouteConfigError(file, name, f"on_late must be 'text' or 'abort', not {route.on_late!r}")
        if route.on_too_long not in ("truncate", "refuse"):
            raise RouteConfigError(file, name, f"on_too_long must be 'truncate' or 'refuse', not {route.on_too_long!r}")
        if len(route.truncate_marker) > 20:
            raise RouteConfigError(file, name, "truncate_marker: at most 20 characters (it ends a 182-character text)")
        if route.timeout <= 0 or route.max_duration <= 0 or route.max_sessions <= 0:
            raise RouteConfigError(file, name, "timeout, max_duration and max_sessions must be positive")
        routes.append(route)
    return RouteTable.compile(routes, file=file)
