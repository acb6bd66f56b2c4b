"""The README's "Reliability" table from the last run's figures.

    .venv/bin/python -m pytest tests/reliability     # run the scenarios (writes the figures)
    .venv/bin/python -m tests.reliability.report     # print the table (markdown)

Figures come from test-output/reliability.json, which each scenario writes once its checks
have passed; a scenario that has not run (or failed) shows as "not run". Each row gives lost,
duplicated and 5xx for the central store on SQLite and on PostgreSQL (the scenarios that run
on both, ``tests.support.engines``); "—" marks a scenario that has no PostgreSQL (or SQLite)
side, with the reason in a note under the table.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from tests.reliability.figures import FIGURES_PATH, load

Describe = Callable[[dict], tuple[str, str]]
ENGINE_NAMES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}

SCENARIOS: list[tuple[str, str, Describe]] = [
    ("crash_kiosk", "Kiosk SIGKILLed while writing", lambda f: (
        f"{f['kills']} kills at random moments (starting, mid-write, after n acks)",
        f"{f['acknowledged_writes_checked']:,} acknowledged writes found after each restart; "
        f"{f['integrity_checks_ok']} integrity checks ok; {f['events_synced']:,} events "
        "synced once")),
    ("crash_central", "Central store SIGKILLed mid-batch", lambda f: (
        f"{f['kills']} kills with a 500-event batch in flight"
        + (f", {f['workers']} workers: all workers {f['kinds']['workers']} times, the whole "
           f"tree {f['kinds']['tree']} times" if f.get("workers", 1) > 1 else ""),
        f"{f['batches_in_flight']} batches: {f['stored_whole']} whole, "
        f"{f['stored_not_at_all']} not at all, {f['stored_in_part']} in part; "
        f"{f['events_checked']:,} events delivered by the retries")),
    ("crash_postgres", "PostgreSQL stopped at once mid-batch", lambda f: (
        f"{f['kills']} immediate stops (no checkpoint: WAL recovery on restart) with a "
        f"500-event batch in flight, {f['workers']} workers",
        f"{f['batches_in_flight']} batches: {f['stored_whole']} whole, "
        f"{f['stored_not_at_all']} not at all, {f['stored_in_part']} in part; "
        f"{f['answered_503']} answered 503 + Retry-After + a sentence meanwhile ("
        + (f"within {f['slowest_503_s']} s" if f['slowest_503_s'] >= 0.1 else "at once")
        + f"); storing again {f['slowest_recovery_s']} s after the "
        f"restart, the same workers ({f['worker_restarts']} restarts); "
        f"{f['events_checked']:,} events delivered by the retries")),
    ("network_faults", "Fault proxy kiosk → central", lambda f: (
        f"{f['faults_injected']} faults of {f['fault_kinds']} kinds over {f['requests']} "
        "requests (latency, hang, reset, reply cut after commit, 500, 502, 429, every 5th)",
        f"{f['events_checked']:,} events; slowest attempt {f['slowest_attempt_s']} s "
        f"(bound {f['attempt_bound_s']} s); fds {f['fds_before']}→{f['fds_after']}, "
        f"threads {f['threads_before']}→{f['threads_after']}")),
    ("long_outage", "A week offline at a busy desk", lambda f: (
        f"{f['days']} days, {f['visits']} visits, central down throughout",
        f"{f['backlog_events']:,} queued events drained once, in order; desk action p99 "
        f"{f['record_p99_ms']} ms (p50 {f['record_p50_ms']} ms)")),
    ("many_kiosks", "Many kiosks at once", lambda f: (
        f"{f['kiosks']} kiosks, {f['pushes']} concurrent pushes, dashboard and metrics read "
        f"meanwhile ({sum(f['reads_during_push'].values())} reads)",
        f"{f['events_checked']:,} events; \"database is locked\" seen "
        f"{f['database_is_locked_seen']} times")),
    ("api_fuzzing", "Schemathesis on the live /openapi.json", lambda f: (
        f"{f['fuzz_cases_run']:,} generated cases, {f['modes']}, missing and wrong auth, "
        f"{f['operations']} operations",
        f"checks: {f['checks']}; every response as documented")),
    ("hostile_bodies", "Oversized, chunked and malformed bodies", lambda f: (
        f"{f['requests']} requests of {f['kinds']} kinds, {f['oversized_mib_sent']} MiB sent",
        f"413/400/422 each; server RSS {f['rss_before_mib']}→{f['rss_after_mib']} MiB")),
    ("auth_refusals", "No, wrong, revoked tokens", lambda f: (
        f"{f['requests_refused_401']} requests on {f['routes']} API routes",
        "401 each; kiosk tokens refused by every dashboard route; no device writes another "
        "site's visits")),
    ("token_brute_force", "Token guessing", lambda f: (
        f"{f['guesses']} guesses from one address",
        f"{f['answered_401']} answered 401, then 429 + Retry-After "
        f"(limit {f['limit_per_minute']}/min)")),
    ("secrets", "Token and PIN in clear", lambda f: (
        f"{f['log_lines_checked']} log lines, {f['files_checked']} database files",
        f"found in clear: {f['found_in_clear']}; PIN lockout survives SIGKILL + restart")),
    ("full_disk", "Full disk under a working desk", lambda f: (
        f"a real {f['how']} filled up",
        f"clear message; {f['acknowledged_events_checked']} acknowledged events all kept")),
    ("privacy_fields", "Personal-data fields", lambda f: (
        f"{f['fields_checked']} table columns and API fields",
        f"none for a name, phone, birth date, record number or free text "
        f"({f['allowed_by_decision']} device/site/login names allowed by decision)")),
    ("hostile_limits", "Hostile clients: spoofed X-Forwarded-For", lambda f: (
        f"{f['spoofed_guesses']} wrong tokens, each with a new X-Forwarded-For; the same "
        "for logins",
        f"{f['guesses_allowed']} allowed, then 429 (limit {f['limit_per_minute']}/min); a valid "
        "kiosk behind the noisy address still syncs")),
    ("hostile_tables", "Hostile clients: failure tables", lambda f: (
        f"{f['addresses']:,} addresses failing",
        f"table held at {f['table_bound']:,}; {f['us_per_request_filling']} µs per request "
        f"filling, {f['us_per_request_full']} µs full")),
    ("slow_headers", "Connection floods: headers a byte at a time", lambda f: (
        f"a byte every {f['every_s']} s",
        f"cut off with 408 after {f['cut_s']} s (deadline {f['deadline_s']:g} s in the test, "
        f"{f['default_deadline_s']:g} s by default)")),
    ("slow_bodies", "Connection floods: a body a byte at a time", lambda f: (
        f"a byte every {f['every_s']} s",
        f"cut off after {f['cut_s']} s (at least 1 KiB per {f['deadline_s']:g} s in the test, "
        f"{f['default_min_bytes'] // 1024} KiB per {f['default_deadline_s']:g} s by default); "
        f"{f['events_stored']} events stored")),
    ("idle_sockets", "Connection floods: idle sockets", lambda f: (
        f"{f['sockets']} sockets that send nothing",
        f"all closed after {f['all_closed_s']} s (deadline {f['header_deadline_s']:g} s)")),
    ("connection_cap", "Connection floods: over the cap", lambda f: (
        f"{f['over_the_cap']} connections past a cap of {f['cap']}",
        f"{f['answered_503_retry_after']} answered 503 + Retry-After + a sentence; the kiosk "
        "backs off and syncs once served")),
    ("connection_floods", "Connection floods: the log", lambda f: (
        f"{f['bad_requests']} malformed requests, {f['refused_connections']} refused "
        "connections",
        f"log {f['log_bytes']:,} bytes, {f['log_lines']} lines (each warning once a minute, "
        "with a count)")),
    ("early_answer_body", "Connection floods: a body after an early 401", lambda f: (
        "the 10 body bytes of an unauthenticated POST sent after its 401, with the start of a "
        "next request",
        f"closed after {f['closed_after_s']} s (header deadline {f['header_deadline_s']:g} s in "
        "the test, 10 s by default), not held open")),
    ("slow_steady_body", "Connection floods: a slow but steady body", lambda f: (
        f"a {f['body_bytes']:,}-byte batch in 512-byte pieces every 0.2 s",
        f"200 after {f['took_s']} s, {f['events_stored']} events stored (at least "
        f"{f['min_bytes']} bytes per {f['window_s']:g} s in the test, "
        f"{f['default_min_bytes'] // 1024} KiB per {f['default_window_s']:g} s by default)")),
    ("refusals_open", "Connection floods: refusals kept open", lambda f: (
        f"{f['silent_refused']} refused clients that never close their end",
        f"at most {f['most_open']} kept open at once (the bound in the test, "
        f"{f['default_bound']} by default), the rest dropped at once")),
    ("central_full_disk", "Full disk under the central store", lambda f: (
        f"a real {f['how']} filled up",
        f"{f['answer']} + Retry-After, /healthz {f['healthz']} \"degraded\"; "
        f"{f['resent_events_stored']} resent events stored once freed")),
    ("hostile_clocks", "Hostile clocks", lambda f: (
        f"{f['not_rfc3339_refused']} instants not in strict RFC 3339, {f['refused']} outside "
        "the plausible window (years 1, 1970, 9999, a day ahead) beside valid events",
        f"each refused alone with a reason, {f['stored']} valid stored; longest current wait "
        f"{f['longest_current_wait_min']} min for a 4-minute wait; every page 200")),
    ("hostile_clocks_property", "Hostile clocks, any instants and orders", lambda f: (
        f"{f['examples']} Hypothesis examples: instants from year 1 to 9999 and around now, "
        "events shuffled and split into batches",
        f"{f['events_stored']} events stored; every figure within bounds, no visit out of "
        "order, one rating per visit, dashboard 200")),
    ("hostile_clocks_repair", "A store poisoned before the rules", lambda f: (
        "heartbeat in 9999, a call in 1970, a call before its check-in, 3 ratings on one "
        "visit, one on no visit",
        f"migration 4: {f['events_set_aside']} events set aside, "
        f"{f['pages_answering_200']} pages 200, median {f['wait_median_min_after']} min, "
        f"response rate {f['response_rate_after']}%")),
    ("impossible_visits", "Impossible visits", lambda f: (
        "called before check-in, out before called, corrections out of order",
        f"{f['refused']} refused with a reason, {f['stored']} stored; median "
        f"{f['wait_median_min']} min, negative waits {f['negative_waits']}")),
    ("impossible_visits_ratings", "Extra ratings for one visit", lambda f: (
        f"{f['ratings_sent']} ratings: 3 for one visit, 1 for a visit never seen",
        f"{f['ratings_counted']} counted as ratings, 1 as a response; response rate "
        f"{f['response_rate']}%")),
    ("event_isolation", "One unprojectable event in a batch", lambda f: (
        f"{f['events_sent']} events, one whose projection fails",
        f"{f['stored']} stored, {f['rejected']} rejected alone; the answer 200, the resend "
        "the same")),
]


HTTP_LAYER = ("the HTTP layer (uvicorn and the connection guard) before any database: the same "
              "code whatever the engine.")
# Scenarios with nothing to run on one engine: "—" in its column, and why, under the table.
NOT_ON_ENGINE: dict[str, dict[str, str]] = {
    "sqlite": {
        "crash_postgres": "SQLite has no database server to stop: the store is a file in the "
                          "store's own process, whose SIGKILL is the row above.",
    },
    "postgres": {
        "full_disk": "kiosk-side: the kiosk's own SQLite file on a full disk.",
        "secrets": "looks for the token and PIN in the logs and in the SQLite files on disk; "
                   "PostgreSQL's data files are not scanned (tokens are hashed before either "
                   "engine sees them, by the same code).",
        "hostile_bodies": "refused before any database is touched (size, encoding, JSON).",
        "hostile_tables": "the rate limiter's in-memory tables, no database.",
        "slow_headers": HTTP_LAYER,
        "slow_bodies": HTTP_LAYER,
        "idle_sockets": HTTP_LAYER,
        "connection_cap": HTTP_LAYER,
        "connection_floods": HTTP_LAYER,
        "early_answer_body": HTTP_LAYER,
        "slow_steady_body": HTTP_LAYER,
        "refusals_open": HTTP_LAYER,
        "central_full_disk": "a full disk under the SQLite store's data directory. PostgreSQL's "
                             "disk is its own server's: its \"disk full\" is answered 507 the "
                             "same way (sync/central/postgres.py), not tested on a real full "
                             "disk.",
        "hostile_clocks_repair": "a store written before the rules existed is a SQLite store "
                                 "(PostgreSQL stores start at the current schema).",
    },
}


def _entries(document: dict) -> list[dict]:
    return [entry for by_engine in document.values() for entry in by_engine.values()]


def _totals(document: dict) -> dict[str, int]:
    def pick(scenario: str, key: str) -> int:
        return sum(int(entry["figures"].get(key, 0) or 0)
                   for entry in document.get(scenario, {}).values())

    entries = _entries(document)
    return {
        "kills": pick("crash_kiosk", "kills") + pick("crash_central", "kills")
        + pick("crash_postgres", "kills"),
        "events": sum(pick(s, k) for s, k in (
            ("crash_kiosk", "events_synced"), ("crash_central", "events_checked"),
            ("crash_postgres", "events_checked"),
            ("network_faults", "events_checked"), ("long_outage", "backlog_events"),
            ("many_kiosks", "events_checked"))),
        "faults": pick("network_faults", "faults_injected") + pick("hostile_bodies", "requests")
        + pick("token_brute_force", "guesses"),
        "fuzz": pick("api_fuzzing", "fuzz_cases_run"),
        "lost": sum(entry["lost"] for entry in entries),
        "duplicated": sum(entry["duplicated"] for entry in entries),
        "server_errors": sum(entry["server_errors"] for entry in entries),
    }


def _counts(key: str, engine: str, by_engine: dict, notes: list[str]) -> str:
    """``lost / dup. / 5xx`` of one engine's run, "—" (with its note) or "not run"."""
    entry = by_engine.get(engine)
    if entry is not None:
        return f"{entry['lost']} / {entry['duplicated']} / {entry['server_errors']}"
    reason = NOT_ON_ENGINE[engine].get(key)
    if reason is None:
        return "not run"
    if reason not in notes:
        notes.append(reason)
    return f"—[^{notes.index(reason) + 1}]"


