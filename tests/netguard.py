"""No test reaches the network: connections (TCP or UDP) and name lookups are allowed to loopback
(127.0.0.0/8, ::1, ``localhost``) and unix sockets only. Patched at the socket level, so aiohttp,
asyncpg, python-telegram-bot and twilio are all covered. An attempt elsewhere raises
``NetworkBlocked`` where it happens (nothing goes out) and fails the test at its end, even if the
code under test caught the error and carried on.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class NetworkBlocked(ConnectionRefusedError):
    """A test tried to reach beyond loopback."""


def is_loopback(host: str | bytes | None, *, binding: bool = False) -> bool:
    """Whether ``host`` is this machine's loopback (with ``binding``: or "any address", to listen on)."""
    if host is None:
        return True  # getaddrinfo(None, port): the local end of a server socket
    name = (host.decode() if isinstance(host, bytes) else host).lower().rstrip(".")
    if name in LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.partition("%")[0])
    except ValueError:
        return False  # a name to look up elsewhere
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or (binding and address.is_unspecified)


class Guard:
    """Patches ``socket`` while installed; ``violations`` lists what was refused."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._saved: dict[tuple[Any, str], Any] = {}

    def check(self, what: str, host: str | bytes | None, *, binding: bool = False) -> None:
        """Raise ``NetworkBlocked`` (and note it) unless ``host`` is loopback."""
        if not is_loopback(host, binding=binding):
            message = f"{what} {host!r}: tests may only reach loopback (127.0.0.0/8, ::1, localhost)"
            self.violations.append(message)
            raise NetworkBlocked(message)

    def check_address(self, what: str, family: int, address: Any) -> None:
        if family == getattr(socket, "AF_UNIX", None) or isinstance(address, str | bytes):
            return  # a unix socket's path
        self.check(what, address[0])

    def install(self) -> None:
        original_connect = socket.socket.connect
        original_connect_ex = socket.socket.connect_ex
        original_getaddrinfo = socket.getaddrinfo
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            guard.check_address("connect to", sock.family, address)
            original_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            try:
                guard.check_address("connect to", sock.family, address)
            except NetworkBlocked:
                return errno.ECONNREFUSED  # connect_ex answers with a code
            return original_connect_ex(sock, address)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            guard.check("look up", host, binding=True)
            return original_getaddrinfo(host, *args, **kwargs)

        for owner, name, replacement in (
            (socket.socket, "connect", connect),
            (socket.socket, "connect_ex", connect_ex),
            (socket, "getaddrinfo", getaddrinfo),
        ):
            self._saved[owner, name] = getattr(owner, name)
            setattr(owner, name, replacement)

    def uninstall(self) -> None:
        for (owner, name), original in self._saved.items():
            setattr(owner, name, original)
        self._saved.clear()


@pytest.fixture(autouse=True)
def network_guard() -> Iterator[Guard]:
    """Every test: nothing beyond loopback (see the module's docstring)."""
    guard = Guard()
    guard.install()
    try:
        yield guard
    finally:
        guard.uninstall()
    if guard.violations:
        pytest.fail("the test tried to reach the network:\n" + "\n".join(guard.violations), pytrace=False)
