"""The touchscreen's palette: every text colour on its background at WCAG AAA (7:1) or better."""

from __future__ import annotations

import pytest

from kiosk.screens import theme


def test_contrast_formula_matches_wcag_reference_values():
    assert theme.contrast("#000000", "#FFFFFF") == pytest.approx(21)
    assert theme.contrast("#777777", "#FFFFFF") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize(("text", "background"), theme.TEXT_PAIRS)
def test_text_contrast_is_at_least_7_to_1(text, background):
    ratio = theme.contrast(theme.PALETTE[text], theme.PALETTE[background])
    assert ratio >= 7, f"{text} on {background} is only {ratio:.2f}:1"


def test_touch_minimum_is_20_mm_on_the_design_panel():
    assert theme.TOUCH_MIN / theme.PX_PER_MM >= 20


def test_sizes_scale_with_the_window():
    assert theme.scale_for(1280, 800) == 1
    assert theme.scale_for(800, 480) == 0.6
