"""How many pixels an image will take to draw, read from its headers without decoding it.

For the image types uploads accept (uploads.IMAGES: PNG, JPEG, GIF, WebP), so that a file
of a few kilobytes that a browser would decode into gigabytes (a 65535 x 65535 PNG) is
refused before a thumbnail of it reaches a staff member's page. Each format is read as its
specification lays it out; anything that does not read cleanly is None ("cannot tell"),
which uploads refuses. Every walk is bounded: by the file's end, and by a number of steps
that ordinary files stay far below, so a hostile file costs milliseconds.
"""

from __future__ import annotations

import struct
from typing import IO

# A JPEG's frame header (SOF) comes after its APPn segments (EXIF, ICC profile, XMP): a
# dozen or so in camera files. A GIF has a sub-block per 255 bytes of image data and two
# or three blocks a frame: 200,000 covers about 50 MB of GIF.
_MAX_JPEG_SEGMENTS = 1_000
_MAX_GIF_STEPS = 200_000
# JPEG markers that start a frame header (SOF0-SOF15 less DHT, JPG and DAC).
_JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# JPEG markers that stand alone, without a length: TEM and RST0-RST7.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def pixel_size(file: IO[bytes]) -> tuple[int, int] | None:
    """(width, height) of the image in `file` as a browser would lay it out, or None when
    its headers cannot be read. Reads from the start; leaves the position anywhere."""
    file.seek(0)
    head = file.read(32)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        size = _png(head)
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        size = _gif(file)
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        size = _webp(head)
    elif head[:3] == b"\xff\xd8\xff":
        size = _jpeg(file)
    else:
        size = None
    return size if size and size[0] > 0 and size[1] > 0 else None


def _png(head: bytes) -> tuple[int, int] | None:
    """The IHDR chunk, which the PNG specification puts first."""
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _webp(head: bytes) -> tuple[int, int] | None:
    """The first chunk: lossy (VP8), lossless (VP8L) or extended (VP8X, whose canvas holds
    every frame of an animation)."""
    if len(head) < 30:
        return None
    kind = head[12:16]
    if kind == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _jpeg(file: IO[bytes]) -> tuple[int, int] | None:
    """The first frame header, walking the segments before it by their lengths."""
    file.seek(2)
    for _ in range(_MAX_JPEG_SEGMENTS):
        if file.read(1) != b"\xff":
            return None
        marker = file.read(1)
        while marker == b"\xff":  # fill bytes
            marker = file.read(1)
        if not marker:
            return None
        if marker[0] in _JPEG_STANDALONE:
            continue
        length = file.read(2)
        if len(length) < 2 or marker[0] in (0xD9, 0xDA):  # the end, or data before a frame
            return None
        if marker[0] in _JPEG_FRAMES:
            frame = file.read(5)
            if len(frame) < 5:
                return None
            height, width = struct.unpack(">HH", frame[1:5])
            return width, height  # a height of 0 (given later, by DNL) is None above
        file.seek(struct.unpack(">H", length)[0] - 2, 1)
    return None


def _gif(file: IO[bytes]) -> tuple[int, int] | None:
    """The logical screen, grown to hold every frame: browsers enlarge the screen to a
    first frame larger than it, so the screen's own size alone proves nothing."""
    file.seek(6)
    screen = file.read(7)
    if len(screen) < 7:
        return None
    width, height, flags = struct.unpack("<HHB", screen[:5])
    file.seek(_color_table(flags), 1)
    steps = 0
    while steps < _MAX_GIF_STEPS:
        introducer = file.read(1)
        if introducer == b"\x2c":  # a frame: where it goes, its size, its own colours
            descriptor = file.read(9)
            if len(descriptor) < 9:
                return None
            left, top, frame_width, frame_height, flags = struct.unpack("<HHHHB", descriptor)
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            file.seek(_color_table(flags) + 1, 1)  # and the LZW code size
        elif introducer == b"\x21":  # an extension: its label, then sub-blocks
            file.seek(1, 1)
        else:  # the trailer, or the end of what any decoder reads
            return width, height
        while steps < _MAX_GIF_STEPS:  # data sub-blocks, each led by its length, to a 0
            steps += 1
            length = file.read(1)
            if not length:
                return None
            if length == b"\x00":
                break
            file.seek(length[0], 1)
    return None


def _color_table(flags: int) -> int:
    """The bytes of a GIF colour table that `flags` announce (none without its top bit)."""
    return 3 << ((flags & 0x07) + 1) if flags & 0x80 else 0
