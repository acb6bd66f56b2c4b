"""What the kiosk and the central store share, pure Python only: the wire format (``wire``),
time (``timeutil``) and the metric definitions (``metrics``).

Both sides import it; it imports neither (nor Kivy, SQLite or the network), so ``kiosk/``
never imports ``sync/`` and ``sync/`` imports ``kiosk/`` only for what a kiosk runs (its store,
its settings) and for this package.
"""
