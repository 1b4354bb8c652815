"""The one guarded outbound fetch: every URL the gateway fetches on a user's behalf
(image URLs for providers that want inline bytes, web pages for search) goes through here.

Rules: http(s) only; the host is resolved once and the connection goes to the address that
was checked (no second lookup to rebind); loopback, private, link-local, shared, reserved,
multicast and cloud-metadata addresses are refused, whatever the spelling (`2130706433`,
`0x7f.1`, `[::1]`, `::ffff:127.0.0.1` all resolve to what they are; an IPv6 address that
embeds an IPv4 one is judged by the IPv4 address; site-local `fec0::/10` and local-use NAT64
`64:ff9b:1::/48` are refused whole); every redirect hop is
checked the same way; size and time are capped. `LUNOS_FETCH_ALLOW_HOSTS` admits hosts by
the name written in the URL, never by resolved address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from .errors import GatewayError
from .http_client import (
    HttpClient,
    Timeouts,
    UpstreamConnectError,
    UpstreamProtocolError,
    UpstreamTimeout,
)

_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    allow_hosts: frozenset[str] = frozenset()
    max_bytes: int = 20 * 1024 * 1024
    timeout: float = 15.0
    max_redirects: int = 5


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # after redirects
    content_type: str
    body: bytes


class FetchRefused(GatewayError):
    def __init__(self, url: str, reason: str, param: str | None) -> None:
        super().__init__(400, f"Refused to fetch {url}: {reason}", param=param, code="fetch_refused")
        self.url = url


class FetchTooLarge(FetchRefused):
    """The body is larger than the fetch's limit (the caller may say why that limit)."""


# IPv6 addresses whose last 32 bits are an IPv4 address: IPv4-compatible (`::a.b.c.d`),
# IPv4-translated (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`). Mapped (`::ffff:a.b.c.d`),
# 6to4 (2002::/16) and Teredo have properties of their own in `ipaddress`.
_EMBEDS_IPV4 = tuple(map(ipaddress.IPv6Network, ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96")))
# Refused whole: local-use NAT64 (the IPv4 address sits where the operator chose) and the
# deprecated site-local range, which `ipaddress` counts as global.
_REFUSED_V6 = tuple(map(ipaddress.IPv6Network, ("64:ff9b:1::/48", "fec0::/10")))


def _blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _REFUSED_V6):
            return True
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and any(ip in net for net in _EMBEDS_IPV4):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            ip = embedded
    return not ip.is_global or ip.is_multicast


async def _read(response, limit: int) -> bytes | None:
    """The body, or None past `limit` bytes. Returning (not raising) matters: a frame in an
    error's traceback keeps its locals, and asyncio errors sit in reference cycles that
    only the collector frees, so the bytes read so far would outlive the request."""
    parts: list[bytes] = []
    size = 0
    chunks = response.aiter_bytes()
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                return None
            parts.append(chunk)
    finally:
        await chunks.aclose()  # gives the connection back (closes it when unread)
    return b"".join(parts)


async def _resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


class Fetcher:
    def __init__(self, client: HttpClient, policy: FetchPolicy) -> None:
        self.client = client
        self.policy = policy

    async def fetch(self, url: str, *, param: str | None = None, accept: str = "*/*",
                    limit: int | None = None) -> Fetched:
        """GET `url` under the policy; `limit` lowers the policy's size cap for this fetch."""
        limit = self.policy.max_bytes if limit is None else min(limit, self.policy.max_bytes)
        try:
            return await asyncio.wait_for(self._fetch(url, param, accept, limit), self.policy.timeout)
        except asyncio.TimeoutError:
            raise FetchRefused(url, f"no complete answer within {self.policy.timeout:g} s", param) from None

    async def _fetch(self, url: str, param: str | None, accept: str, limit: int) -> Fetched:
        original = url
        for _ in range(self.policy.max_redirects + 1):
            target = await self._check(url, original, param)
            timeouts = Timeouts(connect=self.policy.timeout, first_byte=self.policy.timeout,
                                idle=self.policy.timeout)
            try:
                response = await self.client.request(
                    "GET", url, [("accept", accept), ("user-agent", "lunos-fetch/1")],
                    connect_to=target, timeouts=timeouts, pooled=False,
                )
            except (UpstreamConnectError, UpstreamTimeout, UpstreamProtocolError, ValueError) as exc:
                raise FetchRefused(original, f"the fetch failed ({exc})", param) from None
            if response.status in _REDIRECTS and response.headers.get("location"):
                response.release()
                try:
                    url = urljoin(url, response.headers["location"])
                except ValueError:
                    raise FetchRefused(original, "it redirects to a malformed URL", param) from None
                continue
            if response.status >= 400:
                response.release()
                raise FetchRefused(original, f"the server answered HTTP {response.status}", param)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                response.release()
                raise FetchTooLarge(original, f"it is larger than {limit} bytes", param)
            try:
                body = await _read(response, limit)
            except UpstreamProtocolError as exc:
                raise FetchRefused(original, f"the fetch failed ({exc})", param) from None
            if body is None:
                raise FetchTooLarge(original, f"it is larger than {limit} bytes", param)
            content_type = response.headers.get("content-type", "application/octet-stream")
            return Fetched(url, content_type.split(";", 1)[0].strip().lower(), body)
        raise FetchRefused(original, f"more than {self.policy.max_redirects} redirects", param)

    async def _check(self, url: str, original: str, param: str | None) -> tuple[str, int]:
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:  # `http://[::1/`, `http://[x]/`
            raise FetchRefused(original, "the URL is malformed", param) from None
        if parts.scheme.lower() not in ("http", "https"):
            raise FetchRefused(original, "only http and https URLs are fetched", param)
        if not host:
            raise FetchRefused(original, "the URL has no host", param)
        try:
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except ValueError:
            raise FetchRefused(original, "the URL has an invalid port", param) from None
        try:
            addresses = await _resolve(host, port)
        except (OSError, UnicodeError):
            raise FetchRefused(original, f"the host {host} does not resolve", param) from None
        if not addresses:
            raise FetchRefused(original, f"the host {host} does not resolve", param)
        if host not in self.policy.allow_hosts and any(_blocked(a) for a in addresses):
            raise FetchRefused(
                original, f"{host} is a loopback, private, link-local or metadata address", param
            )
        return addresses[0], port
