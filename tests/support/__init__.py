"""Helpers shared across test folders: the live central server, wire-event builders, a clock
moved by hand (``clock``), a deadline poll (``waiting``) and a cheap Argon2 hasher (``hashing``)."""
