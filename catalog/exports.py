"""Streaming table writers: CSV, FITS binary table and VOTable, in constant memory.

Rows arrive in chunks and leave as bytes; nothing holds the whole table. FITS needs the row
count in its header, so the caller gives it (count and rows from one database snapshot).
The output is what astropy's ``Table.read`` reads, with units and UCDs.
"""

import csv
import io
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

import numpy as np

FORMATS = ("csv", "fits", "votable")
CONTENT_TYPES = {"csv": "text/csv", "fits": "application/fits", "votable": "application/x-votable+xml"}
EXTENSIONS = {"csv": "csv", "fits": "fits", "votable": "vot"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "int", "float", "str", "bool"
    unit: str = ""
    ucd: str = ""
    description: str = ""
    width: int = 32  # strings: the FITS/VOTable field width

    @property
    def numpy_dtype(self) -> str:
        return {"int": ">i8", "float": ">f8", "bool": "i1", "str": f"S{self.width}"}[self.kind]


def stream_table(
    fmt: str,
    columns: list[Column],
    chunks: Iterable[list[tuple]],
    n_rows: int | None = None,
    infos: list[tuple[str, str]] | None = None,
    description: str = "",
) -> Iterator[bytes]:
    """The table as a stream of byte chunks in ``fmt`` (csv, fits, votable); VOTables also
    carry ``infos`` (INFO name/value pairs, e.g. QUERY_STATUS) and a description."""
    if fmt == "csv":
        return _csv(columns, chunks)
    if fmt == "fits":
        if n_rows is None:
            raise ValueError("FITS output needs the row count up front")
        return _fits(columns, chunks, n_rows)
    if fmt == "votable":
        return _votable(columns, chunks, infos or [], description)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}")


def _csv(columns, chunks) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([c.name for c in columns])
    yield buffer.getvalue().encode()
    for chunk in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(
            ["" if v is None or (isinstance(v, float) and math.isnan(v)) else v for v in row] for row in chunk
        )
        yield buffer.getvalue().encode()


def _fits(columns, chunks, n_rows: int) -> Iterator[bytes]:
    from astropy.io import fits

    fits_format = {"int": "K", "float": "D", "bool": "L"}
    cols = [
        fits.Column(
            name=c.name,
            format=fits_format.get(c.kind, f"{c.width}A"),
            unit=c.unit or None,
            array=np.zeros(0, dtype=c.numpy_dtype),
        )
        for c in columns
    ]
    hdu = fits.BinTableHDU.from_columns(cols)
    hdu.header["NAXIS2"] = n_rows
    for i, c in enumerate(columns, start=1):
        if c.ucd:
            hdu.header[f"TUCD{i}"] = c.ucd
        if c.description:
            hdu.header[f"TCOMM{i}"] = c.description[:68]
    yield fits.PrimaryHDU().header.tostring().encode("ascii")
    yield hdu.header.tostring().encode("ascii")
    dtype = np.dtype([(c.name, c.numpy_dtype) for c in columns])
    written = 0
    for chunk in chunks:
        if not chunk:
            continue
        if written + len(chunk) > n_rows:
            raise RuntimeError("more rows than the count given for the FITS header")
        array = np.empty(len(chunk), dtype=dtype)
        for j, c in enumerate(columns):
            values = [row[j] for row in chunk]
            if c.kind == "float":
                array[c.name] = [np.nan if v is None else v for v in values]
            elif c.kind == "int":
                array[c.name] = [-1 if v is None else v for v in values]
            elif c.kind == "bool":
                array[c.name] = [ord("T") if v else ord("F") for v in values]
            else:
                array[c.name] = [("" if v is None else str(v)).encode("utf-8")[: c.width] for v in values]
        written += len(chunk)
        yield array.tobytes()
    if written != n_rows:
        raise RuntimeError(f"FITS header promised {n_rows} rows, {written} were written")
    size = written * dtype.itemsize
    yield b"\0" * ((2880 - size % 2880) % 2880)


_VOTABLE_TYPES = {"int": "long", "float": "double", "bool": "boolean", "str": "char"}


def _votable(columns, chunks, infos: list[tuple[str, str]], description: str) -> Iterator[bytes]:
    head = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">',
        '<RESOURCE type="results">',
    ]
    if description:
        head.append(f"<DESCRIPTION>{escape(description)}</DESCRIPTION>")
    head += [f"<INFO name={quoteattr(name)} value={quoteattr(value)}/>" for name, value in infos]
    head.append("<TABLE>")
    for c in columns:
        attrs = f'name={quoteattr(c.name)} datatype="{_VOTABLE_TYPES[c.kind]}"'
        if c.kind == "str":
            attrs += ' arraysize="*"'
        if c.unit:
            attrs += f" unit={quoteattr(c.unit)}"
        if c.ucd:
            attrs += f" ucd={quoteattr(c.ucd)}"
        description = f"<DESCRIPTION>{escape(c.description)}</DESCRIPTION>" if c.description else ""
        head.append(f"<FIELD {attrs}>{description}</FIELD>")
    head.append("<DATA><TABLEDATA>")
    yield ("\n".join(head) + "\n").encode()
    for chunk in chunks:
        lines = []
        for row in chunk:
            cells = []
            for c, v in zip(columns, row, strict=True):
                if v is None or (isinstance(v, float) and math.isnan(v)):
                    cells.append("<TD/>")
                elif c.kind == "bool":
                    cells.append("<TD>T</TD>" if v else "<TD>F</TD>")
                elif c.kind == "float":
                    cells.append(f"<TD>{float(v)!r}</TD>")
                elif c.kind == "int":
                    cells.append(f"<TD>{int(v)}</TD>")
                else:
                    cells.append(f"<TD>{escape(str(v))}</TD>")
            lines.append("<TR>" + "".join(cells) + "</TR>")
        yield ("\n".join(lines) + "\n").encode()
    yield b"</TABLEDATA></DATA>\n</TABLE>\n</RESOURCE>\n</VOTABLE>\n"


def snapshot():
    """A transaction in which a count and the rows that follow see the same data
    (REPEATABLE READ on PostgreSQL; SQLite transactions are snapshots already)."""
    from contextlib import contextmanager

    from django.db import connection, transaction

    @contextmanager
    def _snapshot():
        outermost = not connection.in_atomic_block  # inside a caller's transaction: theirs rules
        with transaction.atomic():
            if outermost and connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            yield

    return _snapshot()


def write_table(path_or_file, fmt: str, columns: list[Column], chunks, n_rows: int | None = None) -> int:
    """Writes a streamed table to a path or a binary file object; returns bytes written."""
    written = 0
    if hasattr(path_or_file, "write"):
        for block in stream_table(fmt, columns, chunks, n_rows):
            path_or_file.write(block)
            written += len(block)
        return written
    with open(path_or_file, "wb") as fh:
        return write_table(fh, fmt, columns, chunks, n_rows)
