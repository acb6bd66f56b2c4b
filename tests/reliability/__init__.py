"""Reliability and security scenarios (issue 6): real processes, real signals, real sockets.

Each scenario writes its figures with ``figures.record``; ``python -m tests.reliability.report``
turns the last run's figures into the README's "Reliability" table.
"""
