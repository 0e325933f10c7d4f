"""The network guard (``tests/netguard.py``): loopback and unix sockets only; a test reaching beyond
fails, even when the code under test catches the error and carries on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.netguard import Guard, NetworkBlocked

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST.", b"127.0.0.1"])
def test_loopback_may_be_reached(host: str | bytes) -> None:
    Guard().check("connect to", host)


@pytest.mark.parametrize("host", ["192.0.2.1", "10.0.0.1", "2001:db8::1", "example.org", "0.0.0.0"])
def test_anything_else_is_refused(host: str) -> None:
    guard = Guard()
    with pytest.raises(NetworkBlocked, match="loopback"):
        guard.check("connect to", host)
    assert guard.violations and repr(host) in guard.violations[0]


def test_a_unix_socket_may_be_reached(tmp_path: Path) -> None:
    Guard().check_address("connect to", socket.AF_UNIX, str(tmp_path / "socket"))


def test_a_test_that_reaches_out_fails_even_if_the_error_is_caught(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makeconftest("from tests.netguard import network_guard  # noqa: F401")
    pytester.makepyfile(
        """
        import socket

        def test_looks_up_a_name():
            try:
                socket.getaddrinfo("example.org", 443)
            except OSError:
                pass  # a retrying client would carry on

        def test_connects_to_an_address():
            with socket.socket() as sock:
                assert sock.connect_ex(("192.0.2.1", 80)) != 0  # refused before any packet leaves

        def test_stays_on_loopback():
            with socket.socket() as server:
                server.bind(("127.0.0.1", 0))
                server.listen()
                socket.create_connection(server.getsockname(), timeout=1).close()
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(["*tried to reach the network*", "*look up 'example.org'*"])
    result.stdout.fnmatch_lines(["*connect to '192.0.2.1'*"])
