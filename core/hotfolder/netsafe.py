"""HTTP requests to URLs that users and dropped files name, without reaching private networks.

A URL from a job manifest or a config could point at the machine itself (``127.0.0.1``, a
database on ``10.0.0.5``) or at a cloud metadata service (``169.254.169.254``): server-side
request forgery (SSRF). Every request made through this module is checked first:

* only ``http`` and ``https``;
* the host is resolved once with ``getaddrinfo`` and **every** address must be public
  (``ipaddress`` ``is_global``, not multicast or reserved; IPv4 addresses embedded in IPv6 as
  IPv4-mapped, 6to4 or NAT64 are unwrapped and checked too), unless ``allow_private`` lists it;
* the connection goes to a checked address (pinned: a DNS answer that changes between check and
  connect cannot redirect it), while the ``Host`` header, TLS SNI and certificate check keep the
  host name;
* redirects are followed by hand, each hop checked again; the body is capped and so is the time.

:func:`fetch` downloads a body; :func:`pinned_client` gives an ``httpx.AsyncClient`` with the
same protection for other requests (a webhook's POST). :func:`check_url` is the check alone.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from hotfolder.errors import InputError, UnsafeInputError

__all__ = [
    "AllowList",
    "Fetched",
    "PinnedTransport",
    "check_url",
    "fetch",
    "is_public",
    "pinned_client",
]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SCHEMES = frozenset({"http", "https"})
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_HOSTNAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_ALLOW_HINT = (
    "if this is a server you trust, list it in [resolvers.url] allow_private in the config "
    "(e.g. allow_private = ['10.0.0.0/8'])"
)


@dataclass(frozen=True)
class AllowList:
    """Private networks and host names a user explicitly trusts (``allow_private``)."""

    networks: tuple[Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str] | AllowList) -> AllowList:
        """From CIDRs (``"10.0.0.0/8"``, ``"::1"``) and host names; ValueError for others."""
        if isinstance(entries, AllowList):
            return entries
        networks: list[Network] = []
        hosts: set[str] = set()
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
                continue
            except ValueError:
                pass
            host = entry.strip().lower().rstrip(".")
            if not _HOSTNAME.fullmatch(host):
                msg = f"{entry!r} is neither a network (like '10.0.0.0/8') nor a host name"
                raise ValueError(msg)
            hosts.add(host)
        return cls(tuple(networks), frozenset(hosts))

    def allows(self, host: str, address: Address) -> bool:
        if host in self.hosts:
            return True
        candidates = [address, *filter(None, [_embedded_ipv4(address)])]
        return any(a in net for a in candidates for net in self.networks)


def is_public(address: Address) -> bool:
    """Whether ``address`` is reachable on the public internet, embedded IPv4 included."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_public(embedded)
    return address.is_global and not (
        address.is_multicast or address.is_reserved or address.is_unspecified
    )


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def check_url(url: str | httpx.URL, allow_private: Iterable[str] | AllowList = ()) -> list[Address]:
    """The addresses ``url``'s host resolves to, once every one is proven safe to connect to.

    Raises UnsafeInputError for a scheme other than http(s) or a private/loopback/link-local
    address not in ``allow_private``, InputError for a malformed URL or a host that does not
    resolve. Blocks on DNS: call it in a thread from async code.
    """
    allow = AllowList.parse(allow_private)
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        msg = f"{url} is not a valid URL: {exc}"
        raise InputError(msg) from exc
    if parsed.scheme not in SCHEMES:
        msg = f"{url}: the {parsed.scheme or 'missing'}:// scheme is not allowed"
        raise UnsafeInputError(msg, hint="only http:// and https:// URLs can be fetched")
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        msg = f"{url} has no host name"
        raise InputError(msg)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        msg = f"{url}: cannot resolve host {host!r} ({exc})"
        raise InputError(msg, hint="check the URL and the network") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    for address in addresses:
        if not (is_public(address) or allow.allows(host, address)):
            msg = f"{url}: host {host!r} resolves to the non-public address {address}; refused"
            raise UnsafeInputError(msg, hint=_ALLOW_HINT)
    if not addresses:
        msg = f"{url}: host {host!r} has no address"
        raise InputError(msg)
    return addresses


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One verifying TLS context (building one costs ~15 ms; they are safe to share)."""
    return httpx.create_ssl_context()


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks every request with :func:`check_url` and connects to a
    checked address, keeping the host name for the ``Host`` header and TLS.

    Connections are pooled per host name, so one host's TLS session is never reused for
    another host that shares its address.
    """

    def __init__(self, allow_private: Iterable[str] | AllowList = ()) -> None:
        self._allow = AllowList.parse(allow_private)
        self._pools: dict[tuple[str, str, int | None], httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        addresses = await asyncio.to_thread(check_url, request.url, self._allow)
        url = request.url
        key = (url.scheme, url.raw_host.decode("ascii"), url.port)
        pool = self._pools.setdefault(key, httpx.AsyncHTTPTransport(verify=_ssl_context()))
        failure: httpx.TransportError | None = None
        for address in addresses:
            pinned = httpx.Request(
                request.method,
                url.copy_with(host=str(address)),
                headers=request.headers,
                stream=request.stream,
                extensions={**request.extensions, "sni_hostname": key[1]},
            )
            try:
                return await pool.handle_async_request(pinned)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.aclose()
        self._pools.clear()


def pinned_client(
    *,
    allow_private: Iterable[str] | AllowList = (),
    timeout: float = 30.0,
    connect_timeout: float = 10.0,
    headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request goes through :class:`PinnedTransport`.

    It ignores proxy environment variables (a proxy would connect to anything) and does not
    follow redirects: follow ``response.next_request`` yourself, it is checked again.
    """
    from hotfolder import __version__

    return httpx.AsyncClient(
        transport=PinnedTransport(allow_private),
        timeout=httpx.Timeout(timeout, connect=min(connect_timeout, timeout)),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": f"hotfolder/{__version__}", **(headers or {})},
    )


@dataclass(frozen=True)
class Fetched:
    """A downloaded body, the URL it finally came from and its media type."""

    data: bytes
    url: str
    media_type: str | None


async def fetch(
    url: str,
    *,
    max_bytes: int,
    timeout: float,
    connect_timeout: float = 10.0,
    allow_private: Iterable[str] | AllowList = (),
    max_redirects: int = 5,
    media_types: Iterable[str] = (),
) -> Fetched:
    """GET ``url`` safely: every hop checked, at most ``max_bytes``, within ``timeout`` s.

    ``media_types`` limits the Content-Type (``"image/"`` matches any image type); empty
    allows any. Raises UnsafeInputError for a refused address or scheme, InputError for
    everything else that goes wrong (status, size, time, type, network).
    """
    accepted = tuple(media_types)
    try:
        async with asyncio.timeout(timeout):
            async with pinned_client(
                allow_private=allow_private,
                timeout=timeout,
                connect_timeout=connect_timeout,
                headers={"Accept-Encoding": "identity"},
            ) as client:
                return await _follow(client, url, max_bytes, max_redirects, accepted)
    except TimeoutError as exc:
        msg = f"{url}: no complete answer within {timeout:g} s"
        raise InputError(msg, hint="raise timeout_seconds if the server is just slow") from exc
    except httpx.TimeoutException as exc:
        msg = f"{url}: timed out ({type(exc).__name__})"
        raise InputError(msg, hint="raise timeout_seconds if the server is just slow") from exc
    except httpx.HTTPError as exc:
        msg = f"{url}: download failed: {exc!r}"
        raise InputError(msg, hint="check the URL") from exc


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    max_bytes: int,
    max_redirects: int,
    accepted: tuple[str, ...],
) -> Fetched:
    request: httpx.Request | None = client.build_request("GET", url)
    for _ in range(max_redirects + 1):
        assert request is not None
        response = await client.send(request, stream=True)
        try:
            if response.next_request is None:
                return await _read(response, max_bytes, accepted)
        finally:
            await response.aclose()
        request = response.next_request
    msg = f"{url}: more than {max_redirects} redirects"
    raise InputError(msg, hint="give the final URL, or raise max_redirects")


async def _read(response: httpx.Response, max_bytes: int, accepted: tuple[str, ...]) -> Fetched:
    url = str(response.url)
    if not response.is_success:
        msg = f"{url}: the server answered HTTP {response.status_code} {response.reason_phrase}"
        raise InputError(msg, hint="check that the URL is right and public")
    media_type = response.headers.get("content-type", "").split(";")[0].strip().lower() or None
    if accepted and not any(_matches(media_type, a) for a in accepted):
        msg = f"{url}: Content-Type {media_type or '(none)'} is not one of {', '.join(accepted)}"
        raise InputError(msg, hint="the URL must point at the image itself, not a web page")
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        msg = f"{url}: {int(length)} bytes is over the limit of {max_bytes}"
        raise InputError(msg)
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_bytes():
        received += len(chunk)
        if received > max_bytes:
            msg = f"{url}: the body is over the limit of {max_bytes} bytes"
            raise InputError(msg, hint="raise max_bytes if such large images are expected")
        chunks.append(chunk)
    return Fetched(b"".join(chunks), url, media_type)


def _matches(media_type: str | None, accepted: str) -> bool:
    if media_type is None:
        return False
    return media_type.startswith(accepted) if accepted.endswith("/") else media_type == accepted
