"""Which font draws a label, chosen from the script of its text; no Kivy until ``register``.

Kivy has no font fallback: a label draws every character in one font, and a character the
font lacks becomes a box. So each script gets a font that covers it (Latin, Polish and Turkish
letters in DejaVu Sans; Arabic and Chinese in Noto subsets made by ``assets/make_fonts.py``),
and a label picks its font from what it shows. A ticket code on the Arabic staff screen stays in
the Latin font and left to right; the Arabic words beside it are shaped and right to left.
"""

from __future__ import annotations

from kiosk.screens import theme

FAMILIES = {
    # family: (regular, bold)
    "kiosk-latin": (theme.FONT_REGULAR, theme.FONT_BOLD),
    "kiosk-arabic": (theme.FONTS_DIR / "NotoSansArabic-Kiosk-Regular.ttf",
                     theme.FONTS_DIR / "NotoSansArabic-Kiosk-Bold.ttf"),
    "kiosk-cjk": (theme.FONTS_DIR / "NotoSansSC-Kiosk-Regular.otf",
                  theme.FONTS_DIR / "NotoSansSC-Kiosk-Bold.otf"),
}


def script_of(text: str) -> str:
    """'arabic', 'cjk' or 'latin': the first non-Latin script found in ``text``."""
    for char in text:
        code = ord(char)
        if 0x0600 <= code <= 0x06FF or 0xFB50 <= code <= 0xFDFF or 0xFE70 <= code <= 0xFEFF:
            return "arabic"
        if 0x3000 <= code <= 0x9FFF or 0xFF00 <= code <= 0xFFEF:
            return "cjk"
    return "latin"


def family_for(text: str) -> str:
    return "kiosk-" + script_of(text)


def direction_for(text: str) -> str:
    """Arabic text is laid right to left by SDL_ttf's HarfBuzz; everything else left to right."""
    return "rtl" if script_of(text) == "arabic" else "ltr"


def script_tag_for(text: str) -> str:
    """The ISO 15924 tag HarfBuzz shapes with."""
    return {"arabic": "Arab", "cjk": "Hani"}.get(script_of(text), "Latn")


def register() -> None:
    """Make the families known to Kivy's text providers; Latin is also the default font."""
    from kivy.core.text import DEFAULT_FONT, LabelBase

    for family, (regular, bold) in FAMILIES.items():
        LabelBase.register(family, str(regular), fn_bold=str(bold))
    regular, bold = FAMILIES["kiosk-latin"]
    LabelBase.register(DEFAULT_FONT, str(regular), fn_bold=str(bold))
