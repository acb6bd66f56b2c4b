"""Colours, sizes and asset paths of the touchscreen. Plain Python (no Kivy): tests check it.

Every text colour is used on its background with a WCAG contrast of at least 7:1 (AAA), for
patients with poor eyesight and for a desk in bright daylight. Sizes are given for the design
screen, a 10-inch 1280x800 panel (about 150 px per inch), and scale with the window: 20 mm is
about 118 px there, so no touch target is smaller than ``TOUCH_MIN``.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
FONTS_DIR = ASSETS / "fonts"
FONT_REGULAR = FONTS_DIR / "DejaVuSans.ttf"
FONT_BOLD = FONTS_DIR / "DejaVuSans-Bold.ttf"
FACES_DIR = ASSETS / "faces"

DESIGN_SIZE = (1280, 800)
PX_PER_MM = 150 / 25.4
TOUCH_MIN = 120  # design px: 20.3 mm on the 10-inch panel

PALETTE = {
    "paper": "#F6F4EF",      # the calm background of every screen
    "card": "#FFFFFF",
    "ink": "#1C1F23",
    "muted": "#3F444A",      # secondary text: still AAA on paper and on cards
    "line": "#D5D0C4",       # borders only, never text
    "primary": "#0B4F6C",    # check in / check out / send
    "go": "#1E5631",         # call in
    "danger": "#7A1F1F",     # no-show / cancel
    "quiet": "#E8E4DA",      # secondary buttons
    "on_dark": "#FFFFFF",
    "ok_bg": "#E4F2E5", "ok_ink": "#1B4D20", "ok_mark": "#2E7D32",
    "near_bg": "#FFF0C7", "near_ink": "#5A3A00", "near_mark": "#C77800",
    "over_bg": "#FBE4E1", "over_ink": "#7A1212", "over_mark": "#C62828",
    "info_bg": "#E0EEF4", "info_ink": "#0B3C52",
}

# (text, background) pairs the screens actually use; the contrast test walks this list.
TEXT_PAIRS = [
    ("ink", "paper"), ("ink", "card"), ("muted", "paper"), ("muted", "card"),
    ("on_dark", "primary"), ("on_dark", "go"), ("on_dark", "danger"),
    ("ink", "quiet"), ("muted", "quiet"),
    ("ok_ink", "ok_bg"), ("near_ink", "near_bg"), ("over_ink", "over_bg"),
    ("over_ink", "paper"), ("info_ink", "info_bg"), ("ink", "ok_bg"), ("ink", "near_bg"),
    ("ink", "over_bg"),
]

LEVEL_COLOURS = {
    "ok": ("ok_bg", "ok_ink", "ok_mark"),
    "near": ("near_bg", "near_ink", "near_mark"),
    "over": ("over_bg", "over_ink", "over_mark"),
}


def rgba(name: str, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """A palette colour as Kivy wants it."""
    value = PALETTE[name].lstrip("#")
    red, green, blue = (int(value[i:i + 2], 16) / 255 for i in (0, 2, 4))
    return (red, green, blue, alpha)


def relative_luminance(hex_colour: str) -> float:
    value = hex_colour.lstrip("#")
    channels = [int(value[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(foreground: str, background: str) -> float:
    """WCAG 2 contrast ratio, 1 to 21."""
    light, dark = sorted(
        (relative_luminance(foreground), relative_luminance(background)), reverse=True
    )
    return (light + 0.05) / (dark + 0.05)


def scale_for(width: float, height: float) -> float:
    """How much smaller (or larger) than the design panel this window is, keeping proportions."""
    return min(width / DESIGN_SIZE[0], height / DESIGN_SIZE[1])
