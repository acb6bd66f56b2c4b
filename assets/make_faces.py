"""Draw the rating faces as PNGs: `python assets/make_faces.py` (standard library only).

Each face is described as shapes with signed distance functions and rasterised with analytic
anti-aliasing, so the edges are smooth at any size without an imaging library. The five faces
differ in mouth AND colour AND (on screen) their word, so no one needs to tell colours apart.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

SIZE = 384
OUT = Path(__file__).resolve().parent / "faces"
INK = (0x1C, 0x1F, 0x23)

Shape = Callable[[float, float], float]  # signed distance in face units (negative inside)


def disc(cx: float, cy: float, r: float) -> Shape:
    return lambda x, y: math.hypot(x - cx, y - cy) - r


def ring(cx: float, cy: float, r: float, width: float) -> Shape:
    return lambda x, y: abs(math.hypot(x - cx, y - cy) - r) - width / 2


def oval(cx: float, cy: float, rx: float, ry: float) -> Shape:
    return lambda x, y: (math.hypot((x - cx) / rx, (y - cy) / ry) - 1) * min(rx, ry)


def segment(x0: float, y0: float, x1: float, y1: float, width: float) -> Shape:
    def distance(x: float, y: float) -> float:
        dx, dy = x1 - x0, y1 - y0
        t = max(0.0, min(1.0, ((x - x0) * dx + (y - y0) * dy) / (dx * dx + dy * dy)))
        return math.hypot(x - x0 - t * dx, y - y0 - t * dy) - width / 2

    return distance


def arc(cx: float, cy: float, r: float, start_deg: float, end_deg: float, width: float) -> Shape:
    """A stroke along a circle, y pointing down: 90 degrees is straight below the centre."""
    start, end = math.radians(start_deg), math.radians(end_deg)
    ends = [(cx + r * math.cos(a), cy + r * math.sin(a)) for a in (start, end)]

    def distance(x: float, y: float) -> float:
        angle = math.atan2(y - cy, x - cx) % (2 * math.pi)
        if (angle - start) % (2 * math.pi) <= (end - start) % (2 * math.pi):
            d = abs(math.hypot(x - cx, y - cy) - r)
        else:
            d = min(math.hypot(x - ex, y - ey) for ex, ey in ends)
        return d - width / 2

    return distance


def open_smile(cx: float, cy: float, r: float) -> Shape:
    """The lower half of a disc: a broad, open laugh."""
    return lambda x, y: max(math.hypot(x - cx, y - cy) - r, cy - y)


def union(*shapes: Shape) -> Shape:
    return lambda x, y: min(shape(x, y) for shape in shapes)


EYES = union(oval(0.35, 0.40, 0.045, 0.068), oval(0.65, 0.40, 0.045, 0.068))
STROKE = 0.05

FACES: dict[str, tuple[tuple[int, int, int], Shape]] = {
    "very-good": ((0x3F, 0xA3, 0x4D), union(EYES, open_smile(0.5, 0.58, 0.22))),
    "good": ((0x9C, 0xCB, 0x5B), union(EYES, arc(0.5, 0.44, 0.24, 35, 145, STROKE))),
    "okay": ((0xF6, 0xC9, 0x45), union(EYES, segment(0.35, 0.68, 0.65, 0.68, STROKE))),
    "poor": ((0xF3, 0x9A, 0x3B), union(EYES, arc(0.5, 0.93, 0.26, 238, 302, STROKE))),
    "very-poor": (
        (0xE5, 0x53, 0x4B),
        union(
            EYES,
            arc(0.5, 0.86, 0.21, 213, 327, STROKE),
            segment(0.26, 0.31, 0.42, 0.26, 0.04),
            segment(0.58, 0.26, 0.74, 0.31, 0.04),
        ),
    ),
}


def coverage(distance: float) -> float:
    """Share of a pixel inside the shape, from its distance in pixels: smooth edges."""
    return max(0.0, min(1.0, 0.5 - distance))


def render(fill: tuple[int, int, int], features: Shape, size: int = SIZE) -> bytes:
    face, outline = disc(0.5, 0.5, 0.46), ring(0.5, 0.5, 0.46, 0.022)
    edge = tuple(int(c * 0.62) for c in fill)
    rows = bytearray()
    for py in range(size):
        rows.append(0)  # PNG filter type "none" for this row
        y = (py + 0.5) / size
        for px in range(size):
            x = (px + 0.5) / size
            alpha = coverage(face(x, y) * size)
            if alpha == 0 and coverage(outline(x, y) * size) == 0:
                rows += b"\0\0\0\0"
                continue
            colour = list(fill)
            for layer, amount in ((edge, coverage(outline(x, y) * size)),
                                  (INK, coverage(features(x, y) * size))):
                colour = [c + (layer_c - c) * amount for c, layer_c in zip(colour, layer,
                                                                            strict=True)]
            alpha = max(alpha, coverage(outline(x, y) * size))
            rows += bytes((*(round(c) for c in colour), round(alpha * 255)))
    return png(size, size, bytes(rows))


def png(width: int, height: int, raw_rows: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw_rows, 9)) + chunk(b"IEND", b""))


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, (fill, features) in FACES.items():
        (OUT / f"{name}.png").write_bytes(render(fill, features))
        print(f"wrote {OUT / name}.png")


if __name__ == "__main__":
    main()
