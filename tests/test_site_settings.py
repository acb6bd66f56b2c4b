"""The site's settings from the central store over the kiosk's own: unpinned keys follow the
site, pinned ones stay, values the kiosk cannot use are refused with a sentence."""

from kiosk.config import load_settings
from kiosk.site_settings import SITE_KEYS, site_part, with_site_settings

FETCHED = {
    "site": "North", "timezone": "Europe/London", "target_wait_min": 20.0, "rating_scale": 4,
    "followup_tags": ["waiting_time", "billing"], "idle_timeout_s": 30,
    "protocol_version": 1, "device_id": "d", "device_name": "desk-1",
    "server_time": "2026-11-23T09:00:00Z",
}


def test_keys_the_kiosk_leaves_open_follow_the_site(tmp_path):
    settings = load_settings(environ={}, data_dir=str(tmp_path))
    merged, refused = with_site_settings(settings, FETCHED)
    assert refused == []
    assert (merged.site, merged.timezone, merged.target_wait_min, merged.rating_scale) == (
        "North", "Europe/London", 20, 4)
    assert merged.followup_tags == ("waiting_time", "billing") and merged.idle_timeout_s == 30
    assert merged.data_dir == settings.data_dir and merged.pinned == settings.pinned


def test_keys_set_on_the_kiosk_are_pinned(tmp_path):
    config = tmp_path / "kiosk.toml"
    config.write_text('target_wait_min = 10\nfollowup_tags = ["other"]\n')
    settings = load_settings(config, environ={"KIOSK_RATING_SCALE": "5"},
                             data_dir=str(tmp_path))
    merged, _ = with_site_settings(settings, FETCHED)
    assert (merged.target_wait_min, merged.followup_tags, merged.rating_scale) == (
        10, ("other",), 5)
    assert merged.timezone == "Europe/London"  # not pinned: the site's


def test_a_value_the_kiosk_cannot_use_is_refused_and_the_rest_applied(tmp_path):
    settings = load_settings(environ={}, data_dir=str(tmp_path))
    lying = {**FETCHED, "rating_scale": 7, "target_wait_min": 12.5, "followup_tags": []}
    merged, refused = with_site_settings(settings, lying)
    assert merged.rating_scale == 5 and merged.target_wait_min == 15 and merged.site == "North"
    assert len(refused) == 3 and all("central store's config key" in r for r in refused)


def test_only_the_site_part_of_a_fetched_config_counts():
    assert set(site_part(FETCHED)) == {
        "site", "timezone", "target_wait_min", "rating_scale", "followup_tags", "idle_timeout_s"}


def test_a_list_or_a_table_where_a_value_belongs_is_refused_with_a_sentence(tmp_path):
    """A lying store's answer of the wrong shape (a list inside the languages, a table for a
    text) is refused key by key like any other value, never a TypeError that would drop the
    whole update."""
    settings = load_settings(environ={}, data_dir=str(tmp_path))
    for wrong in ([["en"]], {"en": 1}, [{"tag": "en"}]):
        lying = {**FETCHED, **{key: wrong for key in SITE_KEYS if key != "site"}}
        merged, refused = with_site_settings(settings, lying)
        assert len(refused) == len(SITE_KEYS) - 1, (wrong, refused)
        assert merged.site == "North" and merged.languages == settings.languages


def test_a_number_in_a_shape_int_cannot_read_is_refused_and_the_rest_applied(tmp_path):
    """"--5", "²" (a digit to str.isdigit, not to int) and 5,000 digits (past int()'s limit)
    were a ValueError that dropped the whole update, never asked for again."""
    settings = load_settings(environ={}, data_dir=str(tmp_path))
    for wrong in ("--5", "\u00b2", "9" * 5000, "1_0"):
        lying = {**FETCHED, "target_wait_min": wrong, "idle_timeout_s": wrong,
                 "rating_scale": wrong}
        merged, refused = with_site_settings(settings, lying)
        assert len(refused) == 3, (wrong, refused)
        assert merged.site == "North" and merged.timezone == "Europe/London"
