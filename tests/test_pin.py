"""The staff PIN: Argon2id at rest, a growing lockout that survives a restart, the idle lock."""

from dataclasses import replace

import pytest

from kiosk.errors import PinError, PinLocked
from kiosk.pin import PinLock
from kiosk.staff_session import StaffSession
from kiosk.store import Store


def test_the_pin_is_stored_as_an_argon2id_hash_only(pin, store):
    assert not pin.has_pin()
    pin.set_pin("4821")
    stored = store.get_meta("pin_hash")
    assert stored.startswith("$argon2id$") and "4821" not in stored
    assert pin.verify("4821") and not pin.verify("4822")


@pytest.mark.parametrize("bad", ["12", "123456789", "12a4", "", " 1234"])
def test_malformed_pins_are_refused(pin, bad):
    with pytest.raises(PinError, match="4 to 8 digits"):
        pin.set_pin(bad)


def test_changing_the_pin_needs_the_current_one(pin):
    pin.set_pin("4821")
    with pytest.raises(PinError, match="current PIN"):
        pin.set_pin("1111")
    pin.set_pin("1111", current_pin="4821")
    assert pin.verify("1111")


def test_verify_without_a_pin_is_a_clear_error(pin):
    with pytest.raises(PinError, match="No staff PIN"):
        pin.verify("1234")


def test_lockout_grows_and_survives_a_restart(pin, settings, clock, fast_hasher):
    pin.set_pin("4821")
    for _ in range(PinLock.FREE_ATTEMPTS - 1):
        assert not pin.verify("0000")
    assert pin.seconds_locked() == 0
    assert not pin.verify("0000")  # the fifth failure locks for 30 s
    assert pin.seconds_locked() == 30
    with pytest.raises(PinLocked, match="30 s"):
        pin.verify("4821")  # even the right PIN waits

    # A restart (a new store on the same file) does not forget the lockout.
    pin.store.close()
    reopened = PinLock(Store(settings.database_path, clock=clock), clock, hasher=fast_hasher)
    with pytest.raises(PinLocked):
        reopened.verify("4821")
    clock.advance(seconds=30)
    assert not reopened.verify("0000")  # the sixth failure doubles it
    assert reopened.seconds_locked() == 60
    clock.advance(seconds=60)
    assert reopened.verify("4821")
    assert reopened.failures() == 0 and reopened.seconds_locked() == 0
    reopened.store.close()


def test_lockout_is_capped(pin, clock):
    pin.set_pin("4821")
    for _ in range(20):
        clock.advance(seconds=PinLock.MAX_LOCK_S)
        pin.verify("0000")
    assert pin.seconds_locked() == PinLock.MAX_LOCK_S


def test_the_staff_screen_locks_itself_when_idle(pin, settings, clock):
    pin.set_pin("4821")
    session = StaffSession(pin, replace(settings, staff_lock_s=60), clock)
    assert not session.unlock("1234") and not session.unlocked
    assert session.unlock("4821")
    clock.advance(seconds=45)
    session.touch()
    clock.advance(seconds=45)
    assert session.tick()
    clock.advance(seconds=15)
    assert not session.tick()
