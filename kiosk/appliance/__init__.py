"""The kiosk (or the central store) as an appliance: ``python3 main.py install``.

``plan`` decides what to write from the options and the target machine; ``units`` renders the
files (pure text, so tests and ``--dry-run`` see exactly what would be written); ``machine``
reads the target (its OS, systemd, cage); ``install`` writes and enables.
"""
