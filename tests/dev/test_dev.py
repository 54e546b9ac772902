"""`supportdesk dev` runs the whole system and Ctrl-C stops every process it started."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.processes import SUPPORTDESK


def _health(port: int) -> tuple[int, dict] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as ex:
        return ex.code, json.loads(ex.read())
    except OSError:
        return None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _quiet_port() -> int:
    """A free port below the kernel's ephemeral range (32768 and up on Linux), where no
    `free_port()` of the other test processes and no outgoing connection lands: make dev
    binds its ports seconds after they are chosen, and with four test processes another
    test's server once took the web port in between."""
    while True:
        port = random.randrange(20_000, 30_000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def _run_dev(tmp_path: Path, env_over: dict[str, str]):
    ports = {name: _quiet_port() for name in ("web", "pg", "redis", "smtp", "inbound")}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "ENVIRONMENT", "SMTP_HOST", "SMTP_PORT")
    } | env_over
    proc = subprocess.Popen(
        [
            SUPPORTDESK,
            "dev",
            "--port",
            str(ports["web"]),
            "--pg-port",
            str(ports["pg"]),
            "--redis-port",
            str(ports["redis"]),
            "--smtp-port",
            str(ports["smtp"]),
            "--inbound-port",
            str(ports["inbound"]),
            "--var-dir",
            str(tmp_path / "var"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc, ports


def _wait_healthy(proc, port: int, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail("dev exited early:\n" + proc.stdout.read().decode())
        result = _health(port)
        if result and result[0] == 200:
            return result[1]
        time.sleep(0.5)
    proc.kill()
    pytest.fail("dev did not become healthy:\n" + proc.stdout.read().decode())


def _ctrl_c(proc) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    try:
        out, _ = proc.communicate(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("dev did not stop within 40s of Ctrl-C")
    return out.decode()


def test_dev_starts_embedded_services_and_ctrl_c_stops_them_all(tmp_path):
    proc, ports = _run_dev(tmp_path, {})
    health = _wait_healthy(proc, ports["web"])
    assert health["checks"] == {"postgres": "ok", "redis": "ok"}
    assert (tmp_path / "var" / "pg" / "PG_VERSION").exists()
    # The first start seeds an ADMIN and says how to log in.
    email, password = (tmp_path / "var" / "dev-admin.txt").read_text().split()
    request = urllib.request.Request(
        f"http://127.0.0.1:{ports['web']}/api/auth/login",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        assert json.loads(resp.read())["user"]["role"] == "ADMIN"
    assert all(_listening(p) for p in ports.values())

    # A newcomer opens a ticket and sees its acknowledgement in the mailbox, configuring
    # nothing: the worker sent it to the dev mailbox, and /dev/mailbox lists it.
    opened = urllib.request.Request(
        f"http://127.0.0.1:{ports['web']}/api/tickets",
        data=json.dumps(
            {"name": "Newcomer", "email": "new@example.org", "subject": "Hi", "body": "Test"}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(opened, timeout=5) as resp:
        pid = json.loads(resp.read())["ticket"]["pid"]
    deadline = time.monotonic() + 60
    while not list((tmp_path / "var" / "mail").glob("*.eml")) and time.monotonic() < deadline:
        time.sleep(0.2)
    [stored] = list((tmp_path / "var" / "mail").glob("*.eml"))
    assert f"[#{pid}] We received your request: Hi".encode() in stored.read_bytes()
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['web']}/dev/mailbox", timeout=5) as r:
        assert f"[#{pid}] We received your request: Hi" in r.read().decode()
    # And the other way: an email sent to the local listener becomes a ticket.
    import smtplib

    with smtplib.SMTP("127.0.0.1", ports["inbound"], timeout=10) as smtp:
        smtp.sendmail(
            "mia@example.org",
            ["support@example.com"],
            b"From: Mia <mia@example.org>\r\nTo: support@example.com\r\n"
            b"Subject: By email\r\nMessage-ID: <dev.1@example.org>\r\n\r\nHello by email.\r\n",
        )
    # It is a ticket when its own acknowledgement reaches the mailbox.
    deadline = time.monotonic() + 60
    while len(list((tmp_path / "var" / "mail").glob("*.eml"))) < 2:
        assert time.monotonic() < deadline, "the emailed ticket was never acknowledged"
        time.sleep(0.2)
    acks = [p.read_bytes() for p in (tmp_path / "var" / "mail").glob("*.eml")]
    assert any(b"We received your request: By email" in ack for ack in acks)
    health = _health(ports["web"])[1]
    while health["email"]["undelivered"] and time.monotonic() < deadline:
        time.sleep(0.2)  # the worker records SENT just after the mailbox's 250
        health = _health(ports["web"])[1]
    assert health["email"]["worker"] == "ok"
    assert health["email"]["undelivered"] == 0

    out = _ctrl_c(proc)
    assert f"Log in at /login as {email} with password {password}" in out
    time.sleep(0.5)
    # Every process it started is gone. Not "nothing listens on their ports": with the
    # suite in four processes, another test may take a port the moment it is free.
    started = [int(pid) for pid in re.findall(r"started \(pid=(\d+)\)", out)]
    assert len(started) >= 5, out
    still = [pid for pid in started if Path(f"/proc/{pid}").exists()]
    assert still == [], out
    # A clean PostgreSQL shutdown removes its pid file.
    assert not (tmp_path / "var" / "pg" / "postmaster.pid").exists(), out


def test_dev_uses_configured_servers_instead_of_embedded(tmp_path, database_url, redis_url):
    proc, ports = _run_dev(tmp_path, {"DATABASE_URL": database_url, "REDIS_URL": redis_url})
    try:
        _wait_healthy(proc, ports["web"])
        assert _listening(ports["smtp"])  # no SMTP_HOST given: the dev mailbox runs
        # No embedded server was started (their ports, never bound here, may meanwhile be
        # any other process's: the data folders and the output say it).
        assert not (tmp_path / "var" / "pg").exists()
        assert not (tmp_path / "var" / "redis").exists()
    finally:
        out = _ctrl_c(proc)
    assert "embedded" not in out
