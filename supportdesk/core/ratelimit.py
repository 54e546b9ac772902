"""Fixed-window counters in Redis: failed logins, tickets opened by the public, the
acknowledgements we send, replies on the customer's view, and mail from one SMTP client.

A window starts with the first counted hit on a key and lasts `window` seconds. An attempt
is checked before it is counted: one that is refused (429 with `Retry-After`) is not counted,
so a client that keeps trying after its limit does not push its own window, or anyone
else's, further out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass

import redis

from supportdesk.core.clients import ClientAddresses, IPNetwork
from supportdesk.core.errors import RateLimited


def _digest(text: str) -> str:
    # Hashed: keys stay short and Redis holds no list of who tried what.
    return hashlib.sha256(text.strip().lower().encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Window:
    """One counter: its Redis key, its limit (0: counted, never refusing) and how long its
    window lasts from its first counted hit."""

    key: str
    limit: int
    seconds: int


# KEYS: the counters, the required ones first; ARGV[1]: how many are required; ARGV[2i],
# ARGV[2i + 1]: the limit and window of KEYS[i]. If a required counter is at its limit,
# nothing is counted and the reply is {the longest wait}. Else every required counter is
# counted, and the optional ones are counted together if each of them is under its limit;
# the reply is {0, 1 or 0: the optional ones counted or not}. One round trip, atomic:
# parallel attempts cannot all pass one check, and a counter is never left without its
# expiry.
_CHECK_THEN_COUNT = """
local required = tonumber(ARGV[1])
local function wait_for(i)
    local limit, window = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
    if limit == 0 or tonumber(redis.call('GET', KEYS[i]) or '0') < limit then return 0 end
    local ttl = redis.call('TTL', KEYS[i])
    if ttl < 0 then
        redis.call('EXPIRE', KEYS[i], window)
        ttl = window
    end
    return math.max(ttl, 1)
end
local wait = 0
for i = 1, required do wait = math.max(wait, wait_for(i)) end
if wait > 0 then return {wait} end
local optional = 1
for i = required + 1, #KEYS do
    if wait_for(i) > 0 then optional = 0 end
end
for i = 1, #KEYS do
    if (i <= required or optional == 1) and redis.call('INCR', KEYS[i]) == 1 then
        redis.call('EXPIRE', KEYS[i], ARGV[2 * i + 1])
    end
end
return {0, optional}
"""

# Give back one counted attempt on each key that still exists (a key whose window ended
# meanwhile stays gone, rather than coming back as -1 without an expiry).
_GIVE_BACK = """
for _, key in ipairs(KEYS) do
    if redis.call('EXISTS', key) == 1 then redis.call('DECR', key) end
