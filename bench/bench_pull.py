"""USSD pull sessions per second and gateway-added latency, with the gateway, the application and the load
generator in three processes, and the osmo-stp relay rate measured in the same run.

The standard session: dial *384#, menu (unstructuredSS-Request), select 1, final text (TC-END): two TCAP round
trips and two HTTP requests to the application. The gateway is `ussd-gateway run` on its own configuration
(CDRs and JSON logs on, as in production); the application is bench/pull_app.py (aiohttp); the simulator dials
from this process over M3UA/TCP.

- Throughput: 200 sessions in flight, sessions per second over all of them.
- Latency: 1 and 16 sessions in flight; a step is dial -> menu or answer -> final text as the handset sees it; the
  gateway-added part is the step minus the application's own round trip (measured alone, median, just before).
- osmo-stp: two of our ASPs registered at an osmo-stp, M3UA DATA relayed from one to the other (messages/s,
  up to 500 in flight).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import Row
from gateway.codecs import m3ua
from gateway.sim.run import dial_many
from gateway.stack.m3ua_asp import AspState, AssociationConfig, DataReceived, Event, M3uaAssociation, Role
from gateway.transport.tcp import M3uaTcpProtocol, run_client

SESSIONS = 6000
LATENCY_SESSIONS = 1000
LATENCY_IN_FLIGHT = (1, 16)
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp: Path, m3ua_port: int, app_port: int) -> Path:
    from tests.support.daemon import one_route_config

    route = (f'name = "bench"\ncode = "*384#"\nprimary_url = "http://127.0.0.1:{app_port}/app"\n'
             'dialect = "africastalking"\nmax_sessions = 100000')  # fmt: skip
    return one_route_config(tmp, m3ua_port, route, '[sessions]\nmax_active = 100000\n[log]\nlevel = "info"')


def _start(args: list[str], ready: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    proc = subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{args} exited: {log.read_text()[-800:]}")
        if ready in log.read_text():
            return proc
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{args} did not start: {log.read_text()[-800:]}")


async def _app_direct_ms(app_port: int, n: int = 400) -> float:
    url = f"http://127.0.0.1:{app_port}/app"
    times = []
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            t0 = time.perf_counter()
            async with http.post(url, data={"sessionId": "x", "serviceCode": "*384#", "phoneNumber": "+49",
                                            "networkCode": "", "text": "" if i % 2 else "1"}) as r:  # fmt: skip
                await r.read()
            times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


async def _pull(m3ua_port: int, app_port: int, gw_pid: int) -> tuple[float, float, dict[int, list[float]], float]:
    calls = [("491720000001", "*384#", ["1"])] * SESSIONS
    await dial_many("127.0.0.1", m3ua_port, calls[:500], concurrency=100)  # warm up both processes
    cpu0 = _cpu_seconds(gw_pid)
    sessions, seconds = await dial_many("127.0.0.1", m3ua_port, calls, concurrency=200)
    gw_cpu_us = (_cpu_seconds(gw_pid) - cpu0) / SESSIONS * 1e6
    assert all(s.final == "Balance 10.00 EUR" for s in sessions), [s for s in sessions if s.final is None][:1]
    rate = SESSIONS / seconds
    app_ms = await _app_direct_ms(app_port)
    added: dict[int, list[float]] = {}
    for in_flight in LATENCY_IN_FLIGHT:
        sessions, _ = await dial_many("127.0.0.1", m3ua_port, calls[:LATENCY_SESSIONS], concurrency=in_flight)
        steps = [(b - a) * 1000 for s in sessions for a, b in zip(s.times, s.times[1:], strict=False)]
        added[in_flight] = [x - app_ms for x in steps]
    return rate, gw_cpu_us, added, app_ms


async def _relay_rate(stp_port: int, n: int = 20000) -> float:
    """DATA messages per second from one of our ASPs to another through osmo-stp."""
    received = 0
    done = asyncio.Event()

    def sink(assoc: M3uaAssociation, event: Event) -> None:
        nonlocal received
        if isinstance(event, DataReceived) and assoc.config.name == "b":
            received += 1
            if received == n:
                done.set()

    conns: dict[str, list[M3uaTcpProtocol]] = {"a": [], "b": []}
    stop = asyncio.Event()
    tasks = []
    for name, pc, rk in (("a", 1, 1), ("b", 2, 2)):
        cfg = AssociationConfig(name=name, role=Role.ASP, routing_keys=(m3ua.RoutingKey(rk, pc),),
                                traffic_mode=m3ua.TrafficMode.OVERRIDE, beat_interval=0, max_queue=n + 10)
        tasks.append(asyncio.create_task(run_client("127.0.0.1", stp_port, cfg, sink,
                                                    on_connection=conns[name].append, stop=stop)))  # fmt: skip
    try:
        while not all(c and c[-1].association.state is AspState.ACTIVE for c in conns.values()):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        sender = conns["a"][-1]
        payload = bytes(120)  # about a TCAP message with a menu
        t0 = time.perf_counter()
        sent = 0
        while sent < n:
            while sent < n and sent - received < 500:
                sender.send_data(1, 2, sent & 0xFF, payload)
                sent += 1
            await asyncio.sleep(0)
        await asyncio.wait_for(done.wait(), 60)
        return n / (time.perf_counter() - t0)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


def _osmo_stp_rate() -> tuple[float | None, str]:
    try:
        from tests.support.osmo_stp import OsmoStp
    except ImportError as exc:
        return None, f"n/a ({exc})"
    try:
        stp = OsmoStp(_free_port()).start()
    except BaseException as exc:  # pytest.skip/fail raise BaseExceptions when it cannot install
        return None, f"n/a: osmo-stp unavailable ({str(exc)[:80]})"
    try:
        return max(asyncio.run(_relay_rate(stp.port)) for _ in range(2)), ""
    finally:
        stp.stop()


def rows() -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        m3ua_port, app_port = _free_port(), _free_port()
        app = _start(["-m", "bench.pull_app", str(app_port)], "ready", tmp / "app.log")
        gw = _start(["-m", "gateway.cli", "run", "-c", str(_config(tmp, m3ua_port, app_port))], '"ready"',
                    tmp / "gateway.log")  # fmt: skip
        try:
            rate, gw_cpu_us, added, app_ms = asyncio.run(_pull(m3ua_port, app_port, gw.pid))
        finally:
            for proc in (gw, app):
                proc.terminate()
                proc.wait(10)
    relay, why = _osmo_stp_rate()
    cores = os.cpu_count()
    out = [
        Row(f"pull sessions: {rate:,.0f}/s (µs per session; gateway, app, simulator: 3 processes, {cores} cores)",
            1e6 / rate, {}, ">= 1,500 sessions/s per gateway process", rate >= 1500),
        Row(f"gateway process CPU per session: one core carries {1e6 / gw_cpu_us:,.0f} sessions/s", gw_cpu_us, {},
            "informative", None),
    ]
    for in_flight, values in added.items():
        q = statistics.quantiles(values, n=100)
        out.append(Row(f"gateway-added latency per step, p50 / p99 = {q[49] / 1000 * 1e3:.2f} / {q[98]:.2f} ms "
                       f"({in_flight} in flight; app alone {app_ms:.2f} ms subtracted) (µs, p50)",
                       q[49] * 1000, {}, "informative", None))
    if relay is not None:
        out.append(Row(f"osmo-stp relay (same run): {relay:,.0f} M3UA DATA/s between two of our ASPs (µs per msg)",
                       1e6 / relay, {}, "informative: the STP's rate bounds a deployment through it", None))
    else:
        out.append(Row(f"osmo-stp relay: {why}", 0.0, {}, "informative", None))
    return out
