"""Argon2id with the smallest costs: the same algorithm the kiosk and the dashboard use, in a
fraction of the test time. Also importable from a ``python -c`` script run from the repository
root (``from tests.support.hashing import fast_hasher``)."""

from __future__ import annotations

from argon2 import PasswordHasher


def fast_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
