"""Configuration: a TOML file (or the embedded default), checked at start with file, key and reason.

Every section and key is known; a typo is refused rather than silently ignored.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.codecs import m3ua
from gateway.ops.http_listener import HttpLimits
from gateway.ops.logs import LEVELS
from gateway.push.backends import store_url_problem
from gateway.routing.table import RouteConfigError, RouteTable, routes_from_config

DEFAULT = Path(__file__).resolve().parents[2] / "config" / "default.toml"

_KEYS: dict[str, set[str]] = {
    "m3ua": {"role", "transport", "listen", "connect", "routing_context", "register", "traffic_mode",
             "asp_identifier", "beat_interval"},
    "sccp": {"point_code", "network_point_code", "global_title", "ssn"},
    "tcap": {"idle_timeout", "invoke_timeout", "tid_prefix", "tid_prefix_bits"},
    "sessions": {"max_active", "network_code", "drain_timeout"},
    "demo_app": {"listen"},
    "cdr": {"path"},
    "metrics": {"listen"},
    "http": {"idle_timeout", "header_timeout", "max_header_bytes", "max_body_bytes", "max_connections"},
    "log": {"level"},
    "pcap": {"path"},
    "push": {"store", "default_ttl_s", "max_ttl_s", "retention_s", "rate", "max_in_flight", "hlr_gt", "node_id",
             "callback_secret", "callback_horizon_s", "via", "retry_base_s", "retry_cap_s"},
    "push_api": {"listen", "max_upload_bytes"},
}  # fmt: skip


class ConfigError(ValueError):
    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PushConfig:
    """``[push]``: the push store and the push service's pacing; the API's defaults for a push's lifetime."""

    store: str = "sqlite:var/push.db"  # sqlite:PATH or postgresql://... (gateway/push/backends.py)
    default_ttl_s: float = 86_400.0  # a push without ttl_s or expires_at expires this long after its creation
    max_ttl_s: float = 7 * 86_400.0  # the longest lifetime a push may ask for
    retention_s: float = 7 * 86_400.0  # finished pushes and idempotency keys are kept this long
    rate: float = 100.0  # new pushes a second toward the network
    max_in_flight: int = 1000  # pushes between routing and their outcome at once
    hlr_gt: str | None = None  # the HLR's GT for SRI-for-SM; None: the MSISDN itself (the STP routes it)
    node_id: str = "gw1"  # this node's name in the store's claims (unique per node on a shared PostgreSQL)
    callback_secret: str | None = None  # signs status callbacks (X-USSD-Signature), like route.secret app calls
    callback_horizon_s: float = 86_400.0  # a callback not answered 2xx by then is given up
    via: str = "vlr"  # "vlr": SRI-for-SM, then the serving MSC/VLR; "hlr": the invoke to the HLR (TS 23.090)
    retry_base_s: float = 30.0  # the wait after a failed attempt, doubling each time ...
    retry_cap_s: float = 3600.0  # ... up to this (with jitter), until the push expires


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    file: str
    role: str  # "sg": accept ASPs (listen); "asp": connect to one or more STPs/SGs
    listen_host: str
    listen_port: int
    routing_context: int | None
    point_code: int
    network_point_code: int
    global_title: str
    ssn: int
    idle_timeout: float
    invoke_timeout: float
    tid_prefix: int
    tid_prefix_bits: int
    demo_app: tuple[str, int] | None
    cdr_path: str | None
    routes: RouteTable
    metrics_listen: tuple[str, int] | None = None
    transport: str = "tcp"  # "tcp" or "sctp"
    connect: tuple[tuple[str, int], ...] = ()  # ASP role: the STPs, one association each
    register: bool = False  # ASP role: dynamic registration (REG_REQ) of a routing key for our point code
    traffic_mode: int = m3ua.TrafficMode.LOADSHARE
    asp_identifier: int | None = None
    beat_interval: float = 10.0
    max_sessions: int = 10_000
    network_code: str = ""
    log_level: str = "info"
    pcap_path: str | None = None
    drain_timeout: float = 10.0  # at stop, how long sessions in progress may go on (new ones get the busy text)
    http_limits: HttpLimits = field(default_factory=HttpLimits)  # of every HTTP listener
    push: PushConfig | None = None  # None: no [push] section, no pushes
    push_api_listen: tuple[str, int] | None = None  # [push_api] listen
    push_api_max_upload_bytes: int = 32 * 1024 * 1024  # [push_api] a CSV campaign upload's limit


