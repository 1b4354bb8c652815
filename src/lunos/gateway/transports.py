"""Transports other than the default, and the choice between them (`LUNOS_HTTP_TRANSPORT`).

`httpx` sends upstream calls through an `httpx.AsyncClient`: a general, widely used client,
for when a deployment wants it over the fast one (it costs more CPU per request, see
docs/architecture.md). It reads the proxy variables and `SSL_CERT_FILE` itself
(`trust_env`), and maps httpx's errors and timeouts to the ones the gateway handles.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from .http_client import (
    FastTransport,
    Origin,
    Transport,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamTimeout,
)
from .proxies import Proxies

_closing: set[asyncio.Task] = set()  # responses being closed in the background


class _HttpxResponse(UpstreamResponse):
    __slots__ = ("_done", "_idle", "_response")

    def __init__(self, response: httpx.Response, idle: float) -> None:
        super().__init__(response.status_code, dict(response.headers))
        self._response = response
        self._idle = idle
        self._done = False

    async def aiter_bytes(self, idle: float | None = None) -> AsyncIterator[bytes]:
        idle = idle if idle is not None else self._idle
        chunks = self._response.aiter_bytes()
        try:
            while True:
                try:
                    chunk = await asyncio.wait_for(chunks.__anext__(), idle)
                except StopAsyncIteration:
                    return
                except asyncio.TimeoutError:
                    raise UpstreamTimeout("idle") from None
                except httpx.HTTPError as exc:
                    raise UpstreamProtocolError(f"the response broke off: {_describe(exc)}") from None
                if chunk:
                    yield chunk
        finally:
            self._done = True
            await self._response.aclose()

    def release(self) -> None:
        if not self._done:
            self._done = True
            task = asyncio.ensure_future(self._response.aclose())
            _closing.add(task)
            task.add_done_callback(_closing.discard)


def _describe(exc: Exception) -> str:
    return str(exc) or exc.__class__.__name__


class HttpxTransport:
    """Upstream calls through httpx, honouring the environment's proxies and certificates."""

    def __init__(self, proxy_env: Mapping[str, str] | None = None,
                 max_idle_per_origin: int = 256) -> None:
        self.client = httpx.AsyncClient(
            trust_env=True, follow_redirects=False,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=max_idle_per_origin),
        )
        self.proxies = Proxies.from_env(proxy_env or {}, any_scheme=True)  # to know when `connect_to` applies
        # httpx logs every request's URL at INFO: fetched URLs are the users', and the fast
        # transport logs no request either.
        logging.getLogger("httpx").setLevel(logging.WARNING)

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        timeouts = request.timeouts
        origin, _ = Origin.of(request.url)
        headers = list(request.headers)
        url, extensions = request.url, {}
        if request.connect_to is not None and not self.proxies.select(origin.scheme, origin.host,
                                                                       origin.port):
            # Connect to the checked address; Host, SNI and the certificate still name the host.
            ip, port = request.connect_to
            parts = urlsplit(url)
            url = urlunsplit((parts.scheme, f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}",
                              parts.path, parts.query, ""))
            headers.append(("host", origin.host_header))
            extensions["sni_hostname"] = origin.host
        if not request.pooled or request.connect_to is not None:
            headers.append(("connection", "close"))
        try:
            built = self.client.build_request(
                request.method, url, headers=headers, content=request.body, extensions=extensions,
                timeout=httpx.Timeout(timeouts.connect, read=None, pool=None),
            )
            response = await asyncio.wait_for(self.client.send(built, stream=True), timeouts.first_byte)
        except asyncio.TimeoutError:
            raise UpstreamTimeout("first_byte") from None
        except httpx.TimeoutException:
            raise UpstreamTimeout("connect") from None
        except (httpx.ConnectError, httpx.ProxyError) as exc:
            raise UpstreamConnectError(
                f"cannot connect to {origin.host}:{origin.port}: {_describe(exc)}") from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise ValueError(str(exc)) from None
        except httpx.HTTPError as exc:
            raise UpstreamProtocolError(_describe(exc)) from None
        return _HttpxResponse(response, timeouts.idle)

    async def aclose(self) -> None:
        await self.client.aclose()


def make_transport(name: str, proxy_env: Mapping[str, str] | None = None) -> Transport:
    """The transport a setting names: `fast` (the default) or `httpx`; `proxy_env` holds the
    proxy variables the settings read (`Settings.proxy_env`)."""
    if name == "httpx":
        return HttpxTransport(proxy_env)
    return FastTransport(proxies=Proxies.from_env(proxy_env or {}))
