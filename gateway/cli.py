"""ussd-gateway command line.

    ussd-gateway decode HEX      decode an M3UA, SCCP or TCAP message (hex) down to MAP values and USSD text
    ussd-gateway selfcheck       run sample USSD messages through every layer, both ways, and report

    ussd-gateway run [-c FILE]   run the gateway (embedded default: M3UA SG on 127.0.0.1:2905, demo *123#)
    ussd-gateway dial CODE       act as one handset (menus on screen, answers from the keyboard or --input)
    ussd-gateway sim CODE        dial with scripted answers, or many times (a load generator)
    ussd-gateway phone MSISDN    act as the HLR and MSC/VLR of one handset: show each network-initiated USSD

    ussd-gateway push MSISDN TEXT [--mode request --route R] [--wait] [--api URL | -c FILE] [--callback-url U]
                                 [--ttl S] [--idempotency-key K]
                                 create a push through the push API (token in USSD_PUSH_TOKEN) and print it as JSON;
                                 --wait: poll it to its final state and print that too. Exit status 0 created (or,
                                 with --wait, acknowledged/answered), 1 another final state, 2 the API unreachable
                                 or refusing (its JSON error on stderr)

    ussd-gateway token create NAME --scope push:write [--scope push:read] [--msisdn-prefix P] [--rate N] [-c FILE]
    ussd-gateway token list [-c FILE]
    ussd-gateway token revoke NAME [-c FILE]
                                 the push API's tokens, in the push store the configuration names ([push] store);
                                 the store is opened directly, so they work while the gateway runs
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import aiohttp

from gateway import daemon
from gateway.codecs import layers, m3ua, sccp, tcap, ussd_string
from gateway.codecs import map as map_codec
from gateway.codecs.errors import CodecError
from gateway.codecs.map_address import AddressString
from gateway.codecs.sccp import SccpAddress
from gateway.config.load import ConfigError
from gateway.config.load import load as load_config
from gateway.push import tokens
from gateway.push.api import SCOPES, rfc3339
from gateway.push.backends import open_store
from gateway.push.model import State
from gateway.push.store import StoreError
from gateway.sim.dial import dial
from gateway.sim.phone import phone
from gateway.sim.run import SimSettings, dial_many

# design.md §3: a real TC-BEGIN (processUnstructuredSS-Request "*123#", msisdn 491720000001), as pycrate and
# asn1tools both produce it.
SAMPLE_BEGIN = bytes.fromhex(
    "62454804000000016b1e281c060700118605010101a011600f80020780a1090607040000010013026c1da11b02010102013b3013"
    "04010f0405aa986c3602800791947102000010"
)


def describe(value: Any) -> Any:
    """A JSON-friendly view of codec values: NamedTuples and dataclasses as objects, bytes as hex."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        out = {"type": type(value).__name__}
        out.update({k: describe(v) for k, v in zip(value._fields, value, strict=True)})
        return out
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"type": type(value).__name__}
        out.update({f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr})
        return out
    if isinstance(value, list | tuple):
        return [describe(v) for v in value]
    return value


def _texts(values: Sequence[Any]) -> list[str]:
    out = []
    for v in values:
        if isinstance(v, map_codec.UssdArg | map_codec.UssdRes):
            out.append(ussd_string.decode(v.dcs, v.string))
    return out


def decode_any(data: bytes) -> dict[str, Any]:
    """Decode from the outermost layer the octets look like: M3UA (version 1), SCCP unitdata, or TCAP."""
    if len(data) >= 8 and data[0] == m3ua.VERSION:
        msg = m3ua.decode(data)
        if (msg.msg_class, msg.msg_type) != (m3ua.MsgClass.TRANSFER, m3ua.Transfer.DATA):
            return {"m3ua": describe(msg)}
        d = layers.decode_data(data)
        return {"m3ua": describe(d.m3ua), "sccp": describe(d.sccp), "tcap": describe(d.tcap),
                "map": describe(d.map_values), "map_dialogue": describe(d.map_dialogue), "text": _texts(d.map_values)}
    if data and data[0] in (sccp.UDT, sccp.UDTS, sccp.XUDT, sccp.XUDTS):
        s = sccp.decode(data)
        out = {"sccp": describe(s)}
        out.update(_decode_tcap(s.data))
        return out
    return _decode_tcap(data)


def _decode_tcap(data: bytes) -> dict[str, Any]:
    t = tcap.decode(data)
    values, dialogue = layers.decode_map(t)
    return {"tcap": describe(t), "map": describe(values), "map_dialogue": describe(dialogue), "text": _texts(values)}


