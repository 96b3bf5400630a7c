"""Helpers shared by the catalog's management commands."""

from django.core.management.base import CommandError

from catalog.errors import ApplicationError


def parse_mapping(items: list[str] | None) -> dict[str, str]:
    mapping = {}
    for item in items or []:
        field, sep, column = item.partition("=")
        if not sep or not field or not column:
            raise CommandError(f"--map takes FIELD=COLUMN, got {item!r}")
        mapping[field.strip()] = column.strip()
    return mapping


def run_service(call):
    """Runs a service; an ApplicationError becomes a CommandError (message, exit status 1)."""
    try:
        return call()
    except ApplicationError as exc:
        raise CommandError(exc.message) from None
