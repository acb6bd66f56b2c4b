"""Reading patients' comments is the one permission given per login rather than by role: a
manager or an admin without it reads none, a viewer with it reads them, and a reporting token
never can. It goes through the same ``Principal.can`` as every other check."""

from __future__ import annotations

import pytest

from sync.central.dashboard.accounts import User
from sync.central.permissions import EVERY_SITE, GRANTS, ROLES, Principal


@pytest.mark.parametrize("role", ROLES)
def test_the_comments_permission_follows_the_flag_not_the_role(role):
    without = User("u1", "north-1", role, EVERY_SITE)
    given = User("u2", "north-2", role, EVERY_SITE, reads_comments=True)
    assert not without.principal.can("read_comments")
    assert given.principal.can("read_comments")


def test_a_reporting_token_never_reads_comments():
    token = Principal("token", "t1", "bi", "admin", EVERY_SITE)
    assert not token.can("read_comments")
    assert set(GRANTS) == {"read_comments"}


def test_an_unknown_action_is_still_an_error():
    with pytest.raises(KeyError):
        User("u1", "north-1", "admin", EVERY_SITE).principal.can("read_everything")
