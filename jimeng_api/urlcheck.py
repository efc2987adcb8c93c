"""Strict parsing of outbound URLs and the address policy of the safe fetcher.

A URL is accepted only in one unambiguous form: ``http``/``https``, no userinfo,
no backslash, no whitespace or control character, a host that is a canonical
IPv4 address, a bracketed IPv6 address or an IDNA host name, and an optional
decimal port. Host names are compared after IDNA encoding, lower-casing and
dropping one trailing dot, and allowlist entries match on label boundaries
(``byteimg.com`` allows ``p9.byteimg.com``, not ``evilbyteimg.com``).

Which addresses may be connected to is decided on the *resolved* address: private,
loopback, link-local, multicast, reserved and unspecified addresses (also inside
IPv4-mapped, 6to4, Teredo and NAT64 IPv6 addresses) are refused unless the host or
the address is listed in ``FETCH_ALLOW_PRIVATE_HOSTS``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 4096
DEFAULT_PORTS = {"http": 80, "https": 443}
_URL = re.compile(r"(?i)(https?)://([^/?#]*)([/?#].*)?", re.S)
_PORT = re.compile(r"[0-9]{1,5}")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")  # controls, space, backslash
_NUMERIC_HOST = re.compile(r"(?i)[0-9a-fx.]+")  # looks like some IPv4 spelling
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class URLRejected(ValueError):
    """The URL is malformed or ambiguous; the message is safe to show."""


@dataclass(frozen=True)
class Target:
    """A parsed URL, normalised; ``host`` is ASCII, lower-case, without brackets."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, never empty; the fragment is dropped

    @property
    def is_ip(self) -> bool:
        return as_ip(self.host) is not None

    @property
    def netloc(self) -> str:
        """``host[:port]`` as the Host header spells it (the port if not default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``: what error messages and logs may show."""
        return f"{self.scheme}://{self.netloc}"

    @property
    def url(self) -> str:
        return self.origin + self.path


def as_ip(host: str) -> IPAddress | None:
    """Return *host* as an address if it is one (strict spellings only)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def normalise_host(host: str) -> str:
    """Return the ASCII, lower-case form of a host name or address literal."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise URLRejected("the IPv6 address is not closed with ']'")
        address = as_ip(host[1:-1])
        if not isinstance(address, ipaddress.IPv6Address) or "%" in host:
            raise URLRejected("the bracketed host is not an IPv6 address")
        return address.compressed
    if host.endswith("."):
        host = host[:-1]
    if not host or "%" in host or "[" in host or "]" in host:
        raise URLRejected("the host is empty or not a plain host name")
    if _NUMERIC_HOST.fullmatch(host) and host.rsplit(".", 1)[-1][:1].isdigit():
        address = as_ip(host)  # 127.1, 0x7f.1, 2130706433, 0177.0.0.1: refused
        if not isinstance(address, ipaddress.IPv4Address):
            raise URLRejected("the host is an ambiguous form of an IPv4 address")
        return str(address)
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise URLRejected("the host is not a valid host name") from exc
    if ascii_host.endswith("."):
        raise URLRejected("the host ends with an empty label")
    return ascii_host.lower()


def parse_url(url: object) -> Target:
    """Parse *url* strictly; raise ``URLRejected`` for anything ambiguous."""
    if not isinstance(url, str) or not url:
        raise URLRejected("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise URLRejected(f"the URL is longer than {MAX_URL_LENGTH} characters")
    if _BAD_CHARS.search(url):
        raise URLRejected("the URL contains a space, a control character or '\\'")
    match = _URL.fullmatch(url)
    if not match:
        raise URLRejected("the URL must start with http:// or https://")
    scheme, authority, rest = match.group(1).lower(), match.group(2), match.group(3)
    if "@" in authority:
        raise URLRejected("the URL must not contain credentials (user@host)")
    host, port = _split_port(authority, DEFAULT_PORTS[scheme])
    path = (rest or "/").split("#", 1)[0] or "/"
    if path.startswith("?"):
        path = "/" + path
    if not path.isascii():
        raise URLRejected("the path must be ASCII (percent-encode it)")
    return Target(scheme, normalise_host(host), port, path)


def _split_port(authority: str, default: int) -> tuple[str, int]:
    """Split ``host[:port]`` (the host may be a bracketed IPv6 address)."""
    host, port_text = authority, ""
    if authority.startswith("["):
        end = authority.find("]")
        host, tail = authority[: end + 1], authority[end + 1 :]
        if end < 0 or (tail and not tail.startswith(":")):
            raise URLRejected("the bracketed host is malformed")
        port_text = tail[1:] if tail else ""
        if tail and not port_text:
            raise URLRejected("the port is empty")
    elif ":" in authority:
        host, port_text = authority.rsplit(":", 1)
        if ":" in host or not port_text:
            raise URLRejected("the host or port is malformed")
    if not port_text:
        return host, default
    if not _PORT.fullmatch(port_text) or not 0 < int(port_text) < 65536:
        raise URLRejected("the port is not a number between 1 and 65535")
    return host, int(port_text)


def host_matches(host: str, entries: Iterable[str]) -> bool:
    """Whether *host* equals an entry or is a subdomain of one (label boundary)."""
    return any(host == e or (not as_ip(e) and host.endswith("." + e)) for e in entries)


def normalise_entries(entries: Iterable[str]) -> tuple[str, ...]:
    """Normalise allowlist entries like hosts; malformed ones are dropped."""
    result = []
    for entry in entries:
        try:
            result.append(normalise_host(entry.strip()))
        except URLRejected:
            continue
    return tuple(result)


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address stands for (mapped, 6to4, NAT64…)."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether *address* (and any IPv4 address inside it) is globally routable."""
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return address.is_global and not address.is_multicast


class PrivateAllowlist:
    """The hosts, addresses and networks that may be private (tests, ``make demo``)."""

    def __init__(self, entries: Iterable[str]) -> None:
        self.hosts: set[str] = set()
        self.networks: list[Network] = []
        for entry in (e.strip() for e in entries):
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.hosts.update(normalise_entries([entry]))

    def allows(self, host: str, address: IPAddress) -> bool:
        """Whether *host* resolved to *address* may be connected to."""
        if is_public(address) or host in self.hosts:
            return True
        inner = embedded_ipv4(address)
        candidates = [address] + ([inner] if inner is not None else [])
        return any(a in n for a in candidates for n in self.networks)
