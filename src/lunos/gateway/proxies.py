"""Which upstream calls go through an egress proxy: `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`
and `NO_PROXY` (lower-case names win, as in curl and Python's urllib).

Read once, with the other settings (`Settings.proxy_env`). `NO_PROXY` takes host names (a name also matches
its subdomains; a leading dot is ignored), IP addresses, CIDR ranges, an optional `:port`,
or `*` for everything. Loopback is not exempt unless it is listed. A proxy's credentials
(`http://user:pass@proxy:3128`) become a `Proxy-Authorization` header and never appear in
a message: `Proxy` prints as `host:port` only.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from .config import ConfigError


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)  # Proxy-Authorization value

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, value: str, variable: str, any_scheme: bool = False) -> Proxy:
        url = value if "://" in value else "http://" + value
        try:
            parts = urlsplit(url)
            port = parts.port or 80
        except ValueError:
            raise ConfigError(f"{variable} is not a valid proxy URL") from None
        if not parts.hostname:
            raise ConfigError(f"{variable} is not a valid proxy URL")
        if parts.scheme.lower() != "http" and not any_scheme:
            raise ConfigError(f"{variable}: only http:// proxies are supported "
                                   "(https is tunnelled through them with CONNECT)")
        auth = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = "Basic " + base64.b64encode(pair.encode()).decode()
        return cls(parts.hostname, port, auth)


def _environment(env: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """scheme -> (variable name, value) for http, https, all and no; lower case wins."""
    found: dict[str, tuple[str, str]] = {}
    for scheme in ("http", "https", "all", "no"):
        for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
            if env.get(name, "").strip():
                found[scheme] = (name, env[name].strip())
                break
    return found


@dataclass(frozen=True)
class Proxies:
    http: Proxy | None = None
    https: Proxy | None = None
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, env: Mapping[str, str], any_scheme: bool = False) -> Proxies:
        """`any_scheme`: accept proxy URLs other than http:// (the httpx transport takes them)."""
        found = _environment(env)
        fallback = found.get("all")
        picked = {}
        for scheme in ("http", "https"):
            entry = found.get(scheme) or fallback
            picked[scheme] = Proxy.parse(entry[1], entry[0], any_scheme) if entry else None
        no = found.get("no", ("", ""))[1]
        return cls(picked["http"], picked["https"],
                   tuple(e.strip().lower() for e in no.split(",") if e.strip()))

    def __bool__(self) -> bool:
        return self.http is not None or self.https is not None

    def select(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for a request to scheme://host:port, or None to connect directly."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or self._bypassed(host.lower().strip("[]"), port):
            return None
        return proxy

    def _bypassed(self, host: str, port: int) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        for entry in self.no_proxy:
            if entry == "*":
                return True
            name, want_port = entry, None
            if entry.count(":") == 1 or entry.startswith("["):  # host:port or [v6]:port
                name, _, tail = entry.rpartition(":")
                if not tail.isdigit():
                    name, want_port = entry, None
                else:
                    want_port = int(tail)
            if want_port is not None and want_port != port:
                continue
            name = name.strip("[]").lstrip(".")
            if address is not None:
                try:
                    if address in ipaddress.ip_network(name, strict=False):
                        return True
                except ValueError:
                    pass
            elif host == name or host.endswith("." + name):
                return True
        return False
