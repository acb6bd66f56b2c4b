"""Many SELECTs read as one statement: the figures of a 20-site, 80-desk group are read per
site, desk and partial hour, and on PostgreSQL each statement is a loopback round trip
(benchmark figure 16), so a page's reads go as a few ``UNION ALL`` statements whatever
the number of sites and desks. Same SQL on both engines; on SQLite it costs nothing extra.
"""

from __future__ import annotations

from sqlite_utils import Database

# Below SQLite's limit of 500 SELECTs in one compound statement.
RANGES_PER_STATEMENT = 100

Select = tuple[str, list]


def union_all(db: Database, selects: list[Select]) -> list[tuple]:
    """The rows of every (SELECT, parameters), read RANGES_PER_STATEMENT at a time as one
    ``UNION ALL``: each SELECT's rows as if run alone, in one round trip instead of one per
    site and partial hour on PostgreSQL (benchmark figure 16). The SELECTs must give the same
    column types (one SQL with other parameters does); no statement when there are none."""
    rows: list[tuple] = []
    for start in range(0, len(selects), RANGES_PER_STATEMENT):
        chunk = selects[start : start + RANGES_PER_STATEMENT]
        rows += db.execute(
            " UNION ALL ".join(sql for sql, _ in chunk),
            [value for _, params in chunk for value in params],
        ).fetchall()
    return rows


def each(db: Database, selects: list[Select]) -> list[list[tuple]]:
    """Each (SELECT, parameters)'s own rows, in the order given, read as :func:`union_all`.

    Every SELECT is numbered in a wrapping one (``SELECT i, * FROM (...)``), so a SELECT can
    keep its GROUP BY, HAVING and column positions, and its rows are told apart even when two
    SELECTs would give the same values. The order of the rows within one SELECT is not kept
    (as without an ORDER BY)."""
    numbered = [(f"SELECT {index}, * FROM ({sql}) AS part{index}", params)
                for index, (sql, params) in enumerate(selects)]
    result: list[list[tuple]] = [[] for _ in selects]
    for row in union_all(db, numbered):
        result[row[0]].append(tuple(row[1:]))
    return result