end
return 0
"""


class FixedWindows:
    """Counters whose window starts at their first counted hit (scripts are loaded once)."""

    def __init__(self, redis_client: redis.Redis):
        self.redis = redis_client
        self._check_then_count = redis_client.register_script(_CHECK_THEN_COUNT)
        self._give_back = redis_client.register_script(_GIVE_BACK)

    def hit(
        self, required: Sequence[Window], message: str, optional: Sequence[Window] = ()
    ) -> bool:
        """Raise RateLimited if any `required` counter is at its limit, counting nothing.
        Otherwise count one on each of them, and one on each `optional` counter if all of
        those are under their limits; returns whether the optional ones were counted."""
        windows = [*required, *optional]
        reply = self._check_then_count(
            keys=[w.key for w in windows],
            args=[len(required), *(arg for w in windows for arg in (w.limit, w.seconds))],
        )
        if reply[0]:
            raise RateLimited(int(reply[0]), message)
        return bool(reply[1])

    def give_back(self, keys: Sequence[str]) -> None:
        self._give_back(keys=list(keys))


class LoginThrottle:
    """Failed logins, whether the email exists or not. An attempt is counted before its
    password is checked (parallel guesses cannot all pass), and a success gives it back.

    - One account from one client address: `per_account` attempts a window. Only that
      client is refused: an attacker elsewhere cannot lock the real user out (OWASP ASVS
      V2.2.1: anti-automation that does not lock out legitimate users).
    - One client address across accounts: `per_address`.
    - One account from everywhere: past `slowdown_after` a window, each client address gets
      a single attempt a window for it. That slows guessing from many addresses without
      locking anyone out: the real user's own address has not failed, so their try counts.
    """

    SLOWED_PER_ACCOUNT = 1

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        per_account: int,
        per_address: int,
        slowdown_after: int,
        window_seconds: int,
    ):
        self.redis = redis_client
        self.windows = FixedWindows(redis_client)
        self.per_account = per_account
        self.per_address = per_address
        self.slowdown_after = slowdown_after
        self.window = window_seconds

    def attempt(self, email: str, address: str) -> None:
        account = self._account_key(email)
        slowed = int(self.redis.get(account) or 0) >= self.slowdown_after
        self.windows.hit(
            [
                Window(self._pair_key(email, address), self._pair_limit(slowed), self.window),
                Window(self._address_key(address), self.per_address, self.window),
                Window(account, 0, self.window),  # counted, never refusing by itself
            ],
            "Too many failed login attempts; please wait before trying again.",
        )

    def _pair_limit(self, slowed: bool) -> int:
        return min(self.per_account, self.SLOWED_PER_ACCOUNT) if slowed else self.per_account

    def succeeded(self, email: str, address: str) -> None:
        """A success clears this client's count for the account and gives back its attempt
        on the others (the address keeps its earlier failures: logging in to an account of
        one's own must not reset the count of guesses against other accounts)."""
        self.redis.delete(self._pair_key(email, address))
        self.windows.give_back([self._address_key(address), self._account_key(email)])

    @staticmethod
    def _pair_key(email: str, address: str) -> str:
        return f"sd:login:pair:{_digest(email + chr(0) + address)}"

    @staticmethod
    def _account_key(email: str) -> str:
        return f"sd:login:account:{_digest(email)}"

    @staticmethod
    def _address_key(address: str) -> str:
        return f"sd:login:address:{address}"


class PublicTicketThrottle:
    """Tickets opened without a login, per client address and per requester email.

    The form is public and every ticket sends an acknowledgement: without a limit it could
    flood the help desk, or mail someone else's inbox through us.
    """

    WINDOW = 3600

    def __init__(self, redis_client: redis.Redis, *, per_address: int, per_requester: int):
        self.windows = FixedWindows(redis_client)
        self.per_address = per_address
        self.per_requester = per_requester

    def attempt(
        self, address: str, requester_email: str, acknowledgement: Sequence[Window] = ()
    ) -> bool:
        """Count a ticket from `address` for `requester_email`, or raise RateLimited. In the
        same round trip, the `acknowledgement` counters (`AckThrottle.counters`) are counted
        if each is under its limit; returns whether they were (False without them)."""
        counted = self.windows.hit(
            [
                Window(f"sd:tickets:address:{address}", self.per_address, self.WINDOW),
                Window(
                    f"sd:tickets:requester:{_digest(requester_email)}",
                    self.per_requester,
                    self.WINDOW,
                ),
            ],
            "Too many requests were sent from here; please wait and try again.",
            optional=acknowledgement,
        )
        return bool(acknowledgement) and counted


class CustomerReplyThrottle:
    """Replies on the customer's view of a ticket (`/t/<pid>`), an hour: per ticket (the
    signed link names it, and travels in mail that can be forwarded) and per client address.
    Each reply is stored and may notify the assignee."""

    WINDOW = 3600

    def __init__(self, redis_client: redis.Redis, *, per_ticket: int, per_address: int):
        self.windows = FixedWindows(redis_client)
        self.per_ticket = per_ticket
        self.per_address = per_address

    def attempt(self, pid: str, address: str) -> None:
        """Count a reply on ticket `pid` from `address`, or raise RateLimited."""
        self.windows.hit(
            [
                Window(f"sd:replies:ticket:{pid}", self.per_ticket, self.WINDOW),
                Window(f"sd:replies:address:{address}", self.per_address, self.WINDOW),
            ],
            "Many replies were sent in a short time; please wait and try again.",
        )


class SmtpClientThrottle:
    """Messages from one SMTP client (its address, an IPv6 /64) an hour, on the inbound
    listener: the email channel's counterpart of the public form's limit per address. Past
    it the client is told to try later (451), so a flood waits at the sender and a real
    server's mail still arrives, later. The company's own relays (INBOUND_SMTP_RELAYS: its
    MX, when the listener sits behind it) are not counted."""

    WINDOW = 3600

    def __init__(
        self, redis_client: redis.Redis, *, per_client: int, relays: Iterable[IPNetwork] = ()
    ):
        self.windows = FixedWindows(redis_client)
        self.per_client = per_client
        self.relays = ClientAddresses(relays)

    def attempt(self, peer: str) -> None:
        """Count a message from the client at `peer`, or raise RateLimited."""
        if self.relays.is_trusted(peer):
            return
        client = self.relays.client(peer, None)
        self.windows.hit(
            [Window(f"sd:smtp:client:{client}", self.per_client, self.WINDOW)],
            "Too many messages from your address; try again later.",
        )


# The large providers where anyone can have a mailbox: a domain budget means nothing there.
SHARED_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
        "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me",
        "protonmail.com", "gmx.com", "gmx.net", "gmx.de", "web.de", "t-online.de",
        "mail.ru", "yandex.ru", "yandex.com", "qq.com", "163.com", "126.com", "zoho.com",
        "fastmail.com", "orange.fr", "free.fr", "laposte.net", "libero.it", "comcast.net",
    }
)  # fmt: skip


