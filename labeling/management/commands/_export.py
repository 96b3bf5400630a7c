"""Shared by export_votes and export_fractions."""

import os
import sys

from django.core.management.base import CommandError

from catalog.exports import FORMATS, snapshot, write_table


def add_output_arguments(parser) -> None:
    parser.add_argument("--format", default="csv", choices=FORMATS)
    parser.add_argument("--output", "-o", help="File to write (default: standard output).")


def export(table_factory, opts, stdout) -> int:
    if opts["format"] != "csv" and not opts["output"] and sys.stdout.isatty():
        raise CommandError(f"{opts['format']} is binary: give --output FILE or redirect standard output")
    with snapshot():  # the row count and the rows come from one snapshot
        columns, n_rows, chunks = table_factory()
        target = opts["output"] or sys.stdout.buffer
        try:
            write_table(target, opts["format"], columns, chunks, n_rows)
        except BrokenPipeError:  # e.g. piped into head: stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return n_rows
    if opts["output"]:
        stdout.write(f"wrote {n_rows} rows to {opts['output']}")
    return n_rows