def selfcheck(out: Any = sys.stdout) -> int:
    """Decode the sample TC-BEGIN, answer it with a menu and a final text, and check every step."""
    gw = SccpAddress.gt_e164("491700000001", sccp.SSN_GSMSCF)
    msc = SccpAddress.gt_e164("491720000001", sccp.SSN_MSC)
    checks: list[tuple[str, bool]] = []
    begin = layers.encode_data(tcap.decode(SAMPLE_BEGIN), called=gw, calling=msc, opc=2, dpc=1, routing_context=1)
    d = layers.decode_data(begin)
    arg = d.map_values[0]
    checks.append(("M3UA DATA -> SCCP UDT -> TC-BEGIN -> processUnstructuredSS-Request", isinstance(arg,
                                                                                                   map_codec.UssdArg)))
    checks.append(("service code *123#", arg.text() == "*123#"))
    checks.append(("msisdn 491720000001", arg.msisdn == AddressString.e164("491720000001")))
    checks.append(("TC-BEGIN re-encodes byte for byte", tcap.encode(d.tcap) == SAMPLE_BEGIN))
    menu = map_codec.ussd_arg("1. Balance\n2. Top-up\n3. Прочее")
    cont = tcap.Continue(b"\x0a\x00\x00\x01", d.tcap.otid, tcap.Aare(map_codec.AC_NETWORK_UNSTRUCTURED_SS_V2),  # type: ignore[union-attr]
                         (tcap.Invoke(2, 60, map_codec.encode_ussd_arg(menu)),))
    wire = layers.encode_data(cont, called=msc, calling=gw, opc=1, dpc=2, routing_context=1)
    back = layers.decode_data(wire)
    checks.append(("TC-CONTINUE(60) menu in UCS2 round trip", back.map_values[0].text() == menu.text()
                   and menu.dcs == 0x48))
    final = map_codec.ussd_res("Your balance is 12.50 EUR")
    end = tcap.End(d.tcap.otid, None, (tcap.ReturnResult(1, 59, map_codec.encode_ussd_res(final)),))  # type: ignore[union-attr]
    back = layers.decode_data(layers.encode_data(end, called=msc, calling=gw, opc=1, dpc=2, routing_context=1))
    checks.append(("TC-END(59) final text round trip", back.map_values[0].text() == "Your balance is 12.50 EUR"))
    try:
        tcap.decode(b"\x62\x03\x49\x01\x01")
        checks.append(("malformed TC-BEGIN answered with P-Abort cause", False))
    except CodecError as exc:
        checks.append(("malformed TC-BEGIN answered with P-Abort cause", getattr(exc, "p_abort_cause", None) == 3))
    for name, ok in checks:
        print(f"{'ok  ' if ok else 'FAIL'} {name}", file=out)
    failed = sum(not ok for _, ok in checks)
    print(f"{len(checks) - failed}/{len(checks)} checks passed", file=out)
    return 1 if failed else 0


def _sim(args: argparse.Namespace) -> int:
    host, _, port = args.connect.rpartition(":")
    answers = [a for a in args.input.split(",") if a]
    calls = [(args.msisdn, args.code, list(answers)) for _ in range(args.count)]
    try:
        sessions, seconds = asyncio.run(dial_many(host or "127.0.0.1", int(port), calls,
                                                  settings=SimSettings(register=args.register,
                                                                       transport=args.transport),
                                                  concurrency=args.concurrency))  # fmt: skip
    except (OSError, TimeoutError) as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 1
    if args.count == 1:
        s = sessions[0]
        # The handset API's view (handset-ussd-api.txt): status, the texts and the DCS of each.
        print(json.dumps({"status": s.status, "menus": s.menus, "final": s.final, "error": s.error, "dcs": s.dcs},
                         ensure_ascii=False))  # fmt: skip
        return 0 if s.status == "ended" else 1
    ended = sum(s.status == "ended" for s in sessions)
    print(json.dumps({"sessions": len(sessions), "ended": ended, "seconds": round(seconds, 3),
                      "sessions_per_second": round(len(sessions) / seconds, 1) if seconds else None}))  # fmt: skip
    return 0 if ended == len(sessions) else 1


