"""Validators for command-line values, shared by every ``main.py`` command that takes them.

The central store's commands (sync/central/cli.py) and ``install`` (kiosk/appliance) accept
the same kinds of numbers; one set of checks means one wording for the same mistake. Each is an
argparse ``type=``: a value argparse turns into "error: argument --port: ..." with exit 2.
"""

from __future__ import annotations

import argparse
import re


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def port_or_any(text: str) -> int:
    """A TCP port to listen on; 0 asks the system for any free one."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: use 1 to 65535, or 0 for any")
    return value


def port(text: str) -> int:
    """A fixed TCP port (a unit file or a link others type must name a real one, never 0)."""
    value = port_or_any(text)
    if value == 0:
        raise argparse.ArgumentTypeError("0 is not a port here: use 1 to 65535")
    return value


def at_least_zero(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative: use 0 or more")
    return value


def at_least_one(text: str) -> int:
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is too small: it must be 1 or more")
    return value


CONSOLE_NAME = re.compile(r"tty[0-9]+")


def console(text: str) -> str:
    """A Linux virtual console's name, as systemd's TTYPath and getty units use it."""
    if not CONSOLE_NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a console name: use tty followed by its number, e.g. tty1"
        )
    return text
