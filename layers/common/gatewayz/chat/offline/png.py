"""A deterministic picture as a PNG, with only zlib and struct (the offline `mock/image`).

No imaging library: the Lambda layer has no room for one. The picture is a grid of
flat-coloured tiles whose colours come from SHA-256 of a seed, so the same seed always
gives the same bytes, and a 1024x1024 picture takes a few milliseconds and a few KB.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

GRID = 8  # tiles across and down
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def picture(seed: bytes, width: int, height: int) -> bytes:
    """A `width` x `height` RGB PNG of `GRID` x `GRID` tiles coloured from `seed`."""
    colours = _colours(seed, GRID * GRID)
    rows = []
    for tile_row in range(GRID):
        row = bytearray(b"\x00")  # filter type 0 (none) for every scanline
        for column in range(GRID):
            span = _span(column, width)
            row += colours[tile_row * GRID + column] * span
        rows.append(bytes(row) * _span(tile_row, height))
    return encode(width, height, b"".join(rows))


def encode(width: int, height: int, scanlines: bytes) -> bytes:
    """A PNG of 8-bit RGB `scanlines` (each prefixed by its filter byte)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(scanlines, 6))
        + _chunk(b"IEND", b"")
    )


def size_of(data: bytes) -> tuple[int, int] | None:
    """A PNG's width and height from its header; None when `data` is not a PNG."""
    if len(data) < 24 or not data.startswith(SIGNATURE) or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _span(index: int, total: int) -> int:
    """Pixels in tile `index` of `total` split into `GRID` (the last takes the rest)."""
    return total // GRID + (total % GRID if index == GRID - 1 else 0)


def _colours(seed: bytes, count: int) -> list[bytes]:
    stream = b""
    block = 0
    while len(stream) < 3 * count:
        stream += hashlib.sha256(block.to_bytes(4, "big") + seed).digest()
        block += 1
    return [stream[3 * i : 3 * i + 3] for i in range(count)]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
