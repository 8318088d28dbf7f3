"""The pull scenarios of issue 4, run against the real daemon (gateway.daemon.serve on a configuration file).

Each case checks what the subscriber saw (texts, DCS, error), what the application received, the CDR, the
end-of-session notice and the counters on /metrics; every SS7 message goes to the daemon's pcap, which tshark
must decode clean with the texts the subscribers saw. Used directly (gateway as SG, the simulator as its ASP) and
through osmo-stp (both as ASPs of the STP).
"""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import structlog

from gateway.codecs import dcs as dcs_codec
from gateway.config.load import GatewayConfig, load
from gateway.ops import logs
from gateway.sim.network import HandsetSession
from gateway.sim.run import SimSettings, dial_many
from tests.support import pull_apps, tshark
from tests.support.daemon import running
from tests.support.osmo_stp import free_port
from tests.support.pull_apps import Apps

GSM7 = dcs_codec.GSM7_UNSPECIFIED
UCS2 = dcs_codec.UCS2


@dataclass
class Case:
    name: str
    code: str
    answers: list[str | None]
    route: str
    outcome: str
    menus: list[str] = field(default_factory=list)
    final: str | None = None
    error: str | None = None  # what the handset reports instead of a final text
    app: str | None = None  # the application path that must have been asked
    app_saw: list[str | None] = field(default_factory=list)  # each request's text (AT) or input (JSON)
    menu_path: list[str] = field(default_factory=list)
    dcs: list[int] | None = None
    notice: str | None = None  # the notice's outcome (JSON) / status (Africa's Talking), when the route sends one
    msisdn: str = ""


def cases() -> list[Case]:
    a = pull_apps
    out = [
        Case("bank balance (explainer flow)", "*245#", ["1"], "bank", "completed", [a.BANK_MENU], a.BANK_BALANCE,
             app="bank", app_saw=["", "1"], menu_path=["1"], dcs=[GSM7, GSM7], notice="Success"),
        Case("dental booking with an invalid choice", "*384#", ["5", "2", "2", "1", "1"], "dental", "completed",
             [a.DENTAL_MAIN, a.DENTAL_INVALID, a.DENTAL_TYPES, a.DENTAL_SLOTS, a.DENTAL_CONFIRM], a.DENTAL_DONE,
             app="dental", app_saw=[None, "5", "2", "2", "1", "1"], menu_path=["5", "2", "2", "1", "1"],
             notice="completed"),
        Case("direct dial with parameters (sensitive)", "*777*4917*500#", [], "send", "completed", [],
             "Sent 500 to 4917", app="send", app_saw=["4917*500"]),
        Case("UCS2 menu, then 182 GSM characters", "*100#", ["1"], "i18n", "completed", [a.UCS2_MENU], a.GSM_182,
             app="i18n", app_saw=[None, "1"], menu_path=["1"], dcs=[UCS2, GSM7]),
        Case("unknown code: default route", "*999#", [], "default", "unknown-code", [], "Unknown code"),
        Case("app slow: timeout text", "*246#", [], "slow", "app-timeout", [], "Too slow, sorry", app="slow",
             app_saw=[None], notice="app-timeout"),
        Case("app slow: U-ABORT policy", "*256#", [], "late-abort", "app-timeout", [], None, error="aborted",
             app="slow", app_saw=[None]),
        Case("app primary 503: backup serves", "*247#", ["1"], "flaky", "completed", [a.BANK_MENU], a.BANK_BALANCE,
             app="broken", app_saw=["", "1"], menu_path=["1"]),
        Case("app down on both URLs", "*248#", [], "down", "app-down", [], "Service down"),
        Case("app answers garbage", "*249#", [], "garbage", "app-bad-reply", [], "Service unavailable, try later",
             app="garbage", app_saw=[""]),
        Case("reply too long: refused", "*250#", [], "long-refuse", "app-too-long", [],
             "Service unavailable, try later", app="long", app_saw=[None]),
        # "[" and "]" are GSM 7-bit extension characters (TS 23.038 §6.2.1.1): two septets each, 182 - 9 = 173.
        Case("reply too long: truncated", "*251#", [], "long-cut", "completed", [], "x" * 173 + " [more]",
             app="long", app_saw=[None]),
        Case("user aborts at the menu", "*245#", [], "bank", "user-aborted", [a.BANK_MENU], None,
             error="user-cancelled", app="bank", app_saw=[""], notice="Incomplete"),
        Case("user never answers: session timeout", "*384#", [None], "dental", "timeout", [a.DENTAL_MAIN], None,
             error="aborted", app="dental", app_saw=[None], notice="timeout"),
        Case("caller outside the route's allowed prefixes", "*253#", [], "staff", "not-allowed", [], "Staff only"),
        # Overload: the route takes one session at a time; the second gets the busy text at once.
        Case("overload: first session", "*252#", [], "hold", "completed", [], "Held and done", app="hold",
             app_saw=[None]),
        Case("overload: second session gets busy", "*252#", [], "hold", "busy", [], "Busy, try later"),
    ]  # fmt: skip
    for i, case in enumerate(out):
        case.msisdn = f"4917200010{i:02d}"
    return out


