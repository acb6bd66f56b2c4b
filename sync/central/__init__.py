"""The central store: where every kiosk's events land, exactly once, and metrics are read.

storage.py        CentralStore: the SQLite file (its pragmas, one write transaction helper)
migrations.py     the schema, versioned with PRAGMA user_version (the one migration runner)
rollups.py        hourly rollups and covering indexes, rules generated from kiosk.shared.metrics
sites.py          a site's settings (time zone, wait target, scale, tags, idle timeout)
auth.py           device and reporting tokens: issue, hash, check, revoke
ingest.py         one batch: validate, store at most once, project, commit, answer
projections.py    visits, ratings (with pairing) and device health from stored events
figures.py        the one read path for figures (API, dashboard, exports), SQL -> metrics
metrics_query.py  the metrics API's range, checked, answered by figures.range_figures
batch.py          size limits and JSON parsing of a request body
security.py       FastAPI dependencies for the two kinds of token
schemas.py        response models and the batch's JSON schema for OpenAPI
routes/           one APIRouter per area (events, config, metrics, health)
app.py            create_app(data_dir)
serving.py        binding the port, building the uvicorn server
embedded.py       start_embedded(): the store inside the kiosk's process
cli.py            `python main.py central | device | token | site ...`
store_options.py  --data DIR or --database-url URL (DATABASE_URL): which store a command opens
workers.py        central --workers N: forks N servers on one socket, restarts the ones that die
"""
