"""Helpers shared across test folders (the live central server, wire-event builders)."""