def normalized_mailbox(address: str) -> str:
    """The mailbox that receives mail for `address`, as far as counting needs to know:
    case, a `+tag` and the dots of the local part make no other inbox at the common
    providers (`Vic.Tim+1@GoogleMail.com` is `victim@gmail.com`). Counting them as one
    may merge two people of one company; that costs them an acknowledgement, not mail."""
    local, _, domain = address.strip().lower().rpartition("@")
    local = local.split("+", 1)[0].replace(".", "")
    domain = {"googlemail.com": "gmail.com"}.get(domain, domain)
    return f"{local}@{domain}"


class AckThrottle:
    """Acknowledgements we send: to one mailbox a day, to one domain an hour, and in all an
    hour. An autoresponder that slips past the loop checks, or a flood of tickets opened in
    someone's name (on the public form, or by mail with forged senders), gets a few, not one
    per ticket; address variants count as their mailbox. Past a limit, the ticket is still
    opened, without an acknowledgement."""

    DAY = 86400
    HOUR = 3600

    def __init__(
        self, redis_client: redis.Redis, *, per_address: int, per_domain: int, per_hour: int
    ):
        self.windows = FixedWindows(redis_client)
        self.per_address = per_address
        self.per_domain = per_domain
        self.per_hour = per_hour

    def counters(self, address: str) -> list[Window]:
        """The counters of an acknowledgement to `address`, for a check made together with
        others. A shared mail provider's domain has no budget of its own: its customers
        are strangers to each other, and a few dozen forged senders would otherwise spend
        the acknowledgements of everyone at gmail.com for an hour."""
        mailbox = normalized_mailbox(address)
        domain = mailbox.rpartition("@")[2]
        counters = [Window(f"sd:acks:{_digest(mailbox)}", self.per_address, self.DAY)]
        if domain not in SHARED_MAIL_DOMAINS:
            counters.append(Window(f"sd:acks:domain:{_digest(domain)}", self.per_domain, self.HOUR))
        counters.append(Window("sd:acks:all", self.per_hour, self.HOUR))
        return counters

    def allows(self, address: str) -> bool:
        try:
            return self.windows.hit([], "", optional=self.counters(address))
        except redis.RedisError:
            return True  # unchecked: the loop checks still hold, and nothing is lost

    @contextmanager
    def given_back_on_failure(self, address: str, counted: bool) -> Iterator[None]:
        """Around the ticket an acknowledgement was counted for: if it is not stored (a
        database error, which the provider or the customer retries), the count is given
        back, so that retries do not use up the address's acknowledgements."""
        try:
            yield
        except BaseException:
            if counted:
                with suppress(redis.RedisError):  # else the window ends by itself
                    self.windows.give_back([w.key for w in self.counters(address)])
            raise
