"""Which URLs a webhook may point at: http(s) to public addresses only, unless allowed.

A webhook makes the service send requests wherever a key holder says, so without a check
it would reach what only the service can reach: a cloud's metadata endpoint
(169.254.169.254), the store, an admin port on loopback (server-side request forgery).
A URL is checked when it is registered (a literal address, or every address its name
resolves to) and again at each delivery, since a name's addresses can change after
registration: the deliverer's connections resolve names through :class:`GuardedResolver`,
which refuses the same addresses, so a name re-pointed at loopback is refused rather than
connected to. The setting ``webhook_allow_private_targets`` turns the check off (a
receiver on the same machine or network, as in the tests).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from promptline.settings import Settings

MAX_URL_LENGTH = 2000
SCHEMES = ("http", "https")
DEFAULT_RESOLVE_TIMEOUT_SECONDS = 2.0

_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,62})(?:\.[A-Za-z0-9_-]{1,63})*\.?$"
)
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x20\x7f]")
_SHOWN_HOST_CHARS = 100

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """A webhook URL the service will not send to; the message says why."""


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Whether private addresses are allowed, and how long a name may take to resolve."""

    allow_private: bool = False
    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT_SECONDS

    @classmethod
    def of(cls, settings: Settings) -> TargetPolicy:
        """The rule the settings set (``webhook_allow_private_targets`` and the timeout)."""
        return cls(settings.webhook_allow_private_targets, settings.webhook_resolve_timeout_seconds)


def parse_target(url: str) -> URL:
    """``url`` parsed, if it is one the service sends to at all (scheme, host, no
    credentials, length); its addresses are checked by :func:`check_target`."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"must be at most {MAX_URL_LENGTH} characters")
    if _UNSAFE_CHARACTERS.search(url):
        raise TargetRefused("must not contain spaces or control characters")
    try:
        parsed = URL(url)
        port = parsed.port
    except (ValueError, UnicodeError) as error:
        raise TargetRefused("is not a valid URL") from error
    if parsed.scheme not in SCHEMES:
        raise TargetRefused("must be an http or https URL")
    host = parsed.raw_host
    if not host or (_ip(host) is None and not _HOSTNAME.match(host)):
        raise TargetRefused("must name a valid host")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise TargetRefused("must not carry credentials (user or password)")
    if not port:
        raise TargetRefused("must not use port 0")
    return parsed


async def check_target(url: str, policy: TargetPolicy) -> URL:
    """``url`` parsed, if the service may send to it: every address of its host is public
    (or the policy allows private ones). Raises :class:`TargetRefused` otherwise, also
    when the name does not resolve within the policy's timeout."""
    parsed = parse_target(url)
    if policy.allow_private:
        return parsed
    host = parsed.raw_host or ""
    literal = _ip(host)
    addresses = [literal] if literal is not None else await _resolve(host, policy.resolve_timeout)
    for address in addresses:
        if not public(address):
            where = f"{address}" if literal is not None else f"{_shown(host)} is {address}"
            raise TargetRefused(
                f"must not point at a private, loopback, link-local or reserved address ({where})"
            )
    return parsed


def public(address: IpAddress) -> bool:
    """Whether ``address`` is on the public internet (an IPv4-mapped IPv6 address is
    judged by its IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_private
    )


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, refusing a name with any address that is not public:
    the deliverer connects only to addresses that passed the check (no re-resolution in
    between for a changed name to slip through)."""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The addresses of ``host``; OSError if one of them is not public."""
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            address = _ip(result["host"].partition("%")[0])
            if address is None or not public(address):
                raise OSError(f"{_shown(host)} resolves to a non-public address")
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._resolver.close()


async def _resolve(host: str, within: float) -> list[IpAddress]:
    """Every address ``host`` resolves to, with the loop's non-blocking ``getaddrinfo``."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(within):
            infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except TimeoutError as error:
        raise TargetRefused(f"host {_shown(host)} did not resolve in time") from error
    except (OSError, UnicodeError, ValueError) as error:
        raise TargetRefused(f"host {_shown(host)} does not resolve") from error
    addresses = [_ip(str(info[4][0]).partition("%")[0]) for info in infos]
    found = [address for address in addresses if address is not None]
    if not found:
        raise TargetRefused(f"host {_shown(host)} does not resolve")
    return found


def _ip(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _shown(host: str) -> str:
    return host if len(host) <= _SHOWN_HOST_CHARS else host[:_SHOWN_HOST_CHARS] + "..."
