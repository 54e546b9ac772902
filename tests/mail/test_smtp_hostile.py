"""The SMTP listener under the hostile mail of issue 18: it answers other sessions while one
is parsed, stops on SIGTERM, and refuses for good (550) what can never be stored."""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import socket
import subprocess
import threading
import time

import pytest

from supportdesk.dev.embedded import free_port
from tests.mail import hostile
from tests.processes import SUPPORTDESK, settings_env

# Before the bounds this line kept one regular expression (and the GIL) busy for about a
# minute, in the listener's own process.
HOSTILE = hostile.on_on_line(40_000)


def _send_in_background(port: int, raw: bytes) -> dict:
    """Sends `raw` from a thread; the dict gets the refused recipients, or the error."""
    result: dict = {}

    def send() -> None:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=120) as smtp:
                result["refused"] = smtp.sendmail("eve@example.org", ["support@example.com"], raw)
        except (OSError, smtplib.SMTPException) as ex:
            result["error"] = ex

    result["thread"] = threading.Thread(target=send, daemon=True)
    result["thread"].start()
    return result


@pytest.mark.parametrize(
    "raw",
    [hostile.parts_after_bare_crs(20_000), hostile.nested_multiparts(1200, line_end=b"\r")],
    ids=["20000-parts-after-bare-crs", "1200-deep-multiparts"],
)
def test_too_many_parts_or_too_deep_is_refused_for_good(listener, db, raw):
    """550, not 451: a 451 (what a RecursionError gave) has the sender retry for days."""
    with (
        smtplib.SMTP("127.0.0.1", listener, timeout=30) as smtp,
        pytest.raises(smtplib.SMTPDataError) as refused,
    ):
        smtp.sendmail("eve@example.org", ["support@example.com"], raw)
    assert refused.value.smtp_code == 550
    assert b"parts" in refused.value.smtp_error
    with db.transaction() as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)


@pytest.fixture
def listener_process(base_settings, db, tmp_path):
    """`supportdesk smtp-inbound` as a process of its own (a parse that held the GIL froze
    every thread of its process: a listener in the test's process would freeze the test's
    probes with it, unseen). Yields (port, process); kills what is left of it at the end."""
    port = free_port()
    env = settings_env(
        base_settings,
    )
    with (tmp_path / "smtp.log").open("wb") as log:
        process = subprocess.Popen(
            [SUPPORTDESK, "smtp-inbound", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for_port(port, process)
        yield port, process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the SMTP listener did not start") from None
            time.sleep(0.2)


def test_other_sessions_are_answered_while_a_hostile_message_is_parsed(listener_process, db):
    port, _ = listener_process
    sending = _send_in_background(port, HOSTILE)
    watched_until = time.monotonic() + 5  # the hostile parse has long begun by then
    while time.monotonic() < watched_until:
        started = time.monotonic()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as probe:
            assert probe.ehlo()[0] == 250
            assert probe.noop()[0] == 250
        assert time.monotonic() - started < 2
        time.sleep(0.25)
    sending["thread"].join(30)
    assert sending.get("refused") == {}
    with db.transaction() as conn:
        [(body,)] = conn.execute("SELECT body FROM ticket_messages").fetchall()
    assert body.startswith("hello\nOn On On")


def _running_in_group(pgid: int) -> list[str]:
    """The processes of group `pgid` that have not exited (a zombie has: here nobody may
    reap the orphans of an exited listener), as `pid command` lines."""
    running = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            running.append(f"{entry} {command[:120]}")
    return running


def test_the_listener_stops_on_sigterm_while_a_hostile_message_is_parsed(listener_process):
    """And leaves no parsing process behind."""
    port, process = listener_process
    _send_in_background(port, HOSTILE)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(10) == 0
    time.sleep(1)  # the forkserver sees its parent gone
    assert _running_in_group(process.pid) == []
