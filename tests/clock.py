"""A clock the test moves, for the app's and a worker's `clock=`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Now, until the test moves it on. `behind` starts it that far in the past: a TOTP code
    belongs to a 30-second step, and moving a clock that started at the machine's time on
    would issue session tokens from the future (which their verification refuses).

    A test module keeps one for its tests (the app built with it is shared, as
    `shared_app` shares apps): its `clock` fixture sets it back to now with `reset`."""

    def __init__(self, behind: timedelta = timedelta()) -> None:
        self.behind = behind
        self.now = datetime.now(UTC) - behind

    def reset(self) -> Clock:
        self.now = datetime.now(UTC) - self.behind
        return self

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
