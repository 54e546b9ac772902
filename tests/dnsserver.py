"""A DNS server of the tests' own (UDP, on 127.0.0.1), for the production resolver."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Mapping

import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class DnsServer:
    """Answers from `records` (`{("example.org", "TXT"): ['"v=spf1 -all"']}`, each in zone
    file text); a name with no record of any type is NXDOMAIN, one in `servfail` gets
    SERVFAIL, one in `silent` no answer at all (a timeout)."""

    def __init__(
        self,
        records: Mapping[tuple[str, str], Iterable[str]],
        servfail: Iterable[str] = (),
        silent: Iterable[str] = (),
    ):
        self.records = {key: list(texts) for key, texts in records.items()}
        self.servfail = set(servfail)
        self.silent = set(silent)
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, client = self.socket.recvfrom(65535)
            except OSError:  # closed
                return
            answer = self._answer(dns.message.from_wire(data))
            if answer is not None:
                # In the order the test gave (dnspython shuffles by default): the tests of
                # "the name's next address" depend on which address comes first.
                self.socket.sendto(answer.to_wire(want_shuffle=False), client)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        if name in self.silent:
            return None
        response = dns.message.make_response(query)
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rdtype) in self.records:
            texts = self.records[(name, rdtype)]
            response.answer.append(dns.rrset.from_text(question.name, 300, "IN", rdtype, *texts))
        elif not any(known == name for known, _ in self.records):
            response.set_rcode(dns.rcode.NXDOMAIN)
        return response

    def close(self) -> None:
        self.socket.close()