def config_text(apps: Apps, tmp: Path, *, asp_of: int | None = None) -> str:
    """The daemon's configuration: as SG on a free port, or (``asp_of``) as an ASP of the STP on that port."""
    dead = [free_port(), free_port()]
    b = apps.base
    if asp_of is None:
        m3ua = f'role = "sg"\nlisten = "127.0.0.1:{free_port()}"\nrouting_context = 1\nbeat_interval = 0'
    else:
        m3ua = (f'role = "asp"\nconnect = ["127.0.0.1:{asp_of}"]\nregister = true\ntraffic_mode = "override"\n'
                "beat_interval = 1.0")  # fmt: skip
    return f"""
[m3ua]
{m3ua}
[sccp]
point_code = 1
network_point_code = 2
global_title = "491700000001"
[tcap]
invoke_timeout = 1.5
[sessions]
max_active = 100
[cdr]
path = "{tmp}/cdr.jsonl"
[pcap]
path = "{tmp}/captures/gateway.pcap"  # a folder that does not exist yet
[metrics]
listen = "127.0.0.1:{free_port()}"
[log]
level = "debug"

[[route]]
name = "bank"
code = "*245#"
primary_url = "{b}/bank"
dialect = "africastalking"
end_notice_url = "{b}/notice"
[[route]]
name = "dental"
code = "*384#"
primary_url = "{b}/dental"
end_notice_url = "{b}/notice"
[[route]]
name = "i18n"
code = "*100#"
primary_url = "{b}/i18n"
[[route]]
name = "send"
code = "*777#"
primary_url = "{b}/send"
dialect = "africastalking"
sensitive = true
[[route]]
name = "slow"
code = "*246#"
primary_url = "{b}/slow"
timeout = 0.3
end_notice_url = "{b}/notice"
texts = {{ timeout = {{ default = "Too slow, sorry" }} }}
[[route]]
name = "late-abort"
code = "*256#"
primary_url = "{b}/slow"
timeout = 0.3
on_late = "abort"
[[route]]
name = "flaky"
code = "*247#"
primary_url = "{b}/broken"
backup_url = "{apps.backup}/bank"
dialect = "africastalking"
[[route]]
name = "down"
code = "*248#"
primary_url = "http://127.0.0.1:{dead[0]}/x"
backup_url = "http://127.0.0.1:{dead[1]}/x"
texts = {{ error = {{ default = "Service down" }} }}
[[route]]
name = "garbage"
code = "*249#"
primary_url = "{b}/garbage"
dialect = "africastalking"
texts = {{ error = {{ default = "Service unavailable, try later" }} }}
[[route]]
name = "long-refuse"
code = "*250#"
primary_url = "{b}/long"
on_too_long = "refuse"
texts = {{ error = {{ default = "Service unavailable, try later" }} }}
[[route]]
name = "long-cut"
code = "*251#"
primary_url = "{b}/long"
truncate_marker = " [more]"
[[route]]
name = "hold"
code = "*252#"
primary_url = "{b}/hold"
max_sessions = 1
texts = {{ busy = {{ default = "Busy, try later" }} }}
[[route]]
name = "staff"
code = "*253#"
primary_url = "{b}/bank"
dialect = "africastalking"
allowed_msisdn = ["4917299"]
texts = {{ unknown = {{ default = "Staff only" }} }}
[[route]]
name = "default"
texts = {{ unknown = {{ default = "Unknown code" }} }}
"""


