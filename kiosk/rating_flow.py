"""The patient's rating: face -> optional follow-up tags -> thanks -> idle, misuse flagged."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from kiosk.config import Settings
from kiosk.errors import ModelError
from kiosk.idle import IdleTimer
from kiosk.shared import metrics
from kiosk.shared.timeutil import Clock, parse_rfc3339, utc_now
from kiosk.store import RecordedEvent, Store, StoreError

log = logging.getLogger(__name__)


class RatingFlow:
    """The patient's rating: face -> optional follow-up -> thanks -> idle.

    States: ``ask`` (faces shown), ``followup`` (tags shown), ``thanks``, and ``done`` once a
    desk device should hand the screen back to staff. The rating is written once, when it is
    complete: at the face when no follow-up is asked, else when the tags are sent, skipped, or
    the follow-up is abandoned (timed out, or the screen taken back; then without tags). Until
    then the face is held on disk (``Store.hold_rating``), so not even a crash loses it.
    """

    def __init__(self, store: Store, settings: Settings, clock: Clock = utc_now):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.state = "ask"
        self.visit_id: str | None = None
        self.score: int | None = None
        self.tags: list[str] = []
        # This patient's own choices; None / False is the site's default. ``start`` clears them,
        # so the next patient (after the thanks, or when the screen went idle) starts afresh.
        self.chosen_language: str | None = None
        self.large_text = False
        self.last_saved: RecordedEvent | None = None
        self._pending_at: datetime | None = None
        self._misuse = False
        self._held_id: str | None = None
        self.timer = IdleTimer(settings.idle_timeout_s, clock)

    @property
    def always_on(self) -> bool:
        """A ratings tablet shows the faces forever; a desk hands back to staff when done."""
        return self.settings.role == "ratings"

    def start(self, visit_id: str | None = None) -> None:
        """Turn to the patient; ``visit_id`` links the rating to the visit just checked out.

        A face still waiting for its follow-up is saved first, without tags: it was pressed.
        """
        if self.state == "followup":
            self._save_abandoned()
        self.state = "ask"
        self.visit_id = visit_id
        self.score = None
        self.tags = []
        self.chosen_language = None
        self.large_text = False
        self._pending_at = None
        self.timer = IdleTimer(self.settings.idle_timeout_s, self.clock)

    @property
    def language(self) -> str:
        """The language the patient screens show: this patient's choice, else the site's."""
        if self.chosen_language in self.settings.languages:
            return self.chosen_language
        return self.settings.default_language

    def choose_language(self, tag: str) -> str:
        """One tap on the language row; it holds until this patient's rating is over."""
        if self.state not in ("ask", "followup"):
            raise ModelError("The language is chosen on the rating screens.")
        if tag not in self.settings.languages:
            raise ModelError(f"'{tag}' is not one of this kiosk's languages.")
        self.chosen_language = tag
        self.timer.touch()
        return tag

    def toggle_large_text(self) -> bool:
        if self.state not in ("ask", "followup"):
            raise ModelError("Larger text is chosen on the rating screens.")
        self.large_text = not self.large_text
        self.timer.touch()
        return self.large_text

    def choose(self, score: int) -> str:
        """A face was pressed; returns the next state."""
        scale = self.settings.rating_scale
        if self.state != "ask":
            raise ModelError("A face was already chosen.")
        if not 1 <= score <= scale:
            raise ModelError(f"score {score} is outside 1..{scale}")
        self.score = score
        self._pending_at = self.clock()
        self._misuse = self._is_misuse(self._pending_at)
        if self._wants_followup(score):
            self._held_id = self.store.hold_rating(
                self._rating_data(), self.visit_id, self._pending_at
            )
            self.state = "followup"
            self.timer = IdleTimer(self.settings.idle_timeout_s, self.clock)
        else:
            self._save()
        return self.state

    def toggle_tag(self, tag: str) -> list[str]:
        if self.state != "followup":
            raise ModelError("Follow-up tags come after a face.")
        if tag not in self.settings.followup_tags:
            raise ModelError(f"'{tag}' is not one of this kiosk's follow-up tags.")
        if tag in self.tags:
            self.tags.remove(tag)
        else:
            self.tags.append(tag)
        self.timer.touch()
        return list(self.tags)

    def send_followup(self) -> str:
        if self.state != "followup":
            raise ModelError("There is no follow-up to send.")
        self._save()
        return self.state

    def skip_followup(self) -> str:
        if self.state != "followup":
            raise ModelError("There is no follow-up to skip.")
        self.tags = []
        self._save()
        return self.state

    def remaining(self) -> float | None:
        """Seconds until the screen goes back to idle by itself; None when it stays."""
        if self.state == "ask" and self.always_on:
            return None
        if self.state == "done":
            return None
        return self.timer.remaining()

    def tick(self) -> str:
        """Called by the UI about once a second: moves on when a countdown has run out."""
        if not self.timer.expired() or self.state == "done":
            return self.state
        if self.state == "followup":
            self._save_abandoned()
        elif self.state == "thanks" or self.state == "ask":
            self._finish()
        return self.state

    def _wants_followup(self, score: int) -> bool:
        mode = self.settings.followup_for
        if mode == "never":
            return False
        return mode == "all" or metrics.is_negative(score, self.settings.rating_scale)

    def _is_misuse(self, at: datetime) -> bool:
        last = self.store.last_rating_at()
        if last is None:
            return False
        return (at - parse_rfc3339(last)).total_seconds() < self.settings.misuse_interval_s

    def _save_abandoned(self) -> None:
        """The follow-up was left (timed out, or the screen taken back): the face without tags.
        If the disk cannot take it now, the face stays held on disk (recorded at the next
        start or before the next held face) and the screen moves on all the same: a full disk
        must not trap the patient's screen, and the face is already safe."""
        self.tags = []
        try:
            self._save()
        except StoreError as error:
            log.warning("kiosk: a face stays held on disk for now: %s", error)
            self._held_id = None
            self.state = "thanks"
            self.timer = IdleTimer(self.settings.thanks_s, self.clock)

    def _rating_data(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "scale": self.settings.rating_scale,
            "tags": list(self.tags),
            "misuse": self._misuse,
            "lang": self.language,
        }

    def _save(self) -> None:
        self.last_saved = self.store.record(
            "rating.submitted",
            self._rating_data(),
            visit_id=self.visit_id,
            occurred_at=self._pending_at,
            event_id=self._held_id,
        )
        self._held_id = None
        self.state = "thanks"
        self.timer = IdleTimer(self.settings.thanks_s, self.clock)

    def _finish(self) -> None:
        if self.always_on:
            self.start()
        else:
            self.state = "done"
            self.visit_id = None
