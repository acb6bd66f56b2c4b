"""Alerts: rules per site, evaluated as ratings arrive and on a schedule, alerts with a life
(open -> notified -> acknowledged -> closed), delivered to webhooks and e-mail through an outbox.

    schema.py      the tables (a numbered migration of the central schema)
    hours.py       a site's opening hours, read in the site's zone
    rules.py       the rules, their defaults and their per-site settings
    engine.py      what each rule finds at an instant (pure reads, ``now`` passed in)
    lifecycle.py   opening, deduplicating, clearing, acknowledging and closing alerts
    channels.py    webhook and e-mail channels: settings, the message, one send
    outbox.py      deliveries per alert and channel, retried with backoff, at most once
    scheduler.py   the threads that evaluate every <= 30 s (or at once on ingest) and deliver
    routes.py      GET /api/v1/alerts
    commands.py    the ``alert`` commands
"""
