"""`supportdesk web` (gunicorn's gthread worker, two threads) over raw sockets: keep-alive,
pipelining, and a connection that sends nothing does not hold up the worker. One worker, so
that every connection of a test meets the same one."""

from __future__ import annotations

import select
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator

import pytest

from supportdesk.core.config import Settings
from supportdesk.dev.embedded import free_port
from supportdesk.web.server import is_loopback
from tests.processes import SUPPORTDESK, settings_env, wait_until_healthy

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
KEEP_ALIVE_SECONDS = 2  # gunicorn's default, which `supportdesk web` keeps


@pytest.fixture(scope="module")
def one_worker(base_settings: Settings) -> Iterator[int]:
    port = free_port()
    env = settings_env(
        base_settings,
    )
    log = tempfile.NamedTemporaryFile(prefix="sd-web-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [SUPPORTDESK, "web", "--port", str(port), "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, log.name)
        yield port
    finally:
        process.terminate()
        process.wait(15)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """The status lines of `count` responses, each read to the end of its body."""
    buffer, statuses = b"", []
    while len(statuses) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection after {len(statuses)} responses"
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(buffer) < length:
            buffer += sock.recv(65536)
        buffer = buffer[length:]
        statuses.append(head.split(b"\r\n", 1)[0])
    return statuses


def test_a_kept_alive_connection_serves_request_after_request(one_worker):
    with connect(one_worker) as sock:
        for _ in range(3):
            sock.sendall(REQUEST)
            assert read_responses(sock, 1) == [b"HTTP/1.1 200 OK"]


def test_pipelined_requests_are_all_answered(one_worker):
    """Requests sent before their answers (the worker finds the next one already read)."""
    with connect(one_worker) as sock:
        sock.sendall(REQUEST * 200)
        assert read_responses(sock, 200) == [b"HTTP/1.1 200 OK"] * 200


def test_a_connection_that_sends_nothing_does_not_hold_up_the_worker(one_worker):
    """gthread waits up to 5 s for a new connection's first bytes in one of its threads; the
    other thread serves meanwhile. Then the connection waits in the poller, and is closed
    after the keep-alive time (2 s)."""
    with connect(one_worker) as silent:
        with urllib.request.urlopen(f"http://127.0.0.1:{one_worker}/healthz", timeout=3) as r:
            assert r.status == 200
        assert silent.recv(1) == b""  # closed by the server, well within the 10 s timeout


def test_requests_that_arrive_while_both_threads_are_busy_are_answered(one_worker):
    """Two slow requests hold both threads of the one worker for longer than the keep-alive
    time; meanwhile a kept-alive connection and a new one send their requests. These must
    wait and then be answered, not closed as idle: closing them would drop requests a client
    had already sent."""
    for _ in range(3):  # a loaded machine may spoil the timing; then the scenario is redone
        with connect(one_worker) as kept:
            kept.sendall(REQUEST)
            assert read_responses(kept, 1) == [b"HTTP/1.1 200 OK"]
            with (
                connect(one_worker) as slow,
                connect(one_worker) as slower,
                connect(one_worker) as new,
            ):
                slow.sendall(REQUEST[:-2])  # headers without their end: a thread waits
                slower.sendall(REQUEST[:-2])  # and the other thread
                time.sleep(0.5)
                kept.sendall(REQUEST)
                new.sendall(REQUEST)
                time.sleep(KEEP_ALIVE_SECONDS + 0.5)
                held = not select.select([kept, new], [], [], 0)[0]  # nothing answered yet
                slow.sendall(b"\r\n")
                slower.sendall(b"\r\n")
                for sock in (slow, slower, kept, new):
                    assert read_responses(sock, 1) == [b"HTTP/1.1 200 OK"]
        if held:
            return
    pytest.fail("the slow requests never held both threads while the others arrived")


# --- binding beyond loopback (issue 18, finding 8) -----------------------------------------


def _web_env(base_settings: Settings, **settings: str) -> dict[str, str]:
    return settings_env(
        base_settings,
        **({"TRUSTED_PROXIES": ""} | settings),
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "desk.example.com"])  # noqa: S104
def test_web_refuses_an_address_beyond_loopback_without_a_proxy(base_settings, host):
    """Each worker serves two requests at a time, so on a public address four clients that
    trickle their headers hold both workers: without TRUSTED_PROXIES (no proxy in front)
    the command refuses to start, saying why and what to do, and binds nothing."""
    port = free_port()
    done = subprocess.run(
        [SUPPORTDESK, "web", "--host", host, "--port", str(port)],
        env=_web_env(base_settings),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    [message] = done.stderr.strip().splitlines()  # one paragraph, no traceback
    assert host in message
    assert "TRUSTED_PROXIES" in message
    assert '"Production" in README.md' in message
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_web_serves_beyond_loopback_when_a_proxy_is_named(base_settings):
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="sd-web-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        [SUPPORTDESK, "web", "--host", "0.0.0.0", "--port", str(port), "--workers", "1"],  # noqa: S104
        env=_web_env(base_settings, TRUSTED_PROXIES="127.0.0.1"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, log.name)
    finally:
        process.terminate()
        process.wait(15)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("0.0.0.0", False),  # noqa: S104
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("localhost.example.com", False),
    ],
)
def test_which_hosts_count_as_loopback(host, loopback):
    assert is_loopback(host) is loopback
