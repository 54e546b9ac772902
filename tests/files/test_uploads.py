"""Deciding what a file is, and what its name may show (supportdesk.files.uploads)."""

from __future__ import annotations

import io

import pytest

from supportdesk.core.config import PROJECT_ROOT, ConfigError
from supportdesk.core.errors import UnsupportedMediaType
from supportdesk.files.image_sizes import pixel_size
from supportdesk.files.storage import LocalStorage
from supportdesk.files.uploads import decide_type, display_name
from tests import images


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\cleo\\report.pdf", "report.pdf"),
        ("  photo\u200b\x00.png ", "photo.png"),
        ("", "attachment"),
        (None, "attachment"),
        ("...", "attachment"),
        ("a" * 300 + ".pdf", "a" * 247 + ".pdf"),  # at most 255, the extension kept
        ("a." + "b" * 300, "a." + "b" * 253),  # a very long "extension" is cut, not kept
        ("." + "b" * 300, "b" * 255),
        ("r\u00e9sum\u00e9.docx", "r\u00e9sum\u00e9.docx"),
    ],
)
def test_display_names(raw, shown):
    assert display_name(raw) == shown


@pytest.mark.parametrize(
    ("head", "name", "declared", "decided"),
    [
        (b"a,b\n1,2\n", "data.csv", "application/vnd.ms-excel", "text/csv"),  # Windows' claim
        (b"hello\n", "notes", "application/octet-stream", "text/plain"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 20, "photo.JPG", "image/jpg", "image/jpeg"),
        (b"%PDF-1.7\n", "a.pdf", "", "application/pdf"),
    ],
)
def test_accepted_types(head, name, declared, decided):
    assert decide_type(head, name, declared) == decided


@pytest.mark.parametrize(
    ("head", "name"),
    [
        (b"#!/bin/sh\nrm -rf /\n", "run.txt"),
        (b"MZ\x90\x00" + b"\x00" * 60, "tool.pdf"),
        (b"<?xml version='1.0'?><svg/>", "image.txt"),
        (b"\x00\x01\x02\x03" * 10, "blob.txt"),
    ],
)
def test_refused_types(head, name):
    with pytest.raises(UnsupportedMediaType):
        decide_type(head, name, None)


def test_image_headers_are_walked_in_bounded_steps():
    """A GIF's size needs a walk over all its blocks, a JPEG's over the segments before its
    frame header: files built of millions of tiny blocks are given up on (None: refused
    as unreadable) instead of walked to their end, one Python step a block."""
    one_frame = images.gif((1, 1), (1, 1))
    start_of_data = one_frame.index(b"\x02\x02\x44")
    tiny_blocks = one_frame[: start_of_data + 1] + b"\x01\x00" * 5_000_000 + b"\x00\x3b"
    assert pixel_size(io.BytesIO(tiny_blocks)) is None
    frame_at = images.JPG_16.index(b"\xff\xc0")
    comments = b"\xff\xfe\x00\x02" * 2_000  # empty COM segments before the frame header
    many_segments = images.JPG_16[:2] + comments + images.JPG_16[frame_at:]
    assert pixel_size(io.BytesIO(many_segments)) is None
    assert pixel_size(
        io.BytesIO(images.JPG_16[:2] + comments[:400] + images.JPG_16[frame_at:])
    ) == (
        16,
        16,
    )


def test_local_storage_keeps_keys_inside_its_folder(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put("tickets/1/abc", io.BytesIO(b"x"), "text/plain")
    assert storage.exists("tickets/1/abc")
    with pytest.raises(ValueError, match="leaves the upload folder"):
        storage.put("../outside", io.BytesIO(b"x"), "text/plain")
    storage.delete("tickets/1/abc")
    assert not storage.exists("tickets/1/abc")


def test_uploads_are_never_kept_in_the_served_static_folder():
    with pytest.raises(ConfigError, match="UPLOAD_DIR"):
        LocalStorage(PROJECT_ROOT / "static" / "uploads")


def test_a_failed_write_leaves_no_partial_file(tmp_path):
    class Breaks(io.RawIOBase):
        def __init__(self):
            self.calls = 0

        def readable(self):
            return True

        def readinto(self, buffer):
            self.calls += 1
            if self.calls > 3:
                raise OSError("No space left on device")
            buffer[: len(buffer)] = b"x" * len(buffer)
            return len(buffer)

    storage = LocalStorage(tmp_path)
    with pytest.raises(OSError, match="No space"):
        storage.put("tickets/1/abc", io.BufferedReader(Breaks()), "text/plain")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
