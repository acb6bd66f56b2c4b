"""At start: enrolled, to enrol, or copied from another kiosk's disk. Real files in a temp
folder, a real kiosk store; the machine's identity is given, as a cloned machine would have it."""

from __future__ import annotations

import os
import stat

import pytest

from kiosk import enrolment_file
from kiosk.config import load_settings
from kiosk.enrolment import Enrolled
from kiosk.enrolment_file import EnrolmentFileError
from kiosk.enrolment_start import keep, plan_start
from kiosk.identity import is_other_machine, machine_identity
from kiosk.store import Store

HERE = {"machine_id": "1" * 64, "hardware": "2" * 64}
CLONE = {"machine_id": "1" * 64, "hardware": "3" * 64}  # the image's machine id, new board
ENROLLED = Enrolled(central_url="https://store.example", token="dev_secret-token",
                    device_id="d-1", site="North", device_name="desk-2", role="ratings")


@pytest.fixture
def settings(tmp_path):
    return load_settings(environ={}, data_dir=str(tmp_path / "kiosk"))


def test_the_token_is_kept_readable_by_the_kiosk_alone_and_never_printed(settings):
    path = keep(settings, ENROLLED, HERE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    kept = enrolment_file.load(settings.data_dir)
    assert kept.token == "dev_secret-token" and kept.machine == HERE
    assert "dev_secret-token" not in repr(kept)


def test_an_enrolled_kiosk_starts_with_the_stores_address_token_and_choices(settings):
    keep(settings, ENROLLED, HERE)
    plan = plan_start(settings, can_enrol=True, machine=HERE)
    assert plan.enrolment is None
    assert plan.settings.central_token == "dev_secret-token"
    assert (plan.settings.site, plan.settings.device_name, plan.settings.role) == (
        "North", "desk-2", "ratings")


def test_the_kiosks_own_config_pins_what_it_sets(tmp_path):
    pinned = load_settings(environ={}, data_dir=str(tmp_path), role="desk")
    keep(pinned, ENROLLED, HERE)
    assert plan_start(pinned, can_enrol=True, machine=HERE).settings.role == "desk"


def test_no_token_means_the_enrolment_screen_at_the_configured_address(tmp_path):
    settings = load_settings(environ={}, data_dir=str(tmp_path),
                             central_url="https://store.example")
    plan = plan_start(settings, can_enrol=True, machine=HERE)
    assert plan.enrolment.stage == "asking"  # the address came from the config
    assert plan.enrolment.url == "https://store.example"


def test_a_config_token_or_no_way_to_enrol_changes_nothing(tmp_path):
    configured = load_settings(environ={}, data_dir=str(tmp_path),
                               central_url="https://store.example", central_token="dev_x")
    assert plan_start(configured, can_enrol=True, machine=HERE).enrolment is None
    local = load_settings(environ={}, data_dir=str(tmp_path))
    assert plan_start(local, can_enrol=False, machine=HERE).enrolment is None


def test_a_copied_disk_sets_the_other_kiosks_data_aside_and_asks_to_enrol(settings):
    keep(settings, ENROLLED, HERE)
    store = Store(settings.database_path)
    store.record("rating.submitted", {"score": 5, "scale": 5, "tags": [], "misuse": False})
    store.close()
    sent = []

    def drain(store, url, token):
        sent.append((url, token, store.sync_status().backlog))
        return 1  # the store could not be reached: the event stays unsent

    plan = plan_start(settings, can_enrol=True, machine=CLONE, drain=drain)
    # What it recorded was offered to the store under the other kiosk's token first.
    assert sent == [("https://store.example", "dev_secret-token", 1)]
    assert plan.settings.central_token is None
    assert enrolment_file.load(settings.data_dir) is None  # the copied token is forgotten
    assert plan.copied_aside.name.startswith("kiosk.sqlite.copied-")
    assert not settings.database_path.exists()
    kept = Store(plan.copied_aside)  # the unsent event is still there, for IT
    assert kept.sync_status().backlog == 1
    kept.close()
    assert "comes from another kiosk" in plan.enrolment.reason
    assert ("1 event recorded before could not be sent yet; it is kept in kiosk.sqlite.copied-"
            in plan.enrolment.reason)
    # The token it was recorded under is kept beside it (0600), to send it later.
    beside = plan.copied_aside.with_name(plan.copied_aside.name + ".enrolment.json")
    assert stat.S_IMODE(os.stat(beside).st_mode) == 0o600
    assert plan.enrolment.url == "https://store.example"


def test_a_damaged_enrolment_file_is_a_sentence(settings):
    settings.data_dir.mkdir(parents=True)
    enrolment_file.path_in(settings.data_dir).write_text("{not json")
    with pytest.raises(EnrolmentFileError, match="delete it to enrol this kiosk again"):
        plan_start(settings, can_enrol=True, machine=HERE)


def test_the_machine_is_told_apart_by_any_mark_readable_both_times(tmp_path):
    machine_id = tmp_path / "machine-id"
    serial = tmp_path / "serial-number"
    machine_id.write_text("0123456789abcdef\n")
    serial.write_text("10000000abcdef01\x00")
    first = machine_identity([machine_id], [serial])
    assert set(first) == {"machine_id", "hardware"}
    assert "0123456789abcdef" not in repr(first)  # only digests leave the file
    serial.write_text("10000000ffffffff\x00")
    assert is_other_machine(first, machine_identity([machine_id], [serial]))
    # A mark that cannot be read now (a service's permissions) is no evidence either way.
    assert not is_other_machine(first, machine_identity([machine_id], [tmp_path / "none"]))
    machine_id.write_text("fedcba9876543210\n")
    assert is_other_machine(first, machine_identity([machine_id], [tmp_path / "none"]))
    # Nothing readable at all: the network card or the host name stands in.
    assert set(machine_identity([tmp_path / "none"], [tmp_path / "none"])) == {"fallback"}


def test_this_machine_has_an_identity():
    assert machine_identity()
    assert not is_other_machine(machine_identity(), machine_identity())


def test_an_existing_kiosk_with_neither_address_nor_token_records_locally_as_before(settings):
    Store(settings.database_path).close()  # a kiosk that has been recording locally
    plan = plan_start(settings, can_enrol=True, machine=HERE)
    assert plan.enrolment is None and plan.settings.central_url is None
    # A new kiosk (no database yet) is offered the enrolment screen, which can also say no.
    settings.database_path.unlink()
    assert plan_start(settings, can_enrol=True, machine=HERE).enrolment.stage == "address"


def test_an_existing_kiosk_with_an_address_but_no_token_is_asked_to_enrol(tmp_path):
    settings = load_settings(environ={}, data_dir=str(tmp_path),
                             central_url="https://store.example")
    Store(settings.database_path).close()
    assert plan_start(settings, can_enrol=True, machine=HERE).enrolment.stage == "asking"


def test_a_lonely_config_token_records_locally_without_the_enrolment_screen(tmp_path):
    settings = load_settings(environ={}, data_dir=str(tmp_path), central_token="dev_x")
    plan = plan_start(settings, can_enrol=True, machine=HERE)
    assert plan.enrolment is None and plan.settings.central_url is None


def test_an_address_pinned_in_the_config_wins_over_the_enrolments(tmp_path):
    pinned = load_settings(environ={}, data_dir=str(tmp_path),
                           central_url="https://proxy.example")
    keep(pinned, ENROLLED, HERE)
    plan = plan_start(pinned, can_enrol=True, machine=HERE)
    assert plan.settings.central_url == "https://proxy.example"
    assert plan.settings.central_token == ENROLLED.token


def test_a_stale_new_file_with_other_bits_never_holds_the_token_readable(settings):
    settings.data_dir.mkdir(parents=True)
    stale = enrolment_file.path_in(settings.data_dir).with_name("enrolment.json.new")
    stale.write_text("left by a power cut")
    stale.chmod(0o644)
    path = keep(settings, ENROLLED, HERE)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and not stale.exists()


def test_secrets_stay_out_of_reprs():
    from kiosk.enrolment import Request
    from sync.central.enrolment import IssuedCode, PollAnswer

    assert "dev_secret-token" not in repr(ENROLLED)
    assert "s3cret" not in repr(Request("token", "https://store.example", "s3cret"))
    assert "s3cret" not in repr(IssuedCode("s3cret", "BCDF-GHJK", 900, 5))
    assert "s3cret" not in repr(PollAnswer(None, "Enrolled.", token="s3cret"))