async def _read_line() -> str | None:
    """One answer from the keyboard (or a pipe); None at the end of input (the Cancel key)."""
    if sys.stdin.isatty():
        print("> ", end="", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line and not sys.stdin.isatty():
        print(f"> {line.strip()}", flush=True)  # a transcript shows the piped answers
    return line if line else None


def _phone(args: argparse.Namespace) -> int:
    host, _, port = args.connect.rpartition(":")
    try:
        return asyncio.run(phone(host or "127.0.0.1", int(port), msisdn=args.msisdn, imsi=args.imsi,
                                 answers=[a for a in args.input.split(",") if a], read_line=_read_line,
                                 out=sys.stdout, as_json=args.json, count=args.count, connect_timeout=args.wait,
                                 settings=SimSettings(register=args.register, transport=args.transport)))  # fmt: skip
    except (OSError, TimeoutError) as exc:
        print(json.dumps({"error": f"cannot reach the gateway at {args.connect}: {exc}"}), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


def _dial(args: argparse.Namespace) -> int:
    host, _, port = args.connect.rpartition(":")
    answers = [a for a in args.input.split(",") if a]
    read_line = _read_line
    try:
        return asyncio.run(dial(host or "127.0.0.1", int(port), args.code, msisdn=args.msisdn, answers=answers,
                                read_line=read_line, out=sys.stdout, as_json=args.json, connect_timeout=args.wait,
                                settings=SimSettings(register=args.register, transport=args.transport)))  # fmt: skip
    except (OSError, TimeoutError) as exc:
        print(json.dumps({"error": f"cannot reach the gateway at {args.connect}: {exc}"}), file=sys.stderr)
        return 2


async def _token_command(args: argparse.Namespace, store_url: str) -> int:
    store = await open_store(store_url)
    try:
        if args.action == "create":
            token = tokens.generate()
            try:
                made = await store.token_create(args.name, tokens.token_hash(token), sorted(set(args.scope)),
                                                args.msisdn_prefix, args.rate, time.time())  # fmt: skip
            except StoreError:
                print(f"a token named {args.name!r} exists already (token list)", file=sys.stderr)
                return 1
            print(f"token {made.name}: scopes {' '.join(made.scopes)}, msisdn prefix {made.msisdn_prefix or '-'}, "
                  f"rate {'-' if made.rate is None else f'{made.rate:g}/s'}")
            print("shown once, never stored (only its hash is): keep it now")
            print(token)  # alone on the last line, for scripts: ussd-gateway token create ... | tail -1
            return 0
        if args.action == "list":
            rows = [("NAME", "SCOPES", "PREFIX", "RATE", "CREATED", "REVOKED")]
            rows += [(t.name, ",".join(t.scopes), t.msisdn_prefix or "-", "-" if t.rate is None else f"{t.rate:g}",
                      rfc3339(t.created_at), "-" if t.revoked_at is None else rfc3339(t.revoked_at))
                     for t in await store.token_list()]  # fmt: skip
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for row in rows:
                print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
            return 0
        if await store.token_revoke(args.name, time.time()):
            print(f"token {args.name} revoked")
            return 0
        print(f"no live token is named {args.name!r}", file=sys.stderr)
        return 1
    finally:
        await store.close()


def _token(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    if cfg.push is None:
        print(json.dumps({"error": f"{cfg.file}: no [push] section: no push store"}), file=sys.stderr)
        return 2
    if args.action == "create":
        if args.msisdn_prefix and not args.msisdn_prefix.isdigit():
            print(json.dumps({"error": "--msisdn-prefix: digits only (international, e.g. 49170)"}), file=sys.stderr)
            return 2
        if args.rate is not None and not args.rate > 0:
            print(json.dumps({"error": "--rate: pushes a second, more than 0"}), file=sys.stderr)
            return 2
    return asyncio.run(_token_command(args, cfg.push.store))


TOKEN_ENV = "USSD_PUSH_TOKEN"
DEFAULT_API = "http://127.0.0.1:8090"
SUCCESS = frozenset({State.ACKNOWLEDGED, State.ANSWERED})
FINAL_STATES = frozenset(s.value for s in State if s.final)


class _ApiError(Exception):
    """The push API could not be reached, or answered with an error: the JSON for stderr."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(json.dumps(error, ensure_ascii=False))
        self.error = error


def _api_base(args: argparse.Namespace) -> str:
    """--api, else the [push_api] listen of -c FILE, else the default's; ConfigError, or ValueError with why."""
    if args.api:
        return str(args.api).rstrip("/")
    if args.config is None:
        return DEFAULT_API
    cfg = load_config(args.config)
    if cfg.push_api_listen is None:
        raise ValueError(f"{cfg.file}: no [push_api] listen: the gateway serves no push API")
    host, port = cfg.push_api_listen
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"  # a wildcard listener: reach it on loopback
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def _api_call(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """One API request; its JSON for a 2xx, else _ApiError (the API's own error object when it sent one)."""
    try:
        async with http.request(method, url, **kwargs) as resp:
            raw = await resp.read()
            status = resp.status
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        raise _ApiError({"error": {"code": "unreachable", "message": f"cannot reach the push API at {url}: "
                                     f"{reason}", "field": None}}) from None  # fmt: skip
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if 200 <= status < 300 and isinstance(data, dict):
        return data
    if isinstance(data, dict) and "error" in data:
        raise _ApiError(data)  # the API's error as it gave it: {"error": {"code", "message", "field"}}
    text = raw.decode(errors="replace")[:200]
    raise _ApiError({"error": {"code": "http_error", "message": f"HTTP {status} from {url}: {text}",
                                 "field": None}})  # fmt: skip


async def _push_command(args: argparse.Namespace, base: str, token: str) -> int:
    body: dict[str, Any] = {"msisdn": args.msisdn, "text": args.text}
    if args.mode is not None:
        body["mode"] = args.mode
    if args.route is not None:
        body["route"] = args.route
    if args.callback_url is not None:
        body["callback_url"] = args.callback_url
    if args.ttl is not None:
        body["ttl_s"] = args.ttl
    headers = {"Authorization": f"Bearer {token}"}
    if args.idempotency_key is not None:
        headers["Idempotency-Key"] = args.idempotency_key
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        push = await _api_call(http, "POST", f"{base}/v1/pushes", json=body, headers=headers)
        print(json.dumps(push, ensure_ascii=False), flush=True)
        if not args.wait:
            return 0
        url = f"{base}/v1/pushes/{push['id']}"
        delay = 0.1
        while push.get("state") not in FINAL_STATES:
            await asyncio.sleep(delay)
            delay = min(1.0, delay * 1.5)  # quick for a push that is done in a second, gentle for a long wait
            push = await _api_call(http, "GET", url, headers=headers)
        print(json.dumps(push, ensure_ascii=False), flush=True)
        return 0 if State(push["state"]) in SUCCESS else 1


def _push(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        print(json.dumps({"error": {"code": "no_token", "message": f"set {TOKEN_ENV} to a token with push:write "
                                    "(and push:read for --wait): ussd-gateway token create", "field": None}}),
              file=sys.stderr)  # fmt: skip
        return 2
    if args.mode == "request" and args.route is None:
        print(json.dumps({"error": {"code": "invalid_field", "message": "--mode request needs --route (the "
                                    "application the answer goes to)", "field": "route"}}), file=sys.stderr)
        return 2
    try:
        base = _api_base(args)
    except ConfigError as exc:
        print(json.dumps({"error": {"code": "bad_configuration", "message": str(exc), "field": exc.key}}),
              file=sys.stderr)  # fmt: skip
        return 2
    except ValueError as exc:
        print(json.dumps({"error": {"code": "no_push_api", "message": str(exc), "field": None}}), file=sys.stderr)
        return 2
    try:
        return asyncio.run(_push_command(args, base, token))
    except _ApiError as exc:
        print(json.dumps(exc.error, ensure_ascii=False), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _network_options(parser: argparse.ArgumentParser, *, handset: bool) -> None:
    """The options every simulator command shares; a handset (dial, phone) also prints JSON and waits."""
    if handset:
        parser.add_argument("--json", action="store_true", help="one JSON object per network message")
        parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the M3UA association")
    parser.add_argument("--register", action="store_true", help="register a routing key first (osmo-stp)")
    parser.add_argument("--transport", choices=("tcp", "sctp"), default="tcp", help="M3UA over TCP or kernel SCTP")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ussd-gateway", description="SS7/MAP USSD gateway")
    sub = parser.add_subparsers(dest="command", required=True)
    dec = sub.add_parser("decode", help="decode an M3UA, SCCP or TCAP message given in hex")
    dec.add_argument("hex", help="the message octets in hex (spaces and colons allowed)")
    sub.add_parser("selfcheck", help="run sample messages through every layer both ways")
    run = sub.add_parser("run", help="run the gateway (the embedded default configuration without -c)")
    run.add_argument("-c", "--config", help="the configuration file (TOML)")
    sim = sub.add_parser("sim", help="act as an MSC/VLR with handsets: connect to a gateway or STP and dial")
    sim.add_argument("code", help="the service code to dial, e.g. '*123#'")
    sim.add_argument("--connect", default="127.0.0.1:2905", help="HOST:PORT of the gateway or STP (M3UA/TCP)")
    sim.add_argument("--msisdn", default="491720000001")
    sim.add_argument("--input", default="", help="the answers to the menus, comma-separated (e.g. 1,2)")
    sim.add_argument("--count", type=int, default=1, help="dial this many times (a load test)")
    sim.add_argument("--concurrency", type=int, default=100)
    _network_options(sim, handset=False)
    dl = sub.add_parser("dial", help="act as one handset: dial a code, show each menu, answer from the keyboard")
    dl.add_argument("code", help="the service code to dial, e.g. '*123#'")
    dl.add_argument("--connect", default="127.0.0.1:2905", help="HOST:PORT of the gateway or STP (M3UA/TCP)")
    dl.add_argument("--msisdn", default="491720000001")
    dl.add_argument("--input", default="", help="answers to use first, comma-separated; then the keyboard")
    _network_options(dl, handset=True)
    ph = sub.add_parser("phone", help="act as the HLR and MSC/VLR of one handset: show network-initiated USSD")
    ph.add_argument("msisdn", help="the handset's MSISDN (international digits)")
    ph.add_argument("--imsi", default="262011234567890")
    ph.add_argument("--connect", default="127.0.0.1:2905", help="HOST:PORT of the gateway or STP (M3UA/TCP)")
    ph.add_argument("--input", default="", help="answers to requests to use first, comma-separated; then the keyboard")
    ph.add_argument("--count", type=int, default=None, help="stop after this many texts (default: run until Ctrl-C)")
    _network_options(ph, handset=True)
    pu = sub.add_parser("push", help="send a network-initiated USSD text through the push API (USSD_PUSH_TOKEN)")
    pu.add_argument("msisdn", help="the subscriber's MSISDN (international digits)")
    pu.add_argument("text", help="the text (one USSD message: 182 GSM 7-bit characters or 80 UCS2)")
    pu.add_argument("--mode", choices=("notify", "request"), default=None,
                    help="notify (default): a flash text; request: a question whose answer goes to --route")
    pu.add_argument("--route", help="request mode: the route (by name) whose application gets the answer")
    pu.add_argument("--wait", action="store_true", help="poll the push until its final state and print it")
    pu.add_argument("--api", help=f"the push API's base URL (default: -c FILE's [push_api] listen, else "
                                  f"{DEFAULT_API})")  # fmt: skip
    pu.add_argument("-c", "--config", help="the gateway's configuration file: its [push_api] listen is the API")
    pu.add_argument("--callback-url", help="where the gateway POSTs the push at its final state")
    pu.add_argument("--ttl", type=float, help="seconds the push may wait for the subscriber (default: the gateway's)")
    pu.add_argument("--idempotency-key", help="the same key and body again give the same push, never a second one")
    pu.add_argument("--timeout", type=float, default=30.0, help="seconds for each API request (default 30)")
    tok = sub.add_parser("token", help="create, list or revoke the push API's tokens")
    tok_sub = tok.add_subparsers(dest="action", required=True)
    create = tok_sub.add_parser("create", help="make a token and print it, once, on the last line")
    create.add_argument("name", help="the token's name (in logs and in the pushes it creates)")
    create.add_argument("--scope", action="append", choices=SCOPES, required=True,
                        help="push:write (create, cancel) and/or push:read (get, list); repeat for both")
    create.add_argument("--msisdn-prefix", default="", help="only MSISDNs starting with these digits")
    create.add_argument("--rate", type=float, help="at most this many pushes a second (default: no limit)")
    listing = tok_sub.add_parser("list", help="the tokens: names, scopes, prefix, rate, created, revoked (no hash)")
    revoke = tok_sub.add_parser("revoke", help="revoke a token: refused from the next request on")
    revoke.add_argument("name")
    for action in (create, listing, revoke):
        action.add_argument("-c", "--config", help="the configuration file (TOML) naming the push store")
    args = parser.parse_args(argv)
    if args.command == "token":
        return _token(args)
    if args.command == "push":
        return _push(args)
    if args.command == "dial":
        return _dial(args)
    if args.command == "phone":
        return _phone(args)
    if args.command == "sim":
        return _sim(args)
    if args.command == "run":
        return daemon.run(args.config)
    if args.command == "decode":
        text = "".join(c for c in args.hex if c not in " :\n\t")
        try:
            data = bytes.fromhex(text)
        except ValueError:
            print(json.dumps({"error": "not a hex string"}), file=sys.stderr)
            return 2
        try:
            print(json.dumps(decode_any(data), indent=2, ensure_ascii=False))
        except CodecError as exc:
            print(json.dumps({"error": str(exc), "kind": type(exc).__name__,
                              **{k: describe(v) for k, v in vars(exc).items() if v is not None}},
                             ensure_ascii=False), file=sys.stderr)  # fmt: skip
            return 1
        return 0
    return selfcheck()


if __name__ == "__main__":
    raise SystemExit(main())
