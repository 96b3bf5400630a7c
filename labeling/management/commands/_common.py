"""Helpers of the labeling commands."""

from django.core.management.base import CommandError

from labeling.models import Project, Scheme, SchemeVersion


def scheme_version_from(scheme: str, version: int | None) -> SchemeVersion:
    found = Scheme.objects.filter(slug=scheme).first()
    if found is None:
        raise CommandError(f"no scheme {scheme!r} (known: {', '.join(Scheme.objects.values_list('slug', flat=True))})")
    chosen = found.versions.filter(number=version).first() if version else found.current_version
    if chosen is None:
        raise CommandError(f"scheme {scheme} has no version {version}")
    return chosen


def project_from(slug: str | None) -> Project | None:
    if slug is None:
        return None
    project = Project.objects.filter(slug=slug).first()
    if project is None:
        raise CommandError(f"no project {slug!r}")
    return project
