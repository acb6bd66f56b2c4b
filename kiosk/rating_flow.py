"""The patient's rating: face -> optional follow-up tags -> optional comment -> thanks -> idle,
misuse flagged. On a site asking the NHS Friends and Family Test the faces are its five graded
answers, and "Don't know" is a sixth answer with no score."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from kiosk.comment_box import CommentDraft
from kiosk.config import Settings
from kiosk.errors import ModelError
from kiosk.idle import IdleTimer
from kiosk.shared import metrics
from kiosk.shared.fft import FFT_SCALE
from kiosk.shared.timeutil import Clock, parse_rfc3339, utc_now
from kiosk.shared.wire import SURVEY_FFT
from kiosk.store import RecordedEvent, Store, StoreError

log = logging.getLogger(__name__)


class RatingFlow:
    """The patient's rating: face -> optional follow-up -> thanks -> idle.

    States: ``ask`` (faces shown), ``followup`` (tags shown), ``comment`` (the comment box,
    only where the site turned it on), ``thanks``, and ``done`` once a desk device should hand
    the screen back to staff. The rating is written once, when it is complete: at the face when
    nothing follows, else when the tags or the comment are sent, skipped, or abandoned (timed
    out, or the screen taken back; then without tags or comment). Until then the face is held
    on disk (``Store.hold_rating``), so not even a crash loses it; a comment is never held:
    it is written only when sent, and only redacted.
    """

    def __init__(self, store: Store, settings: Settings, clock: Clock = utc_now):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.state = "ask"
        self.visit_id: str | None = None
        self.score: int | None = None
        self.tags: list[str] = []
        self.dont_know = False
        # This patient's own choices; None / False is the site's default. ``start`` clears them,
        # so the next patient (after the thanks, or when the screen went idle) starts afresh.
        self.chosen_language: str | None = None
        self.large_text = False
        # The comment box's keyboard follows the patient's language (see choose_language).
        self.comment = CommentDraft(self.language)
        self._comment_text: str | None = None
        self.last_saved: RecordedEvent | None = None
        self._pending_at: datetime | None = None
        self._misuse = False
        self._held_id: str | None = None
        self.timer = IdleTimer(settings.idle_timeout_s, clock)

    @property
    def scale(self) -> int:
        """The faces shown: the FFT's five graded answers, else the site's rating scale."""
        return FFT_SCALE if self.settings.survey == "fft" else self.settings.rating_scale

    @property
    def always_on(self) -> bool:
        """A ratings tablet shows the faces forever; a desk hands back to staff when done."""
        return self.settings.role == "ratings"

    def start(self, visit_id: str | None = None, language: str | None = None) -> None:
        """Turn to the patient; ``visit_id`` links the rating to the visit just checked out;
        ``language`` is the patient's, if already known (None: the site's default).

        A face still waiting for its follow-up is saved first, without tags: it was pressed.
        """
        if self.state in ("followup", "comment"):
            self._save_abandoned()
        self.state = "ask"
        self.visit_id = visit_id
        self.score = None
        self.tags = []
        self.dont_know = False
        self.chosen_language = language
        self.large_text = False
        self.comment = CommentDraft(self.language)
        self._comment_text = None
        self._pending_at = None
        self.timer = IdleTimer(self.settings.idle_timeout_s, self.clock)

    @property
    def language(self) -> str:
        """The language the patient screens show: this patient's choice, else the site's."""
        if self.chosen_language in self.settings.languages:
            return self.chosen_language
        return self.settings.default_language

    @property
    def has_own_choices(self) -> bool:
        """This patient chose a language or larger text: the screen, going back to the site's
        defaults when idle, says when (it would otherwise change under a reader's eyes)."""
        return self.chosen_language is not None or self.large_text

    def choose_language(self, tag: str) -> str:
        """One tap on the language row; it holds until this patient's rating is over."""
        if self.state not in ("ask", "followup"):
            raise ModelError("The language is chosen on the rating screens.")
        if tag not in self.settings.languages:
            raise ModelError(f"'{tag}' is not one of this kiosk's languages.")
        self.chosen_language = tag
        self.comment.language = self.language
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
        scale = self.scale
        if self.state != "ask":
            raise ModelError("A face was already chosen.")
        if not 1 <= score <= scale:
            raise ModelError(f"score {score} is outside 1..{scale}")
        self.score = score
        self._pending_at = self.clock()
        self._misuse = self._is_misuse(self._pending_at)
        if self._wants_followup(score):
            self._hold_and_show("followup")
        elif self.settings.comments:
            self._hold_and_show("comment")
        else:
            self._save()
        return self.state

    def choose_dont_know(self) -> str:
        """The FFT's "Don't know": an answer with no score (no follow-up tags: there is no
        face to follow up); the comment box still follows where the site offers it."""
        if self.settings.survey != "fft":
            raise ModelError("\"Don't know\" is an answer of the Friends and Family Test only.")
        if self.state != "ask":
            raise ModelError("An answer was already chosen.")
        self.score, self.dont_know = None, True
        self._pending_at = self.clock()
        self._misuse = self._is_misuse(self._pending_at)
        if self.settings.comments:
            self._hold_and_show("comment")
        else:
            self._save()
        return self.state

    def set_language(self, language: str) -> None:
        """The patient chose ``language`` (a BCP 47 tag): the comment box's keyboard becomes
        that language's (``kiosk.comment_box.LAYOUTS``, English's where it has none), even
        with the box open; what is typed stays."""
        self.chosen_language = language or None
        self.comment.language = language or self.language

    def _hold_and_show(self, state: str) -> None:
        self._held_id = self.store.hold_rating(
            self._rating_data(), self.visit_id, self._pending_at
        )
        self.state = state
        self.timer = IdleTimer(self.settings.idle_timeout_s, self.clock)

    def press_key(self, key: str) -> str:
        """One key of the comment box's keyboard; returns the text typed so far."""
        if self.state != "comment":
            raise ModelError("The comment box is not open.")
        self.timer.touch()
        return self.comment.press(key)

    def send_comment(self) -> str:
        if self.state != "comment":
            raise ModelError("There is no comment to send.")
        self._comment_text = self.comment.cleaned()
        self._save()
        return self.state

    def skip_comment(self) -> str:
        if self.state != "comment":
            raise ModelError("There is no comment to skip.")
        self._comment_text = None
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
        self._after_followup()
        return self.state

    def skip_followup(self) -> str:
        if self.state != "followup":
            raise ModelError("There is no follow-up to skip.")
        self.tags = []
        self._after_followup()
        return self.state

    def _after_followup(self) -> None:
        if self.settings.comments:
            self.state = "comment"  # the face stays held; the tags are written with it
            self.timer = IdleTimer(self.settings.idle_timeout_s, self.clock)
        else:
            self._save()

    def remaining(self) -> float | None:
        """Seconds until the screen goes back to idle by itself; None when it stays."""
        if self.state == "ask" and self.always_on and not self.has_own_choices:
            return None  # a ratings tablet waits for the next patient as long as it takes
        if self.state == "done":
            return None
        return self.timer.remaining()

    def tick(self) -> str:
        """Called by the UI about once a second: moves on when a countdown has run out."""
        if not self.timer.expired() or self.state == "done":
            return self.state
        if self.state in ("followup", "comment"):
            self._save_abandoned()
        elif self.state == "thanks" or self.state == "ask":
            self._finish()
        return self.state

    def _wants_followup(self, score: int) -> bool:
        mode = self.settings.followup_for
        if mode == "never":
            return False
        return mode == "all" or metrics.is_negative(score, self.scale)

    def _is_misuse(self, at: datetime) -> bool:
        last = self.store.last_rating_at()
        if last is None:
            return False
        gap = (at - parse_rfc3339(last)).total_seconds()
        # A negative gap is the clock stepped back since the last rating, not a press within
        # seconds of it: counting it would set aside every rating until the clock caught up.
        return 0 <= gap < self.settings.misuse_interval_s

    def _save_abandoned(self) -> None:
        """The follow-up or the comment box was left (timed out, or the screen taken back): the
        face without tags (the tags already sent, if the comment box was left) or comment.
        If the disk cannot take it now, the face stays held on disk (recorded at the next
        start or before the next held face) and the screen moves on all the same: a full disk
        must not trap the patient's screen, and the face is already safe."""
        if self.state == "followup":
            self.tags = []
        self._comment_text = None
        try:
            self._save()
        except StoreError as error:
            log.warning("kiosk: a face stays held on disk for now: %s", error)
            self._held_id = None
            self.state = "thanks"
            self.timer = IdleTimer(self.settings.thanks_s, self.clock)

    def _rating_data(self) -> dict[str, Any]:
        data = {
            "score": self.score,
            "scale": self.scale,
            "tags": list(self.tags),
            "misuse": self._misuse,
        }
        # The language only where the patient had a choice: a kiosk offering one language
        # (every kiosk of a store from before the languages, which answers ["en"]) sends none,
        # so a kiosk upgraded before its central store keeps being accepted by it (an older
        # store refuses a field it does not know, and the kiosk would quarantine the rating).
        if len(self.settings.languages) > 1:
            data["lang"] = self.language
        if self.dont_know:
            data["dont_know"] = True
        if self.settings.survey == "fft":
            data["survey"] = SURVEY_FFT  # asked as the FFT: the FFT return counts only these
        if self._comment_text:
            data["comment"] = self._comment_text  # redacted by CommentDraft.cleaned
        return data

    def _save(self) -> None:
        self.last_saved = self.store.record(
            "rating.submitted",
            self._rating_data(),
            visit_id=self.visit_id,
            occurred_at=self._pending_at,
            event_id=self._held_id,
        )
        self._held_id = None
        self._comment_text = None
        self.comment = CommentDraft(self.language)
        self.state = "thanks"
        self.timer = IdleTimer(self.settings.thanks_s, self.clock)

    def _finish(self) -> None:
        if self.always_on:
            self.start()
        else:
            self.state = "done"
            self.visit_id = None
