"""What the kiosk knows about moving its data off the device, as one typed value.

The local store fills in what is on disk (backlog, refused events, the last sync); the sync
loop adds what only it knows (is it running, how many passes failed, a refused token, the
site's name). The staff screen's sync corner reads this one shape whichever of them made it.
It lives on the kiosk side because the kiosk must never import the sync package; the sync
package imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class SyncStatus:
    """Read without touching the network; every field has the value of "nothing known yet"."""

    backlog: int = 0  # events recorded here and not yet accepted by the central store
    rejected: int = 0  # events the central store refused: kept here, shown, never resent
    last_synced_at: datetime | None = None
    configured: bool = False  # a central store is configured (else the kiosk records locally)
    running: bool = False
    consecutive_failures: int = 0
    last_error: str | None = None
    token_refused: bool = False
    site_name: str | None = None

    @property
    def trouble(self) -> bool:
        """Something a person should look at: refused events, a refused token, an outage."""
        return bool(self.rejected or self.token_refused or self.consecutive_failures)
