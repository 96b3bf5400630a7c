"""Fast idempotent bulk upserts through a staging table (PostgreSQL COPY, SQLite executemany).

Rows go into a temporary staging table in chunks, then one ``INSERT ... SELECT ... ON
CONFLICT DO UPDATE ... WHERE <something changed>`` per chunk moves them into the real
table: new rows are inserted, changed rows updated, identical rows left untouched (so
re-running an ingest changes nothing). Runs inside the caller's transaction.
"""

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

from django.db import connection, models

_PG_TYPES = {
    "FloatField": "double precision",
    "BigIntegerField": "bigint",
    "IntegerField": "integer",
    "PositiveIntegerField": "integer",
    "CharField": "text",
    "JSONField": "text",
    "BooleanField": "boolean",
}
_SQLITE_TYPES = {
    **{k: "REAL" for k in ("FloatField",)},
    "BigIntegerField": "INTEGER",
    "IntegerField": "INTEGER",
    "PositiveIntegerField": "INTEGER",
    "CharField": "TEXT",
    "JSONField": "TEXT",
    "BooleanField": "INTEGER",
}


@dataclass
class UpsertCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __iadd__(self, other: "UpsertCounts") -> "UpsertCounts":
        self.created += other.created
        self.updated += other.updated
        self.unchanged += other.unchanged
        return self


def _chunks(rows: Iterable[tuple], size: int):
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def bulk_upsert(
    *,
    model: type[models.Model],
    fields: Sequence[str],
    rows: Iterable[tuple],
    conflict_fields: Sequence[str],
    constants: dict[str, object],
    chunk_size: int = 50_000,
    on_chunk: Callable[[int], None] | None = None,
) -> UpsertCounts:
    """Inserts or updates ``rows`` (tuples in the order of ``fields``) into ``model``'s table.

    ``constants`` (e.g. ``{"survey_id": 3}``) are the same for every row; together with
    some of ``fields`` they form ``conflict_fields``. JSON fields take Python objects.
    """
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"bulk_upsert supports PostgreSQL and SQLite, not {vendor}")
    qn = connection.ops.quote_name
    opts = model._meta
    table = qn(opts.db_table)
    staging = qn(f"staging_{opts.db_table}")
    field_objs = [opts.get_field(f) for f in fields]
    columns = [f.column for f in field_objs]
    json_idx = [i for i, f in enumerate(field_objs) if f.get_internal_type() == "JSONField"]
    types = _PG_TYPES if vendor == "postgresql" else _SQLITE_TYPES
    staging_cols = ", ".join(
        f"{qn(c)} {types[f.get_internal_type()]}" for c, f in zip(columns, field_objs, strict=True)
    )

    const_cols = [opts.get_field(name).column for name in constants]
    const_sql = ", ".join(["%s"] * len(constants))
    select_cols = []
    for c, f in zip(columns, field_objs, strict=True):
        if f.get_internal_type() == "JSONField" and vendor == "postgresql":
            select_cols.append(f"{qn(c)}::jsonb")
        else:
            select_cols.append(qn(c))
    conflict_cols = [opts.get_field(name).column for name in conflict_fields]
    update_cols = [c for c in columns if c not in conflict_cols]
    distinct = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    set_sql = ", ".join(f"{qn(c)} = excluded.{qn(c)}" for c in update_cols)
    changed_sql = " OR ".join(f"{table}.{qn(c)} {distinct} excluded.{qn(c)}" for c in update_cols)
    insert_sql = (
        f"INSERT INTO {table} ({', '.join(qn(c) for c in const_cols + columns)}) "
        f"SELECT {const_sql}{', ' if const_sql else ''}{', '.join(select_cols)} FROM {staging} WHERE true "
        f"ON CONFLICT ({', '.join(qn(c) for c in conflict_cols)}) DO UPDATE SET {set_sql} WHERE {changed_sql}"
    )
    where_const = " AND ".join(f"{qn(c)} = %s" for c in const_cols) or "true"
    count_sql = f"SELECT COUNT(*) FROM {table} WHERE {where_const}"
    const_values = list(constants.values())

    counts = UpsertCounts()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        cursor.execute(f"CREATE TEMPORARY TABLE {staging} ({staging_cols})")
        try:
            for chunk in _chunks(rows, chunk_size):
                if json_idx:
                    chunk = [tuple(json.dumps(v) if i in json_idx else v for i, v in enumerate(row)) for row in chunk]
                cursor.execute(count_sql, const_values)
                before = cursor.fetchone()[0]
                if vendor == "postgresql":
                    with cursor.cursor.copy(f"COPY {staging} ({', '.join(qn(c) for c in columns)}) FROM STDIN") as copy:
                        for row in chunk:
                            copy.write_row(row)
                else:
                    placeholders = ", ".join(["%s"] * len(columns))
                    cursor.executemany(f"INSERT INTO {staging} VALUES ({placeholders})", chunk)
                cursor.execute(insert_sql, const_values)
                touched = cursor.rowcount
                cursor.execute(count_sql, const_values)
                after = cursor.fetchone()[0]
                created = after - before
                counts += UpsertCounts(created=created, updated=touched - created, unchanged=len(chunk) - touched)
                cursor.execute(f"DELETE FROM {staging}")
                if on_chunk:
                    on_chunk(len(chunk))
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {staging}")
    return counts
