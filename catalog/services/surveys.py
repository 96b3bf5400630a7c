"""Surveys and bands: creating them, checking instrument facts, deleting a survey whole."""

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import models, transaction
from django.db.models import QuerySet

from catalog.errors import ApplicationError
from catalog.models import (
    Band,
    Cutout,
    ImageShard,
    MockImage,
    QuasarSpectrum,
    SpectrumShard,
    Survey,
)
from catalog.services.files import StagedFiles, delete_shard_files, delete_stored_files

FACT_TOLERANCE = 0.02  # relative: facts differing by more than 2% are a conflict


@dataclass(frozen=True)
class BandFacts:
    """Instrument facts of a band, as far as they are known (None = unknown)."""

    name: str
    pixel_scale_arcsec: float | None = None
    psf_fwhm_arcsec: float | None = None
    zero_point_ab: float | None = None
    instrument: str = ""

    def merged(self, other: "BandFacts") -> "BandFacts":
        """These facts, completed by ``other``'s where these are unknown."""
        return BandFacts(
            name=self.name,
            pixel_scale_arcsec=self.pixel_scale_arcsec or other.pixel_scale_arcsec,
            psf_fwhm_arcsec=self.psf_fwhm_arcsec or other.psf_fwhm_arcsec,
            zero_point_ab=self.zero_point_ab if self.zero_point_ab is not None else other.zero_point_ab,
            instrument=self.instrument or other.instrument,
        )


def survey_ensure(
    *, name: str, kind: str, title: str = "", field_name: str = "", instrument: str = "", detection_band: str = ""
) -> tuple[Survey, bool]:
    """The survey called ``name``, created if missing; refuses a survey of another kind."""
    survey = Survey.objects.filter(name=name).first()
    if survey is not None:
        if survey.kind != kind:
            raise ApplicationError(f"survey {name!r} is a {survey.kind} survey, not {kind}")
        if detection_band and not survey.detection_band:
            survey.detection_band = detection_band
            survey.save(update_fields=["detection_band"])
        return survey, False
    survey = Survey.objects.create(
        name=name,
        kind=kind,
        title=title or name,
        field_name=field_name,
        instrument=instrument,
        detection_band=detection_band,
    )
    return survey, True


@dataclass
class IngestBatch:
    survey: Survey
    survey_created: bool
    files: StagedFiles


@contextmanager
def survey_ingest_batch(*, name: str, kind: str, **survey_fields) -> Iterator[IngestBatch]:
    """One ingest batch: a transaction holding the survey's row lock (one ingest per survey
    at a time), with files staged so that a failure anywhere leaves no row and no file."""
    files = StagedFiles()
    try:
        with transaction.atomic():
            survey, created = survey_ensure(name=name, kind=kind, **survey_fields)
            Survey.objects.select_for_update().filter(pk=survey.pk).exists()
            yield IngestBatch(survey=survey, survey_created=created, files=files)
            files.publish_shards()
            files.commit_on_success()
    except BaseException:
        files.rollback()
        raise


