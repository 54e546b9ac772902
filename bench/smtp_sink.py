"""An SMTP sink for the worker benchmark: accepts everything, keeps nothing but when each
Message-ID was answered with 250, its size and its number of recipients. Runs as its own
process (so that neither side of a measurement shares its interpreter with the server)
until SIGTERM, then writes `<unix time> <bytes> <recipients> <message-id>` lines to --out.

    python -m bench.smtp_sink --port 2525 --out /tmp/received.txt
"""

from __future__ import annotations

import argparse
import re
import signal
import threading
import time

from aiosmtpd.controller import Controller

_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


class Sink:
    def __init__(self) -> None:
        self.received: list[tuple[float, int, int, bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content
        found = _MESSAGE_ID.search(content)
        self.received.append(
            (
                time.time(),
                len(content),
                len(envelope.rcpt_tos),
                found.group(1) if found else b"<none>",
            )
        )
        return "250 2.0.0 Accepted"


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.smtp_sink")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=args.port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("ready", flush=True)
    stop.wait()
    controller.stop()
    with open(args.out, "w", encoding="ascii") as out:
        for moment, size, recipients, message_id in sink.received:
            out.write(f"{moment:.6f} {size} {recipients} {message_id.decode('ascii', 'replace')}\n")


if __name__ == "__main__":
    main()
