"""What every dashboard route shares: the templates, the login session, CSRF, the filters.

Sessions are server-side (``accounts``); the cookie holds only a random id. It is HttpOnly
and SameSite=Lax always, and Secure when the request came over HTTPS, directly or through a
proxy that says so in X-Forwarded-Proto (trusting that header can only make the cookie
stricter). State-changing forms carry a CSRF token: the session's own once logged in, and
before login a double-submit token (a cookie and a hidden field that must match).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, select_autoescape

from kiosk.shared import metrics
from kiosk.shared.languages import BCP47_PATTERN, LANGUAGES
from kiosk.shared.timeutil import utc_now
from sync.central.access import View, page_site_missing
from sync.central.dashboard import accounts, language
from sync.central.sites import SiteConfig, list_sites
from sync.central.storage import CentralStore

SESSION_COOKIE = "dashboard_session"
LOGIN_CSRF_COOKIE = "dashboard_login_csrf"
DEFAULT_DAYS = 28
MAX_DAYS = 400

HERE = Path(__file__).parent
templates = Jinja2Templates(
    env=Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    ),
    context_processors=[language.page_context],
)
language.install(templates.env)


class LoginRequired(Exception):
    """The request needs a logged-in session; pages redirect, data endpoints answer 401."""


def number(value, digits: int = 1, unit: str = "") -> str:
    """A figure for people: one decimal, its unit, and a dash (not 0) when there is no data."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"
    return f"{text}{unit}"


templates.env.filters["num"] = number


def store_of(request: Request) -> CentralStore:
    return request.app.state.store


def is_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )


def current_session(request: Request) -> accounts.Session:
    """The request's logged-in session (read once per request: ``access.require`` reads it
    first and routes that need its CSRF token ask again)."""
    session = getattr(request.state, "session", None)
    if session is None:
        session = accounts.find_session(store_of(request).db, request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise LoginRequired()
    request.state.session = session
    return session


SessionDep = Annotated[accounts.Session, Depends(current_session)]


def check_csrf(expected: str | None, sent: str | None) -> None:
    if not accounts.same_secret(expected, sent):
        raise HTTPException(
            403,
            "This form has expired or did not come from this dashboard; reload the page and "
            "try again.",
        )


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def safe_next(target: str | None) -> str:
    """Only a path on this site: never redirect a login to somewhere else."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_redirect_url(request: Request) -> str:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?next=" + quote(path, safe="")


@dataclass(frozen=True)
class Filters:
    """The site and local-day range a page shows, from its query string."""

    sites: list[SiteConfig]
    all_sites: list[SiteConfig]
    site: str | None
    first: date
    last: date
    lang: str | None = None  # Today's rating figures of one language's ratings only

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def language_choices(self) -> list[tuple[str, str]]:
        """(tag, name in its own script) of the languages the shown sites offer, in order."""
        tags: list[str] = []
        for site in self.sites:
            tags += [tag for tag in site.languages if tag not in tags]
        return [(tag, LANGUAGES[tag].native_name if tag in LANGUAGES else tag) for tag in tags]

    @property
    def lang_name(self) -> str:
        """The chosen language, named in its own script ("Español")."""
        known = LANGUAGES.get(self.lang or "")
        return known.native_name if known else (self.lang or "")

    def query(self, **changes) -> str:
        values = {"site": self.site or "", "from": self.first, "to": self.last,
                  "lang": self.lang or "", **changes}
        return "&".join(f"{k}={quote(str(v))}" for k, v in values.items() if v not in ("", None))


# Days a page can show: each is turned into local midnights and the next day's, which must
# stay inside Python's years 1-9999 in every zone.
FIRST_DAY = date(1, 1, 2)
LAST_DAY = date(9999, 12, 30)


def parse_day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise HTTPException(
            422, f"The '{name}' date {text!r} is not a date like 2026-11-23; pick one again."
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise HTTPException(
            422, f"The '{name}' date {text!r} is outside the days this dashboard can show "
            f"({FIRST_DAY} to {LAST_DAY}); pick one again.",
        )
    return day


def build_filters(
    all_sites: list[SiteConfig],
    site: str | None,
    from_text: str | None,
    to_text: str | None,
    now: datetime,
    lang: str | None = None,
) -> Filters:
    """Defaults: all sites, the 28 local days ending today."""
    chosen = all_sites
    if site:
        chosen = [s for s in all_sites if s.name == site]
        if not chosen:
            raise page_site_missing(site)
    zone = chosen[0].timezone if chosen else "UTC"
    last = parse_day(to_text, "to") or metrics.local_today(now, zone)
    first = parse_day(from_text, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise HTTPException(422, "The 'from' date is after the 'to' date; swap them.")
    if (last - first).days + 1 > MAX_DAYS:
        raise HTTPException(
            422, f"The range is longer than {MAX_DAYS} days; choose a shorter one or export it."
        )
    if lang and not BCP47_PATTERN.fullmatch(lang):
        raise HTTPException(
            422, f"The language {lang[:40]!r} is not a language tag like es; pick one again.")
    return Filters(chosen, all_sites, site or None, first, last, lang or None)


def filters(request: Request, principal: View) -> Filters:
    """The page's filters over the sites the login may see: the others are in no picker, no
    "All sites" total, and naming one answers as a site that does not exist."""
    params = request.query_params
    return build_filters(
        [s for s in list_sites(store_of(request).db) if principal.scope.allows(s.name)],
        params.get("site"),
        params.get("from"),
        params.get("to"),
        utc_now(),
        params.get("lang"),
    )


FiltersDep = Annotated[Filters, Depends(filters)]
