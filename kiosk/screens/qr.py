"""A QR code as a Kivy texture: segno makes the matrix, drawn here as squares of texels.

The texture is only as large as the code (41 modules with its quiet zone, 4 texels each) and is
scaled up by the GPU with the nearest-texel filter, so every module stays a sharp square at
any window size: a phone camera reads it across the desk.
"""

from __future__ import annotations

import segno
from kivy.graphics.texture import Texture

QUIET_ZONE = 4  # modules of white around the code, as the QR standard asks
# Texels per module: 4 keeps every row a multiple of 4 bytes, the row alignment OpenGL
# assumes when a texture is uploaded, whatever the code's size.
TEXELS = 4


def qr_modules(text: str) -> list[list[bool]]:
    """The code's dark modules, rows top to bottom, with the quiet zone around them."""
    matrix = segno.make(text, error="m", micro=False).matrix
    size = len(matrix) + 2 * QUIET_ZONE
    blank = [False] * size
    rows = [list(blank) for _ in range(QUIET_ZONE)]
    for row in matrix:
        rows.append([False] * QUIET_ZONE + [bool(m) for m in row] + [False] * QUIET_ZONE)
    rows += [list(blank) for _ in range(QUIET_ZONE)]
    return rows


def qr_texture(text: str) -> Texture:
    rows = qr_modules(text)
    size = len(rows) * TEXELS
    # Textures are filled from the bottom row up.
    pixels = bytes(
        0 if dark else 255
        for row in reversed(rows) for _ in range(TEXELS) for dark in row for _ in range(TEXELS)
    )
    texture = Texture.create(size=(size, size), colorfmt="luminance")
    texture.mag_filter = "nearest"
    texture.min_filter = "nearest"
    texture.blit_buffer(pixels, colorfmt="luminance", bufferfmt="ubyte")
    return texture