def _get(data: dict[str, Any], file: str, key: str, kind: type, default: Any = ...) -> Any:
    node: Any = data
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is ...:
                raise ConfigError(file, key, "missing")
            return default
        node = node[part]
    if kind is float and isinstance(node, int) and not isinstance(node, bool):
        node = float(node)
    if not isinstance(node, kind) or (kind is int and isinstance(node, bool)):
        raise ConfigError(file, key, f"expected {kind.__name__}, got {type(node).__name__} {node!r}")
    return node


def _hostport(file: str, key: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(file, key, f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def _choice(data: dict[str, Any], file: str, key: str, choices: tuple[str, ...], default: str) -> str:
    value: str = _get(data, file, key, str, default)
    if value not in choices:
        raise ConfigError(file, key, f"{value!r} is not one of {', '.join(choices)}")
    return value


def _check_keys(data: dict[str, Any], file: str) -> None:
    known = {*_KEYS, "route"}
    for section, body in data.items():
        if section not in known:
            raise ConfigError(file, section, f"unknown section (known: {', '.join(sorted(known))})")
        if section == "route":
            continue
        if not isinstance(body, dict):
            raise ConfigError(file, section, "expected a table ([section])")
        for key in body:
            if key not in _KEYS[section]:
                raise ConfigError(file, f"{section}.{key}", f"unknown key (known: {', '.join(sorted(_KEYS[section]))})")


def _http_limits(data: dict[str, Any], file: str) -> HttpLimits:
    d = HttpLimits()
    limits = HttpLimits(
        idle_timeout=_get(data, file, "http.idle_timeout", float, d.idle_timeout),
        header_timeout=_get(data, file, "http.header_timeout", float, d.header_timeout),
        max_header_bytes=_get(data, file, "http.max_header_bytes", int, d.max_header_bytes),
        max_body_bytes=_get(data, file, "http.max_body_bytes", int, d.max_body_bytes),
        max_connections=_get(data, file, "http.max_connections", int, d.max_connections),
    )
    problem = limits.problem()
    if problem is not None:
        raise ConfigError(file, f"http.{problem[0]}", problem[1])
    return limits


def _push(data: dict[str, Any], file: str) -> PushConfig | None:
    if "push" not in data:
        if "push_api" in data:
            raise ConfigError(file, "push_api", "needs a [push] section (the store the API writes to)")
        return None
    d = PushConfig()
    store = _get(data, file, "push.store", str, d.store)
    problem = store_url_problem(store)
    if problem is not None:
        raise ConfigError(file, "push.store", problem)
    for key in ("push.default_ttl_s", "push.max_ttl_s", "push.retention_s", "push.rate", "push.max_in_flight",
                "push.callback_horizon_s", "push.retry_base_s", "push.retry_cap_s"):
        kind = int if key == "push.max_in_flight" else float
        if _get(data, file, key, kind, 1) <= 0:
            raise ConfigError(file, key, "must be positive")
    push = PushConfig(
        store=store,
        default_ttl_s=_get(data, file, "push.default_ttl_s", float, d.default_ttl_s),
        max_ttl_s=_get(data, file, "push.max_ttl_s", float, d.max_ttl_s),
        retention_s=_get(data, file, "push.retention_s", float, d.retention_s),
        rate=_get(data, file, "push.rate", float, d.rate),
        max_in_flight=_get(data, file, "push.max_in_flight", int, d.max_in_flight),
        hlr_gt=_get(data, file, "push.hlr_gt", str, None),
        node_id=_get(data, file, "push.node_id", str, d.node_id),
        callback_secret=_get(data, file, "push.callback_secret", str, None),
        callback_horizon_s=_get(data, file, "push.callback_horizon_s", float, d.callback_horizon_s),
        via=_get(data, file, "push.via", str, d.via),
        retry_base_s=_get(data, file, "push.retry_base_s", float, d.retry_base_s),
        retry_cap_s=_get(data, file, "push.retry_cap_s", float, d.retry_cap_s),
    )
    if push.via not in ("vlr", "hlr"):
        raise ConfigError(file, "push.via", f"{push.via!r} is neither \"vlr\" nor \"hlr\"")
    if push.default_ttl_s > push.max_ttl_s:
        raise ConfigError(file, "push.default_ttl_s", f"{push.default_ttl_s:g} is over max_ttl_s "
                          f"({push.max_ttl_s:g})")  # fmt: skip
    if push.hlr_gt is not None and not (push.hlr_gt.isdigit() and 1 <= len(push.hlr_gt) <= 15):
        raise ConfigError(file, "push.hlr_gt", f"{push.hlr_gt!r} is not 1..15 digits")
    if not push.node_id:
        raise ConfigError(file, "push.node_id", "must not be empty")
    return push


def load(path: str | Path | None = None) -> GatewayConfig:
    file = str(path or DEFAULT)
    try:
        data = tomllib.loads(Path(file).read_text())
    except OSError as exc:
        raise ConfigError(file, "-", f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}") from None
    _check_keys(data, file)
    role = _choice(data, file, "m3ua.role", ("sg", "asp"), "sg")
    transport = _choice(data, file, "m3ua.transport", ("tcp", "sctp"), "tcp")
    host, port = "", 0
    connect: tuple[tuple[str, int], ...] = ()
    if role == "sg":
        host, port = _hostport(file, "m3ua.listen", _get(data, file, "m3ua.listen", str))
    else:
        peers = _get(data, file, "m3ua.connect", list)
        if not peers or not all(isinstance(p, str) for p in peers):
            raise ConfigError(file, "m3ua.connect", 'expected a list of "HOST:PORT" (the STPs), at least one')
        connect = tuple(_hostport(file, "m3ua.connect", p) for p in peers)
    mode = _choice(data, file, "m3ua.traffic_mode", ("loadshare", "override"), "loadshare")
    rc = _get(data, file, "m3ua.routing_context", int, None)
    register = _get(data, file, "m3ua.register", bool, False)
    if role == "asp" and rc is None and not register:
        raise ConfigError(file, "m3ua.routing_context", "an ASP needs a routing context, or register = true")
    for key in ("sccp.point_code", "sccp.network_point_code"):
        value = _get(data, file, key, int)
        if not 0 <= value < 1 << 14:
            raise ConfigError(file, key, f"{value} is not a 14-bit ITU point code")
    gt = _get(data, file, "sccp.global_title", str)
    if not gt.isdigit() or not 1 <= len(gt) <= 15:
        raise ConfigError(file, "sccp.global_title", f"{gt!r} is not 1..15 digits")
    positive = ("tcap.idle_timeout", "tcap.invoke_timeout")
    for key in positive:
        if _get(data, file, key, float, 1.0) <= 0:
            raise ConfigError(file, key, "must be positive")
    if _get(data, file, "sessions.drain_timeout", float, 10.0) < 0:
        raise ConfigError(file, "sessions.drain_timeout", "must not be negative")
    max_sessions = _get(data, file, "sessions.max_active", int, 10_000)
    if max_sessions <= 0:
        raise ConfigError(file, "sessions.max_active", "must be positive")
    http_limits = _http_limits(data, file)
    push = _push(data, file)
    demo = data.get("demo_app")
    demo_listen = _hostport(file, "demo_app.listen", _get(data, file, "demo_app.listen", str)) if demo else None
    try:
        routes = routes_from_config(data, file=file)
    except RouteConfigError as exc:
        raise ConfigError(file, f"route {exc.rule!r}", exc.reason) from None
    return GatewayConfig(
        file, role, host, port, rc, _get(data, file, "sccp.point_code", int),
        _get(data, file, "sccp.network_point_code", int), gt, _get(data, file, "sccp.ssn", int, 147),
        _get(data, file, "tcap.idle_timeout", float, 120.0), _get(data, file, "tcap.invoke_timeout", float, 60.0),
        _get(data, file, "tcap.tid_prefix", int, 0), _get(data, file, "tcap.tid_prefix_bits", int, 0),
        demo_listen, _get(data, file, "cdr.path", str, None), routes,
        _hostport(file, "metrics.listen", _get(data, file, "metrics.listen", str)) if "metrics" in data else None,
        transport=transport, connect=connect, register=register,
        traffic_mode=m3ua.TrafficMode.OVERRIDE if mode == "override" else m3ua.TrafficMode.LOADSHARE,
        asp_identifier=_get(data, file, "m3ua.asp_identifier", int, None),
        beat_interval=_get(data, file, "m3ua.beat_interval", float, 10.0),
        max_sessions=max_sessions, network_code=_get(data, file, "sessions.network_code", str, ""),
        log_level=_choice(data, file, "log.level", tuple(LEVELS), "info"),
        pcap_path=_get(data, file, "pcap.path", str, None),
        drain_timeout=_get(data, file, "sessions.drain_timeout", float, 10.0), http_limits=http_limits,
        push=push, push_api_listen=_hostport(file, "push_api.listen", _get(data, file, "push_api.listen", str))
        if "push_api" in data else None,
        push_api_max_upload_bytes=_positive(data, file, "push_api.max_upload_bytes", 32 * 1024 * 1024),
    )  # fmt: skip


def _positive(data: dict[str, Any], file: str, key: str, default: int) -> int:
    value: int = _get(data, file, key, int, default)
    if value <= 0:
        raise ConfigError(file, key, "must be positive")
    return value
