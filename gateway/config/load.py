"""Configuration: a TOML file (or the embedded default), checked at start with file, key and reason."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.routing.table import RouteConfigError, RouteTable, routes_from_config

DEFAULT = Path(__file__).resolve().parents[2] / "config" / "default.toml"


class ConfigError(ValueError):
    def __init__(self, file: str, key: str, reason: str) -> None:
        super().__init__(f"{file}: {key}: {reason}")
        self.file = file
        self.key = key
        self.reason = reason


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    file: str
    role: str
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


def load(path: str | Path | None = None) -> GatewayConfig:
    file = str(path or DEFAULT)
    try:
        data = tomllib.loads(Path(file).read_text())
    except OSError as exc:
        raise ConfigError(file, "-", f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}") from None
    known = {"m3ua", "sccp", "tcap", "demo_app", "cdr", "route", "metrics"}
    for key in data:
        if key not in known:
            raise ConfigError(file, key, f"unknown section (known: {', '.join(sorted(known))})")
    role = _get(data, file, "m3ua.role", str, "sg")
    if role != "sg":
        raise ConfigError(file, "m3ua.role", f"{role!r}: only 'sg' is implemented so far")
    host, port = _hostport(file, "m3ua.listen", _get(data, file, "m3ua.listen", str))
    pc = _get(data, file, "sccp.point_code", int)
    for key in ("sccp.point_code", "sccp.network_point_code"):
        value = _get(data, file, key, int)
        if not 0 <= value < 1 << 14:
            raise ConfigError(file, key, f"{value} is not a 14-bit ITU point code")
    gt = _get(data, file, "sccp.global_title", str)
    if not gt.isdigit() or not 1 <= len(gt) <= 15:
        raise ConfigError(file, "sccp.global_title", f"{gt!r} is not 1..15 digits")
    demo = data.get("demo_app")
    demo_listen = _hostport(file, "demo_app.listen", _get(data, file, "demo_app.listen", str)) if demo else None
    try:
        routes = routes_from_config(data, file=file)
    except RouteConfigError as exc:
        raise ConfigError(file, f"route {exc.rule!r}", exc.reason) from None
    return GatewayConfig(
        file, role, host, port, _get(data, file, "m3ua.routing_context", int, None), pc,
        _get(data, file, "sccp.network_point_code", int), gt, _get(data, file, "sccp.ssn", int, 147),
        _get(data, file, "tcap.idle_timeout", float, 120.0), _get(data, file, "tcap.invoke_timeout", float, 60.0),
        _get(data, file, "tcap.tid_prefix", int, 0), _get(data, file, "tcap.tid_prefix_bits", int, 0),
        demo_listen, _get(data, file, "cdr.path", str, None), routes,
        _hostport(file, "metrics.listen", _get(data, file, "metrics.listen", str)) if "metrics" in data else None,
    )  # fmt: skip