@dataclass
class Run:
    sessions: list[HandsetSession]
    cdrs: list[dict[str, object]]
    metrics: str
    log_lines: list[dict[str, object]]
    pcap: Path


DEFAULT_ROUTE = '[[route]]\nname = "default"\ntexts = { unknown = { default = "Unknown code" } }\n'


async def run(apps: Apps, tmp: Path, all_cases: Sequence[Case], *, stp_port: int | None = None,
              default_route: str | None = None) -> Run:  # fmt: skip
    """Run the daemon on :func:`config_text` (``default_route`` replaces its default route; "" removes it),
    dial every case at once, and collect what the checks need."""
    cfg_path = tmp / "gw.toml"
    text = config_text(apps, tmp, asp_of=stp_port)
    if default_route is not None:
        assert DEFAULT_ROUTE in text
        text = text.replace(DEFAULT_ROUTE, default_route)
    cfg_path.write_text(text)
    cfg = load(cfg_path)
    log_stream = io.StringIO()
    logs.configure(cfg.log_level, log_stream)
    try:
        async with running(cfg) as ready:
            sessions, metrics = await _dial_all(ready, cfg, all_cases, stp_port)
    finally:
        structlog.reset_defaults()
    cdrs = [json.loads(line) for line in (tmp / "cdr.jsonl").read_text().splitlines()]
    log_lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    return Run(sessions, cdrs, metrics, log_lines, tmp / "captures" / "gateway.pcap")


async def _dial_all(ready: dict[str, object], cfg: GatewayConfig, all_cases: Sequence[Case],
                    stp_port: int | None) -> tuple[list[HandsetSession], str]:  # fmt: skip
    if stp_port is None:
        host, port = str(ready["m3ua"]).split(":")
        settings = SimSettings()
    else:
        host, port = "127.0.0.1", str(stp_port)
        settings = SimSettings(register=True, routing_context=None)
    calls = [(c.msisdn, c.code, list(c.answers)) for c in all_cases]
    sessions, _ = await dial_many(host, int(port), calls, settings=settings, concurrency=max(1, len(calls)),
                                  timeout=30)  # fmt: skip
    await asyncio.sleep(0.3)  # let the end-of-session notices arrive
    assert cfg.metrics_listen is not None
    async with aiohttp.ClientSession() as http, http.get("http://{}:{}/metrics".format(*cfg.metrics_listen)) as r:
        return sessions, await r.text()


def _app_view(path: str, body: dict[str, object]) -> str | None:
    if "text" in body and "phoneNumber" in body:  # Africa's Talking
        return str(body["text"])
    value = body.get("input")
    return None if value is None else str(value)


def _msisdn_of(body: dict[str, object]) -> str:
    return str(body.get("msisdn") or str(body.get("phoneNumber", "")).lstrip("+"))


