"""The ticket number's one pattern, as each reader of it sees it (vocabulary.py)."""

from __future__ import annotations

import pytest

from supportdesk.core.vocabulary import (
    AUDIT_ACTION_LABELS,
    AUDIT_ACTIONS,
    PID_IN_SUBJECT,
    is_pid,
    pid_tag,
)


@pytest.mark.parametrize(
    ("text", "pid"),
    [
        ("202611-00042", True),
        ("202611-100000", True),  # the 100,000th ticket of a month
        ("202611-0042", False),
        ("2026-00042", False),
        ("202613-00042", False),  # no thirteenth month
        ("202600-00042", False),
        ("202611-00042x", False),
        (" 202611-00042", False),
        ("ticket 202611-00042", False),
    ],
)
def test_a_pid_is_known_whole_and_in_a_subject_tag(text, pid):
    assert is_pid(text) is pid
    found = PID_IN_SUBJECT.findall(f"Re: {pid_tag(text)} Printer jams")
    assert found == ([text] if pid else [])


def test_a_pid_with_a_line_break_after_it_is_not_one():
    assert not is_pid("202611-00042\n")


def test_every_audit_action_has_its_label_and_no_other_has_one():
    assert list(AUDIT_ACTION_LABELS) == list(AUDIT_ACTIONS)
    assert all(label.strip() for label in AUDIT_ACTION_LABELS.values())