def _per_engine(texts: list[tuple[str, str]]) -> str:
    """One text when the engines' runs read the same, else each engine's (a run with workers,
    counts that follow a random moment)."""
    if len({text for _, text in texts}) == 1:
        return texts[0][1]
    return "<br>".join(f"{engine}: {text}" for engine, text in texts)


def render(document: dict) -> str:
    totals = _totals(document)
    entries = _entries(document)
    moments = sorted(entry["at"] for entry in entries) or ["never"]
    ran = [ENGINE_NAMES[engine] for engine in ENGINE_NAMES
           if any(engine in by_engine for by_engine in document.values())]
    lines = [
        f"Last run: {moments[-1]} ({' and '.join(ran) or 'no engine'}) · "
        f"**{totals['kills']} kills survived · "
        f"{totals['events']:,} events checked · {totals['faults']:,} faults injected · "
        f"{totals['fuzz']:,} fuzz cases run · {totals['lost']} lost · "
        f"{totals['duplicated']} duplicated · {totals['server_errors']} server errors**",
        "",
        "| Scenario | Thrown at it | Checked | SQLite: lost / dup. / 5xx "
        "| PostgreSQL: lost / dup. / 5xx |",
        "|---|---|---|---|---|",
    ]
    notes: list[str] = []
    for key, name, describe in SCENARIOS:
        by_engine = document.get(key, {})
        counts = [_counts(key, engine, by_engine, notes) for engine in ENGINE_NAMES]
        if not by_engine:
            lines.append(f"| {name} | not run | | {counts[0]} | {counts[1]} |")
            continue
        described = [(ENGINE_NAMES[engine], describe(by_engine[engine]["figures"]))
                     for engine in ENGINE_NAMES if engine in by_engine]
        attack, checked = (_per_engine([(engine, text[part]) for engine, text in described])
                           for part in (0, 1))
        lines.append(f"| {name} | {attack} | {checked} | {counts[0]} | {counts[1]} |")
    if notes:
        lines.append("")
        lines += [f"[^{number}]: {note}" for number, note in enumerate(notes, 1)]
    lines += ["", "Reproduce: `python3 main.py test tests/reliability`, then "
                  "`.venv/bin/python -m tests.reliability.report`."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else FIGURES_PATH
    document = load(path)
    if not document:
        print(f"No figures in {path}: run `python3 main.py test tests/reliability` first.",
              file=sys.stderr)
        return 1
    print(render(document))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
