"""Who may do what, and which sites they see: the one table of roles and the one scope rule.

Every route declares one action from ``ACTIONS`` (``sync.central.access.require``); a role
either has it or not, here and nowhere else. Hiding a link on a page is a courtesy on top of
this, never the check itself. A login or a reporting token also carries a site scope: its
sites, or every site. A site outside the scope does not exist for it: not in a picker, not in
"All sites" totals, and a request naming one answers exactly as a missing site does.

Per-login permissions (``GRANTS``: reading patients' comments) are the one exception to
"the role decides": a flag of the login that adds one permission to what its role gives,
checked by the same :meth:`Principal.can`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

ROLES = ("admin", "manager", "viewer")
DEFAULT_ROLE = "viewer"

# Each action, with what it covers (the README's permission table is made from this).
ACTIONS = {
    "view": "every page, figure, live queue and CSV export of the sites in scope",
    "own_account": "change one's own password, set up or remove one's own TOTP",
    "acknowledge_alerts": "acknowledge, close and resend alerts of the sites in scope",
    "edit_site_settings": "change alert rules of the sites in scope",
    "manage_alert_channels": "add, remove and test alert channels (they reach every site)",
    "enrol_kiosks": "approve or deny a new kiosk's enrolment code, for a site in scope",
    "manage_people": "add people, change their role and sites, disable, reset",
    "read_audit": "the Audit page, its CSV and GET /api/v1/audit",
}

# Permissions given to one login, whatever its role, and never to a reporting token: a
# patient's free text is read only by those a manager names (``user add --can-read-comments``).
GRANTS = {
    "read_comments": "read patients' comments on the FFT page",
}

PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(ACTIONS),
    "manager": frozenset({"view", "own_account", "acknowledge_alerts", "edit_site_settings",
                          "enrol_kiosks"}),
    "viewer": frozenset({"view", "own_account"}),
}

# Roles that see every site whatever their scope says: an admin manages the whole group.
ALL_SITES_ROLES = frozenset({"admin"})


class InvalidRole(ValueError):
    """A role that does not exist; the message lists the roles."""


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidRole(f"role {role!r} must be one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class Scope:
    """The sites a principal sees: ``None`` is every site (now and to come)."""

    sites: frozenset[str] | None = None

    @property
    def everything(self) -> bool:
        return self.sites is None

    def allows(self, site: str | None) -> bool:
        return self.sites is None or site in self.sites

    def visible(self, names: Iterable[str]) -> list[str]:
        return [name for name in names if self.allows(name)]

    def to_column(self) -> str | None:
        """The stored form: NULL for every site, else a JSON list (sorted)."""
        return None if self.sites is None else json.dumps(sorted(self.sites))

    @classmethod
    def from_column(cls, value: str | None) -> Scope:
        return cls(None if value is None else frozenset(json.loads(value)))

    def describe(self) -> str:
        return "all sites" if self.sites is None else ", ".join(sorted(self.sites))


EVERY_SITE = Scope(None)


def parse_sites(text: str | None) -> Scope:
    """``--sites North,South`` as a scope; a left-out flag (None) or the word ``all`` is
    every site. An empty or blank value is refused rather than read as every site: it is
    what an unset shell variable gives (``--sites "$SITES"``), and widening a login's view
    on a typo is the one mistake a scope must not make."""
    if text is None or text.strip().lower() == "all":
        return EVERY_SITE
    names = frozenset(part.strip() for part in text.split(",") if part.strip())
    if not names:
        raise ValueError(
            f"--sites {text!r} names no site: give the sites separated by commas "
            "(--sites North,South), the word all for every site, or leave the flag out"
        )
    return Scope(names)


@dataclass(frozen=True)
class Principal:
    """Who is asking: a dashboard login or a reporting token, its role and its scope."""

    kind: str  # "user" or "token"
    id: str
    name: str
    role: str
    scope: Scope
    grants: frozenset[str] = frozenset()  # of GRANTS: given to this login by name

    def can(self, action: str) -> bool:
        if action in GRANTS:
            return action in self.grants
        if action not in ACTIONS:
            raise KeyError(f"unknown action {action!r}")
        return action in PERMISSIONS.get(self.role, frozenset())

    @property
    def actor(self) -> str:
        """How the audit trail names this principal."""
        return f"{self.kind}:{self.name}"


def effective_scope(role: str, scope: Scope) -> Scope:
    return EVERY_SITE if role in ALL_SITES_ROLES else scope


def permission_table() -> list[tuple[str, str, dict[str, bool]]]:
    """(action, what it covers, {role: allowed}) rows, for the README and the tests."""
    return [
        (action, text, {role: action in PERMISSIONS[role] for role in ROLES})
        for action, text in ACTIONS.items()
    ]
