"""What a search of the ticket list means, by what the person typed, and the index for each.

- A ticket number, `202611-00042`: that ticket (the unique index on pid).
- A number alone, `42`: ticket 42 of this month (the same index); with three digits or more,
  also any ticket whose text contains it (`500` may be an error code).
- An email address: that requester's tickets, exactly (an index on the lowercased address,
  newest first).
- Two characters: tickets with a word starting with them (the trigram index: the start of
  a word is a trigram of its own).
- Three or more: tickets whose subject, requester name or email contains them (the trigram
  index).
- And for both kinds of text (and a number of three digits or more), also the tickets one of
  whose messages holds every word of it: PostgreSQL full-text search, `simple` configuration
  (no stemming, no stop words: a word is found as it was written, case aside), on
  `ticket_messages.search_vector` and its GIN index. Whole words only, in any order
  (`plainto_tsquery`: no operators, so no input can make it fail). Every message counts, the
  INTERNAL notes too: only staff search the list. Such a search runs list_tickets_text
  (service.list_query), which finds the two ways apart, each on its own index, and unites
  the newest of each.

A single character other than a digit, or text without a letter or digit (the trigram index
holds none of it: the search would read every ticket), fits none of these: 422.

A text search counts its matches only up to TEXT_TOTAL_CAP ("more than 100"): a common
word matches tens of thousands of tickets at a million, and counting them all costs more
than finding the page (`make bench-tickets` measures both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from supportdesk.core.text import EMAIL_SHAPE
from supportdesk.core.vocabulary import is_pid
from supportdesk.tickets.pids import format_pid, pid_period

NUMBER = re.compile(r"^[0-9]{1,7}$")
SHORTEST_TEXT = 2
TEXT_TOTAL_CAP = 100


def fits_no_search(q: str) -> bool:
    """Whether `q` fits no kind of search (the 422 of the list's `q`)."""
    if NUMBER.match(q) or is_pid(q) or EMAIL_SHAPE.match(q):
        return False
    return len(q) < SHORTEST_TEXT or not any(ch.isalnum() for ch in q)


def _like_escaped(text: str) -> str:
    return text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class Search:
    """The parameters of list_tickets for one `q` (None: not this kind)."""

    pid: str | None = None
    email: str | None = None
    contains: str | None = None  # a LIKE pattern: %text%
    # LIKE patterns text% and % text%: a word starting with the text, at the very start or
    # after a space (the trigram index keeps those starts; not after other punctuation).
    word_start: tuple[str, str] | None = None
    words: str | None = None  # the text whose words the messages are searched for

    @classmethod
    def of(cls, q: str | None, now: datetime) -> Search | None:
        if not q:
            return None
        # Any run of white space is one space: a no-break space (U+00A0) pasted between two
        # words must separate them, and the server's text-search parser would not do so
        # under every locale (the C locale keeps it inside the word).
        q = " ".join(q.split())
        if is_pid(q):
            return cls(pid=q)
        if EMAIL_SHAPE.match(q):
            return cls(email=q.lower())
        if NUMBER.match(q):
            pid = format_pid(pid_period(now), int(q))
            if len(q) < 3:
                return cls(pid=pid)
            return cls(pid=pid, contains=f"%{q}%", words=q)
        escaped = _like_escaped(q)
        if len(q) < 3:
            return cls(word_start=(f"{escaped}%", f"% {escaped}%"), words=q)
        return cls(contains=f"%{escaped}%", words=q)

    @property
    def total_cap(self) -> int | None:
        """How far to count matches: less than the list's usual cap for text."""
        return TEXT_TOTAL_CAP if self.contains or self.word_start else None

    def params(self) -> dict[str, Any]:
        starts, inside = self.word_start or (None, None)
        return {
            "q_pid": self.pid,
            "q_email": self.email,
            "q_like": self.contains,
            "q_starts": starts,
            "q_word": inside,
            "q_words": self.words,
        }


# The parameters of no search at all: every kind NULL, folded away by the planner.
NO_SEARCH: dict[str, Any] = Search().params()