def check(result: Run, all_cases: Sequence[Case], apps: Apps) -> None:
    """Every case: subscriber view, application view, CDR, notice, log line; then counters and the pcap."""
    by_msisdn_cdr = {str(c["msisdn"]): c for c in result.cdrs}
    assert len(result.cdrs) == len(all_cases), "one CDR per session"
    pairs = list(zip(result.sessions, all_cases, strict=True))
    hold = [i for i, (_, c) in enumerate(pairs) if c.route == "hold"]
    if pairs[hold[0]][0].final != pairs[hold[0]][1].final:  # which of the two came second is up to the scheduler
        (s0, c0), (s1, c1) = pairs[hold[0]], pairs[hold[1]]
        pairs[hold[0]], pairs[hold[1]] = (s0, c1), (s1, c0)
    for session, case in pairs:
        what = case.name
        # 1. What the subscriber saw.
        assert session.done, what
        assert session.menus == case.menus, what
        assert session.final == case.final, (what, session.final)
        if case.error is not None:
            assert session.error == case.error, (what, session.error)
            assert session.status == "network-error", what
        else:
            assert session.error is None and session.status == "ended", (what, session.error)
        if case.dcs is not None:
            assert session.dcs == case.dcs, what
        # 2. What the application received.
        if case.app is not None:
            seen = [_app_view(case.app, body) for body in apps.received.get(case.app, [])
                    if _msisdn_of(body) == session.msisdn]  # fmt: skip
            if case.route == "flaky":  # the primary got the first attempt of each step, the backup served it
                assert seen == case.app_saw, what
                seen = [_app_view("bank", b) for b in apps.received.get("bank", []) if _msisdn_of(b) == session.msisdn]
            assert seen == case.app_saw, (what, seen)
        # 3. The CDR.
        cdr = by_msisdn_cdr[session.msisdn]
        assert (cdr["route"], cdr["outcome"]) == (case.route, case.outcome), (what, cdr)
        expected_path = ["*" * len(x) for x in case.menu_path] if case.route == "send" else case.menu_path
        assert cdr["menu_path"] == expected_path, (what, cdr)
        # 4. The end-of-session notice.
        notices = [n for n in apps.notices if n.get("msisdn") == session.msisdn
                   or n.get("phoneNumber") == "+" + session.msisdn]  # fmt: skip
        if case.notice is None:
            assert notices == [], what
        else:
            assert len(notices) == 1, (what, notices)
            assert case.notice in (notices[0].get("status"), notices[0].get("outcome")), (what, notices)
        # 5. One summary log line, with the session id bound.
        ends = [entry for entry in result.log_lines if entry.get("event") == "session.end"
                and entry.get("msisdn") == session.msisdn]  # fmt: skip
        assert len(ends) == 1 and ends[0]["session"] == cdr["session_id"] and ends[0]["outcome"] == case.outcome
        steps = [e for e in result.log_lines if e.get("event") == "app.reply" and e["session"] == cdr["session_id"]]
        assert len(steps) == cdr["hops"], what  # at debug level: one line per application reply
    # Counters: sessions by route and outcome, and the application-side ones.
    expected = Counter((c.route, c.outcome) for c in all_cases)
    for (route, outcome), n in expected.items():
        assert f'ussd_sessions_total{{outcome="{outcome}",route="{route}"}} {float(n)}' in result.metrics, (route,
                                                                                                         outcome)
    m = result.metrics
    assert 'ussd_app_errors_total{reason="timeout",route="slow"} 1.0' in m
    assert 'ussd_app_errors_total{reason="down",route="down"} 1.0' in m
    assert 'ussd_app_errors_total{reason="bad-reply",route="garbage"} 1.0' in m
    assert 'ussd_app_failovers_total{route="flaky"} 2.0' in m
    assert 'ussd_app_replies_too_long_total{policy="refuse",route="long-refuse"} 1.0' in m
    assert 'ussd_app_replies_too_long_total{policy="truncate",route="long-cut"} 1.0' in m
    assert re.search(r'ussd_end_notices_total\{result="ok",route="bank"\} 2\.0', m)
    # TCAP dialogues by who ended them: the subscriber's cancel arrives as a TC-U-ABORT, the gateway's U-ABORTs
    # (late application with on_late = "abort", no answer from the subscriber), every other case a TC-END from us.
    ends = Counter("u-abort-received" if c.error == "user-cancelled" else "u-abort-sent" if c.error == "aborted"
                   else "end-sent" for c in all_cases)  # fmt: skip
    for outcome, n in ends.items():
        assert f'ussd_tcap_dialogues_total{{initiator="remote",outcome="{outcome}"}} {float(n)}' in m, outcome
    assert f"ussd_tcap_dialogue_duration_seconds_count {float(len(all_cases))}" in m
    # The capture: clean in tshark, and every text the subscribers saw is in it.
    assert tshark.problems(result.pcap) == []
    rows = tshark.fields(result.pcap, ["gsm_old.localValue", "gsm_map.ussd_string", "tcap.abort_element"])
    # tshark shows the CR that fills 7 spare bits at the end of a packed string (TS 23.038 §6.1.2.3.1); a handset
    # (and our decoder) drops it.
    strings = {v.removesuffix("\r") if len(v) % 8 == 0 else v for row in rows for v in row["gsm_map.ussd_string"]}
    shown = {t for s in result.sessions for t in (*s.menus, s.final) if t is not None}
    assert shown <= strings, shown - strings
    assert {c.code for c in all_cases} <= strings  # the dialled codes (processUnstructuredSS-Request)
    opcodes = {v for row in rows for v in row["gsm_old.localValue"]}
    assert {"59", "60"} <= opcodes
