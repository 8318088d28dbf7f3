"""HTTP client of the application servers: pooled connections (aiohttp), per-route timeout, failover to the
backup URL on connection errors and 5xx, and an HMAC-SHA256 signature so that applications can verify the gateway
(:mod:`gateway.ops.outbound`: ``X-USSD-Timestamp``, ``X-USSD-Signature``).
"""

from __future__ import annotations

import dataclasses
import ssl
import time

import aiohttp

from gateway.apps.dialects import DIALECTS, END_NOTICES, AppReply, AppRequest, BadReplyError, EndNotice
from gateway.apps.http1 import Http1Pool, HttpError
from gateway.ops.outbound import signature_headers
from gateway.routing.table import Route


class AppError(Exception):
    """The application could not give a usable reply: ``reason`` is timeout, down, bad-reply or http-<status>."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class AppClient:
    """Per-step calls go through the lean keep-alive client (:mod:`gateway.apps.http1`) for ``http://`` URLs and
    through aiohttp for ``https://``; end-of-session notices always through aiohttp (off the hot path)."""

    def __init__(self, session: aiohttp.ClientSession, pool: Http1Pool | None = None) -> None:
        self.session = session
        self.pool = pool if pool is not None else Http1Pool()
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}

    async def call(self, route: Route, request: AppRequest) -> AppReply:
        encode, decode = DIALECTS[route.dialect]
        body, content_type = encode(request)
        headers = _headers(route, body, content_type)
        urls = [u for u in (route.primary_url, route.backup_url) if u]
        last = AppError("down", "no URL")
        for n, url in enumerate(urls):
            try:
                status, reply_type, payload = await self._post(url, body, headers, route)
            except TimeoutError:
                raise AppError("timeout", url) from None  # late: no second try, the user is waiting
            except (HttpError, aiohttp.ClientConnectionError) as exc:
                last = AppError("bad-reply" if isinstance(exc, HttpError) and exc.kind == "protocol" else "down",
                                f"{url}: {exc}")  # fmt: skip
                continue
            if status >= 500:
                last = AppError(f"http-{status}", url)
                continue  # a server error: try the backup
            if status >= 400:
                raise AppError(f"http-{status}", url)
            try:
                reply = decode(status, reply_type, payload)
            except BadReplyError as exc:
                raise AppError("bad-reply", f"{url}: {exc}") from None
            return dataclasses.replace(reply, backup=True) if n else reply
        raise last

    async def _post(self, url: str, body: bytes, headers: dict[str, str], route: Route) -> tuple[int, str, bytes]:
        if url.startswith("http://"):
            response = await self.pool.post(url, body, headers, route.timeout)
            return response.status, response.headers.get("content-type", ""), response.body
        async with self.session.post(url, data=body, headers=headers, timeout=self._timeout(route.timeout),
                                     ssl=self._tls(route)) as resp:  # fmt: skip
            return resp.status, resp.headers.get("Content-Type", ""), await resp.read()

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        found = self._timeouts.get(seconds)
        if found is None:
            found = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return found

    def _tls(self, route: Route) -> ssl.SSLContext | bool:
        """https: the system's CAs, or only the route's ``tls_ca_file`` (an operator's own CA) when it has one."""
        if route.tls_ca_file is None:
            return True
        found = self._contexts.get(route.tls_ca_file)
        if found is None:
            found = self._contexts[route.tls_ca_file] = ssl.create_default_context(cafile=route.tls_ca_file)
        return found

    def close(self) -> None:
        self.pool.close()

    async def notify_end(self, route: Route, notice: EndNotice) -> str:
        """POST the end-of-session notice; never raises. Returns "ok", "timeout", "down" or "http-<status>"."""
        assert route.end_notice_url is not None
        body, content_type = END_NOTICES[route.dialect](notice)
        try:
            headers = _headers(route, body, content_type)
            timeout = self._timeout(route.timeout)
            async with self.session.post(route.end_notice_url, data=body, headers=headers, timeout=timeout,
                                         ssl=self._tls(route)) as resp:  # fmt: skip
                await resp.read()
                return "ok" if resp.status < 300 else f"http-{resp.status}"
        except TimeoutError:
            return "timeout"
        except aiohttp.ClientError:
            return "down"


def _headers(route: Route, body: bytes, content_type: str) -> dict[str, str]:
    headers = {"Content-Type": content_type}
    if route.secret:
        headers.update(signature_headers(route.secret, body, time.time()))
    return headers
