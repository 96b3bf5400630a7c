"""Fast idempotent bulk upserts through a staging table (PostgreSQL COPY, SQLite executemany).

The keys already in the table are read once. New rows are copied straight into the table
(COPY on PostgreSQL: the server inserts while the client formats the next rows, so both
cores work). Rows whose key exists go through a temporary staging table and one ``UPDATE
... FROM staging WHERE <a value differs>`` per chunk, so identical rows are left untouched
and re-running an ingest changes nothing. Runs inside the caller's transaction, which must hold a lock that keeps
other writers of the same keys out (the ingests lock their survey row).
"""

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import islice

from django.db import connection, models

ANALYZE_AFTER_ROWS = 10_000
_PG_TYPES = {
    "FloatField": "double precision",
    "BigIntegerField": "bigint",
    "IntegerField": "integer",
    "PositiveIntegerField": "integer",
    "CharField": "text",
    "JSONField": "text",
    "BooleanField": "boolean",
    "ForeignKey": "bigint",
}
_SQLITE_TYPES = {
    "FloatField": "REAL",
    "BigIntegerField": "INTEGER",
    "IntegerField": "INTEGER",
    "PositiveIntegerField": "INTEGER",
    "CharField": "TEXT",
    "JSONField": "TEXT",
    "BooleanField": "INTEGER",
    "ForeignKey": "INTEGER",
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
    key_filter: dict | None = None,
) -> UpsertCounts:
    """Inserts or updates ``rows`` (tuples in the order of ``fields``) into ``model``'s table.

    ``constants`` (e.g. ``{"survey_id": 3}``) are the same for every row; together with
    some of ``fields`` they form ``conflict_fields`` (the natural key). JSON fields take
    Python objects. ``key_filter`` narrows the lookup of existing keys (e.g. to a chunk's
    subjects) when the rows touch a small part of a large table.
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
    json_idx = {i for i, f in enumerate(field_objs) if f.get_internal_type() == "JSONField"}
    json_cols = {columns[i] for i in json_idx}
    types = _PG_TYPES if vendor == "postgresql" else _SQLITE_TYPES
    staging_cols = ", ".join(
        f"{qn(c)} {types[f.get_internal_type()]}" for c, f in zip(columns, field_objs, strict=True)
    )
    const_cols = [opts.get_field(name).column for name in constants]
    const_values = list(constants.values())
    key_fields = [f for f in conflict_fields if f in fields]
    key_idx = [fields.index(f) for f in key_fields]
    key_cols = [columns[i] for i in key_idx]
    update_cols = [c for c in columns if c not in key_cols]
    cast = {c: (f"s.{qn(c)}::jsonb" if c in json_cols and vendor == "postgresql" else f"s.{qn(c)}") for c in columns}
    distinct = "IS DISTINCT FROM" if vendor == "postgresql" else "IS NOT"
    match = " AND ".join([f"t.{qn(c)} = %s" for c in const_cols] + [f"t.{qn(c)} = s.{qn(c)}" for c in key_cols])
    update_sql = (
        f"UPDATE {table} AS t SET {', '.join(f'{qn(c)} = {cast[c]}' for c in update_cols)} FROM {staging} s "
        f"WHERE {match} AND (" + " OR ".join(f"t.{qn(c)} {distinct} {cast[c]}" for c in update_cols) + ")"
    )
    all_cols = ", ".join(qn(c) for c in const_cols + columns)

    # The caller holds a lock that keeps other writers of these keys out, so the keys
    # present now decide which rows are new (inserted directly) and which may need an update.
    existing = set(
        model._base_manager.filter(**constants, **(key_filter or {})).values_list(*key_fields).iterator(chunk_size)
    )
    counts = UpsertCounts()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        cursor.execute(f"CREATE TEMPORARY TABLE {staging} ({staging_cols})")
        try:
            for chunk in _chunks(rows, chunk_size):
                if json_idx:
                    chunk = [tuple(json.dumps(v) if i in json_idx else v for i, v in enumerate(row)) for row in chunk]
                new, old = [], []
                for row in chunk:
                    (old if tuple(row[i] for i in key_idx) in existing else new).append(row)
                if new:
                    _insert(cursor, vendor, table, all_cols, const_values, new)
                if old:
                    _insert(cursor, vendor, staging, ", ".join(qn(c) for c in columns), [], old)
                    cursor.execute(update_sql, const_values)
                    counts += UpsertCounts(updated=cursor.rowcount, unchanged=len(old) - cursor.rowcount)
                    cursor.execute(f"DELETE FROM {staging}")
                counts.created += len(new)
                if on_chunk:
                    on_chunk(len(chunk))
        finally:
            cursor.execute(f"DROP TABLE IF EXISTS {staging}")
        if vendor == "postgresql" and counts.created + counts.updated >= ANALYZE_AFTER_ROWS:
            # Fresh statistics, or the planner keeps believing the table is small and picks
            # poor plans (e.g. a cone search scanning a whole survey) until autovacuum runs.
            cursor.execute(f"ANALYZE {table}")
    return counts


def _insert(cursor, vendor: str, table: str, columns: str, constants: list, rows: list[tuple]) -> None:
    """Appends rows (each prefixed by ``constants``) to a table: COPY on PostgreSQL, where the
    server inserts while the client is still formatting rows, executemany on SQLite."""
    if vendor == "postgresql":
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            if constants:
                prefix = tuple(constants)
                for row in rows:
                    copy.write_row(prefix + row)
            else:
                for row in rows:
                    copy.write_row(row)
    else:
        placeholders = ", ".join(["%s"] * (len(constants) + len(rows[0])))
        prefix = tuple(constants)
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", [prefix + row for row in rows])