def _differs(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and not math.isclose(a, b, rel_tol=FACT_TOLERANCE, abs_tol=1e-6)


def band_ensure(*, survey: Survey, facts: BandFacts, source: str) -> Band:
    """The survey's band ``facts.name``; created from ``facts``, or checked against them.

    ``source`` names where the facts come from (a file), for the error message.
    """
    band = Band.objects.filter(survey=survey, name=facts.name).first()
    if band is None:
        missing = [k for k in ("pixel_scale_arcsec", "psf_fwhm_arcsec") if getattr(facts, k) is None]
        if missing:
            raise ApplicationError(
                f"{source}: band {facts.name} of survey {survey.name} is new and its "
                f"{' and '.join(m.replace('_arcsec', '') for m in missing)} is unknown; give them in the "
                "FITS header (CD/CDELT or PIXSCALE; PSF_FWHM) or with --pixel-scale/--psf-fwhm"
            )
        if not 0 < facts.pixel_scale_arcsec < 60 or not 0 < facts.psf_fwhm_arcsec < 60:
            raise ApplicationError(
                f"{source}: band {facts.name}: pixel scale {facts.pixel_scale_arcsec} and PSF FWHM "
                f"{facts.psf_fwhm_arcsec} must be in arcsec, between 0 and 60 (wrong units?)"
            )
        return Band.objects.create(
            survey=survey,
            name=facts.name,
            instrument=facts.instrument or survey.instrument,
            pixel_scale_arcsec=facts.pixel_scale_arcsec,
            psf_fwhm_arcsec=facts.psf_fwhm_arcsec,
            zero_point_ab=facts.zero_point_ab,
        )
    check_band_facts(band=band, facts=facts, source=source)
    if band.zero_point_ab is None and facts.zero_point_ab is not None:
        band.zero_point_ab = facts.zero_point_ab
        band.save(update_fields=["zero_point_ab"])
    return band


def check_band_facts(*, band: Band, facts: BandFacts, source: str) -> None:
    for label, ours, theirs in (
        ("pixel scale", band.pixel_scale_arcsec, facts.pixel_scale_arcsec),
        ("PSF FWHM", band.psf_fwhm_arcsec, facts.psf_fwhm_arcsec),
        ("zero point", band.zero_point_ab, facts.zero_point_ab),
    ):
        if _differs(ours, theirs):
            raise ApplicationError(
                f"{source}: {label} {theirs:g} differs from band {band}'s {ours:g} (wrong units, "
                "or a different instrument setting: ingest it as another band or survey)"
            )


@dataclass
class SurveyDeletion:
    survey: str
    rows: dict[str, int]


def delete_tree(queryset: QuerySet) -> dict[str, int]:
    """Deletes ``queryset`` and everything that cascades from it, set-based.

    Django's collector loads every object it cascades to; for a survey with a million
    galaxies that takes minutes. Here each dependent table is deleted with one
    ``DELETE ... WHERE fk IN (subquery)``, children first; SET_NULL is honoured and a
    PROTECTed dependent stops the deletion with a message.
    """
    model = queryset.model
    counts: dict[str, int] = {}
    for rel in model._meta.related_objects:
        related = rel.related_model._base_manager
        if rel.many_to_many:
            through = rel.through
            fk = next(f for f in through._meta.fields if f.is_relation and f.related_model is model)
            through._base_manager.filter(**{f"{fk.name}__in": queryset})._raw_delete(queryset.db)
            continue
        dependents = related.filter(**{f"{rel.field.name}__in": queryset})
        if rel.on_delete is models.CASCADE:
            for label, n in delete_tree(dependents).items():
                counts[label] = counts.get(label, 0) + n
        elif rel.on_delete is models.SET_NULL:
            dependents.update(**{rel.field.name: None})
        elif rel.on_delete is not models.DO_NOTHING and dependents.exists():
            raise ApplicationError(f"cannot delete: {rel.related_model._meta.verbose_name_plural} still refer to it")
    for m2m in model._meta.many_to_many:
        through = m2m.remote_field.through
        fk = next(f for f in through._meta.fields if f.is_relation and f.related_model is model)
        through._base_manager.filter(**{f"{fk.name}__in": queryset})._raw_delete(queryset.db)
    counts[model._meta.label] = queryset._raw_delete(queryset.db)
    return counts


@transaction.atomic
def survey_delete(*, survey: Survey) -> SurveyDeletion:
    """Deletes a survey with everything hanging off it, files and shards included.

    Rows go bottom-up in set-based deletes; files go once the transaction commits.
    """
    survey = Survey.objects.select_for_update().get(pk=survey.pk)
    files = list(Cutout.objects.filter(galaxy__survey=survey).values_list("fits_file", flat=True))
    files += list(QuasarSpectrum.objects.filter(survey=survey).values_list("fits_file", flat=True))
    files += list(MockImage.objects.filter(snapshot__run__survey=survey).values_list("fits_file", flat=True))
    image_shards = list(ImageShard.objects.filter(survey=survey).values_list("path", flat=True))
    spectrum_shards = list(SpectrumShard.objects.filter(survey=survey).values_list("path", flat=True))
    name = survey.name
    rows = delete_tree(Survey.objects.filter(pk=survey.pk))
    transaction.on_commit(lambda: (delete_stored_files(files), delete_shard_files(image_shards, spectrum_shards)))
    return SurveyDeletion(survey=name, rows=rows)
