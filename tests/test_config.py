"""Settings: defaults, file + environment, and a clear sentence for every bad value."""

import pytest

from kiosk.config import ConfigError, load_settings, lonely_token_warning


def write(tmp_path, text: str):
    path = tmp_path / "kiosk.toml"
    path.write_text(text)
    return path


def test_defaults(tmp_path):
    settings = load_settings(environ={})
    assert settings.role == "desk"
    assert settings.target_wait_min == 15
    assert settings.rating_scale == 5
    assert settings.misuse_interval_s == 5.0
    assert settings.central_url is None
    assert len(settings.followup_tags) == 6
    assert str(settings.data_dir)  # a platformdirs folder


def test_file_then_environment_wins(tmp_path):
    path = write(tmp_path, 'role = "ratings"\nrating_scale = 4\ntimezone = "Europe/London"\n'
                           'followup_tags = ["waiting_time", "billing"]\n')
    settings = load_settings(path, environ={"KIOSK_RATING_SCALE": "5", "KIOSK_SITE": "North"})
    assert settings.role == "ratings"
    assert settings.rating_scale == 5
    assert settings.site == "North"
    assert settings.followup_tags == ("waiting_time", "billing")
    assert settings.timezone == "Europe/London"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('role = "boss"', ["'role'", "'boss'", "'desk', 'ratings', 'staff'"]),
        ("rating_scale = 3", ["'rating_scale'", "3", "5, 4"]),
        ("target_wait_min = 0", ["'target_wait_min'", "from 1 to 240"]),
        ('target_wait_min = "soon"', ["'target_wait_min'", "'soon'"]),
        ('timezone = "Mars/Olympus"', ["'timezone'", "IANA"]),
        ('followup_tags = ["Waiting Time"]', ["'followup_tags'", "lower-case"]),
        ('central_url = "ftp://x"', ["'central_url'", "http"]),
        ("misuse_interval_s = -1", ["'misuse_interval_s'"]),
        ('ticket_prefix = "a1"', ["'ticket_prefix'", "capital"]),
        ("idle_timeout_s = true", ["'idle_timeout_s'"]),
    ],
)
def test_bad_values_name_the_key_the_value_and_the_rule(tmp_path, text, words):
    with pytest.raises(ConfigError) as raised:
        load_settings(write(tmp_path, text), environ={})
    for word in words:
        assert word in str(raised.value)


def test_bad_environment_value_is_named_too():
    with pytest.raises(ConfigError, match="'role' = 'kiosk'"):
        load_settings(environ={"KIOSK_ROLE": "kiosk"})


def test_unknown_key_and_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown key.*target_wait"):
        load_settings(write(tmp_path, "target_wait = 15"), environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "role = desk"), environ={})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_a_file_not_in_utf8_is_a_sentence(tmp_path):
    # Saved by an editor as Latin-1 (a Windows default) or as UTF-16: TOML is UTF-8.
    for encoding in ("latin-1", "utf-16"):
        path = tmp_path / f"{encoding}.toml"
        path.write_bytes('site = "Clínica San José"\n'.encode(encoding))
        with pytest.raises(ConfigError, match=r"is not UTF-8 \(byte \d+\): save it as UTF-8"):
            load_settings(path, environ={})


def test_a_list_where_one_language_belongs_is_a_sentence(tmp_path):
    with pytest.raises(ConfigError, match=r"'staff_language' = \['es'\] is not allowed"):
        load_settings(write(tmp_path, 'staff_language = ["es"]'), environ={})
    with pytest.raises(ConfigError, match=r"'languages' = \[\['en'\]\] is not allowed"):
        load_settings(write(tmp_path, 'languages = [["en"]]'), environ={})


def test_a_ca_file_that_is_not_there_or_not_a_file_is_a_sentence(tmp_path):
    for where in (tmp_path / "typo.pem", tmp_path):
        with pytest.raises(ConfigError, match=r"'ca_file' = .* no such file; give the path of "
                                              r"the CA bundle"):
            load_settings(write(tmp_path, f'ca_file = "{where}"'), environ={})
    with pytest.raises(ConfigError, match="'ca_file'"):
        load_settings(environ={"KIOSK_CA_FILE": str(tmp_path / "typo.pem")})
    real = tmp_path / "ca.pem"
    real.write_text("-----BEGIN CERTIFICATE-----\n")
    assert load_settings(environ={"KIOSK_CA_FILE": str(real)}).ca_file == str(real)
    assert load_settings(environ={"KIOSK_CA_FILE": ""}).ca_file is None


def test_a_ca_file_the_kiosk_user_cannot_read_is_a_sentence(tmp_path, monkeypatch):
    # Root reads every file, and the tests run as root: os.access answers as for a kiosk's
    # own system user given a root-only (0600) bundle.
    real = tmp_path / "ca.pem"
    real.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setattr("kiosk.config.os.access", lambda path, mode: False)
    with pytest.raises(ConfigError, match="'ca_file' = .* cannot be read by this user"):
        load_settings(environ={"KIOSK_CA_FILE": str(real)})


def test_a_token_alone_is_a_warning_and_an_address_alone_is_where_to_enrol(tmp_path):
    # A token without an address was accepted before enrolment by code existed: still is.
    lonely = load_settings(write(tmp_path, 'central_token = "dev_x"'), environ={})
    assert lonely.central_token == "dev_x" and lonely.central_url is None
    assert "central_url" in lonely_token_warning(lonely)
    # An address without a token: the kiosk asks that store for an enrolment code.
    alone = load_settings(write(tmp_path, 'central_url = "http://127.0.0.1:8700"'), environ={})
    assert alone.central_url == "http://127.0.0.1:8700" and alone.central_token is None
    settings = load_settings(
        write(tmp_path, 'central_url = "http://127.0.0.1:8700/"\ncentral_token = "dev_x"'),
        environ={},
    )
    assert settings.central_url == "http://127.0.0.1:8700"
    assert lonely_token_warning(settings) is None
