"""Make the kiosk's Arabic and Chinese fonts: `python assets/make_fonts.py` (after
`python3 main.py translations`, whenever a catalog's words change).

Debian's Noto fonts (apt packages fonts-noto-core and fonts-noto-cjk, SIL Open Font License
1.1, assets/fonts/Noto-LICENSE.txt) cover every language of the kiosk, but the Chinese one alone
is 20 MB. fontTools' subsetter keeps only the glyphs the catalogs use, with digits, ASCII and the
few symbols the screens draw, so assets/ stays small. Arabic is kept in the joined (presentation)
forms that ``kiosk.i18n.shape_rtl`` produces as well as the plain letters. The symbols the
Arabic font lacks (a tick, the level marks) are merged in from Noto Sans Symbols 2.
tests/test_fonts.py fails when a catalog has a character its font lacks.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fontTools import subset  # noqa: E402
from fontTools.merge import Merger  # noqa: E402
from fontTools.ttLib import TTFont  # noqa: E402

from kiosk.screens.fonts import FAMILIES  # noqa: E402
from kiosk.shared.languages import LANGUAGES  # noqa: E402

NOTO = Path("/usr/share/fonts/truetype/noto")
NOTO_CJK = Path("/usr/share/fonts/opentype/noto")
CJK_SC_INDEX = 2  # in NotoSansCJK-*.ttc: JP, KR, SC, TC, HK...
ASCII = "".join(chr(code) for code in range(0x20, 0x7F))
# Drawn by the screens around translated words (tag tick, level marks, PIN dots, separators,
# the comment keyboard's shift and delete arrows, the Back and Next arrows).
SYMBOLS = ("\u2713\u25b2\u26a0\u25cf\u25cb\u00b7\u2026\u2013\u2212\u00ab\u00bb"
           "\u21e6\u21e7\u2190\u2192")


def catalog_text(tag: str) -> str:
    """Every character a catalog's translations (and the language's own name) can show."""
    from babel.messages.pofile import read_po

    from kiosk.i18n import catalog_path, shape_rtl
    from kiosk.shared.languages import catalog_name

    with open(catalog_path(tag), "rb") as handle:
        catalog = read_po(handle, locale=catalog_name(tag))
    texts = [message.string for message in catalog if message.id and message.string]
    texts.append(LANGUAGES[tag].native_name)
    if LANGUAGES[tag].rtl:  # each text joined on its own: its letters' forms depend on it
        texts += [shape_rtl(text) for text in texts]
    return "".join(texts)


def _subset(source: Path, characters: str, out: Path, font_number: int = 0) -> None:
    options = subset.Options()
    options.layout_features = ["*"]  # joining, ligatures (lam-alef), mark positioning
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.notdef_outline = True
    options.font_number = font_number
    font = subset.load_font(str(source), options)
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes={ord(c) for c in characters})
    subsetter.subset(font)
    font.save(str(out))


def make_arabic(weight: str, out: Path, text: str, tmp: Path) -> None:
    """Noto Sans Arabic, with what it lacks from Noto Sans Symbols 2 (the tick, the level
    marks) and Noto Sans (the middle dot, the ellipsis, '<'): all three are 1000 units/em."""
    parts = [tmp / f"arabic-{weight}.ttf"]
    _subset(NOTO / f"NotoSansArabic-{weight}.ttf", text + "0123456789 .,:!?%-()", parts[0])
    covered = set(TTFont(str(parts[0])).getBestCmap())
    for source in (NOTO / "NotoSansSymbols2-Regular.ttf", NOTO / f"NotoSans-{weight}.ttf"):
        source_cmap = TTFont(str(source)).getBestCmap()
        # ASCII too: a ticket code or a time inside an Arabic sentence is drawn by this font.
        wanted = "".join(sorted({c for c in SYMBOLS + ASCII + text if ord(c) not in covered
                                 and ord(c) in source_cmap and not c.isspace()}))
        if wanted:
            parts.append(tmp / f"{source.stem}-{weight}.ttf")
            _subset(source, wanted, parts[-1])
            covered |= {ord(c) for c in wanted}
    merged = Merger().merge([str(part) for part in parts])
    merged.save(str(out))
    fit_line_to_glyphs(out)


def fit_line_to_glyphs(path: Path) -> None:
    """Noto Sans Arabic's line is 2.1 em tall, made for stacks of marks the catalogs do not
    use; SDL_ttf sizes every label by it, so an Arabic title would need twice a Latin one's
    height. The subset's line is set to the tallest and deepest glyphs it keeps, plus a
    little: nothing is clipped, and Arabic lines are about as tall as Chinese ones."""
    font = TTFont(str(path))
    head, margin = font["head"], 40  # head's box was recalculated over the subset's glyphs
    ascent, descent = head.yMax + margin, head.yMin - margin
    font["hhea"].ascent, font["hhea"].descent, font["hhea"].lineGap = ascent, descent, 0
    os2 = font["OS/2"]
    os2.sTypoAscender, os2.sTypoDescender, os2.sTypoLineGap = ascent, descent, 0
    os2.usWinAscent, os2.usWinDescent = ascent, -descent
    font.save(str(path))


def make_cjk(weight: str, out: Path, text: str) -> None:
    _subset(NOTO_CJK / f"NotoSansCJK-{weight}.ttc", text + ASCII + SYMBOLS, out,
            font_number=CJK_SC_INDEX)


def main() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        arabic_text = catalog_text("ar")
        cjk_text = catalog_text("zh-Hans")
        for weight, index in (("Regular", 0), ("Bold", 1)):
            make_arabic(weight, FAMILIES["kiosk-arabic"][index], arabic_text, Path(tmp))
            make_cjk(weight, FAMILIES["kiosk-cjk"][index], cjk_text)
    for family in ("kiosk-arabic", "kiosk-cjk"):
        for path in FAMILIES[family]:
            print(f"{path.relative_to(ROOT)}: {path.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
