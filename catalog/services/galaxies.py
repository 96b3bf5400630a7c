"""Galaxy catalog ingest: validated rows upserted in bulk, cutouts stored and packed."""

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.utils.text import get_valid_filename

from catalog.bulk import UpsertCounts, bulk_upsert
from catalog.errors import ApplicationError, IngestError
from catalog.ingest import tables
from catalog.ingest.fitsfiles import FitsProblem, read_image_files, read_image_fits
from catalog.models import Band, Cutout, Galaxy, ImageShard, Survey
from catalog.progress import NullProgress, Progress
from catalog.services.files import ImageShardSet, StagedFiles
from catalog.services.notify import survey_ingested
from catalog.services.surveys import BandFacts, band_ensure, check_band_facts, survey_ingest_batch
from catalog.sky import sky_columns

FITS_SUFFIXES = (".fits", ".fit", ".fits.gz", ".fit.gz", ".fits.fz")
GALAXY_FIELDS = (
    "source_id",
    "ra",
    "dec",
    "healpix",
    "cx",
    "cy",
    "cz",
    "mag",
    "mag_err",
    "z_spec",
    "z_spec_err",
    "z_phot",
    "z_phot_err",
    "log_stellar_mass",
)


@dataclass
class GalaxyIngestReport:
    survey: str
    survey_created: bool
    rows: int
    galaxies: UpsertCounts
    cutouts: UpsertCounts = field(default_factory=UpsertCounts)
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        g, c = self.galaxies, self.cutouts
        text = (
            f"survey {self.survey}{' (created)' if self.survey_created else ''}: {self.rows} catalog rows -> "
            f"{g.created} galaxies created, {g.updated} updated, {g.unchanged} unchanged"
        )
        if c.created or c.updated or c.unchanged:
            text += f"; cutouts: {c.created} created, {c.updated} updated, {c.unchanged} unchanged"
        rate = self.rows / self.seconds if self.seconds else 0
        return text + f" in {self.seconds:.1f} s ({rate:,.0f} rows/s)"


def _fits_stem(path: Path) -> str | None:
    name = path.name
    for suffix in FITS_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return None


@dataclass(frozen=True)
class CutoutFile:
    path: Path
    source_id: str
    band: str | None  # from the file name; None: from the header or the detection band


def match_cutout_files(cutout_dir: Path, source_ids: set[str]) -> list[CutoutFile]:
    """Cutout files named ``<source_id>.fits`` or ``<source_id>_<BAND>.fits`` (or ``-BAND``)."""
    if not cutout_dir.is_dir():
        raise IngestError([f"{cutout_dir}: not a directory"])
    files, problems = [], []
    for path in sorted(cutout_dir.rglob("*")):
        stem = _fits_stem(path) if path.is_file() else None
        if stem is None:
            continue
        if stem in source_ids:
            files.append(CutoutFile(path, stem, None))
            continue
        for sep in ("_", "-"):
            head, _, band = stem.rpartition(sep)
            if head in source_ids and band:
                files.append(CutoutFile(path, head, band))
                break
        else:
            problems.append(f"{path}: no galaxy in the catalog has source id {stem!r} (cutouts are named by source id)")
    if problems:
        raise IngestError(problems)
    return files


def galaxy_catalog_ingest(
    *,
    survey_name: str,
    catalog_path: Path,
    cutout_dir: Path | None = None,
    mapping: dict[str, str] | None = None,
    keep_columns: list[str] | None = None,
    band: BandFacts | None = None,
    survey_title: str = "",
    field_name: str = "",
    instrument: str = "",
    progress: Progress | None = None,
) -> GalaxyIngestReport:
    """Ingests a galaxy catalog (and optionally its cutouts) into an imaging survey.

    Everything is validated before anything is written, and everything is written in one
    transaction: a bad row or a bad cutout leaves the database and the storage as they
    were. Re-running the same ingest changes nothing.
    """
    progress = progress or NullProgress()
    started = time.perf_counter()
    catalog_path = Path(catalog_path)
    existing = Survey.objects.filter(name=survey_name).first()
    detection_band = (existing.detection_band if existing else "") or (band.name if band else "")

    progress.stage(f"reading {catalog_path.name}", None)
    table = tables.read_table(catalog_path)
    catalog = tables.validate(
        table, catalog_path, mapping=mapping, band=detection_band or None, keep_columns=keep_columns
    )
    cutout_files = match_cutout_files(Path(cutout_dir), set(catalog.source_id.tolist())) if cutout_dir else []

    try:
        with survey_ingest_batch(
            name=survey_name,
            kind=Survey.Kind.IMAGING,
            title=survey_title,
            field_name=field_name,
            instrument=instrument,
            detection_band=detection_band,
        ) as batch:
            survey = batch.survey
            galaxies = _upsert_galaxies(survey, catalog, progress)
            report = GalaxyIngestReport(
                survey=survey.name,
                survey_created=batch.survey_created,
                rows=len(catalog),
                galaxies=galaxies,
                notices=catalog.notices,
            )
            if cutout_files:
                report.cutouts = _ingest_cutouts(survey, cutout_files, band, batch.files, progress)
                if report.cutouts.created or report.cutouts.updated:
                    survey_ingested(survey_id=survey.pk, images="cutout")
    finally:
        progress.close()
    report.seconds = time.perf_counter() - started
    return report


def _nullable(values: np.ndarray) -> list:
    """float64 array -> list with None for NaN (SQL NULL)."""
    out = values.astype(object)
    out[~np.isfinite(values)] = None
    return out.tolist()


def _upsert_galaxies(survey: Survey, catalog: tables.CatalogColumns, progress: Progress) -> UpsertCounts:
    cols = catalog.columns
    sky = sky_columns(cols["ra"], cols["dec"])
    columns = [
        catalog.source_id.tolist(),
        cols["ra"].tolist(),
        cols["dec"].tolist(),
        sky.healpix.tolist(),
        sky.cx.tolist(),
        sky.cy.tolist(),
        sky.cz.tolist(),
        *(_nullable(cols[f]) for f in GALAXY_FIELDS[7:]),
    ]
    fields = list(GALAXY_FIELDS)
    if catalog.properties is not None:
        fields.append("properties")
        columns.append(catalog.properties)
    progress.stage("writing galaxies", len(catalog))
    return bulk_upsert(
        model=Galaxy,
        fields=fields,
        rows=zip(*columns, strict=True),
        conflict_fields=["survey", "source_id"],
        constants={"survey_id": survey.pk},
        on_chunk=progress.advance,
    )


def _galaxy_ids(survey: Survey, source_ids: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for start in range(0, len(source_ids), 5000):
        chunk = source_ids[start : start + 5000]
        ids.update(Galaxy.objects.filter(survey=survey, source_id__in=chunk).values_list("source_id", "pk"))
    return ids


def _ingest_cutouts(
    survey: Survey, files: list[CutoutFile], band_option: BandFacts | None, staged: StagedFiles, progress: Progress
) -> UpsertCounts:
    galaxy_ids = _galaxy_ids(survey, sorted({f.source_id for f in files}))
    existing = {
        (g, b): (pk, checksum, name)
        for pk, g, b, checksum, name in Cutout.objects.filter(galaxy__survey=survey).values_list(
            "pk", "galaxy_id", "band_id", "checksum", "fits_file"
        )
    }
    bands: dict[str, Band] = {b.name: b for b in Band.objects.filter(survey=survey)}
    shards = ImageShardSet(survey, staged, ImageShard.Kind.CUTOUT, f"cutouts/{survey.name}", Cutout)
    counts = UpsertCounts()
    problems: list[str] = []
    progress.stage("cutouts", len(files))
    known = {v[1] for v in existing.values()}
    for f, (checksum, raw, image) in zip(files, read_image_files([str(f.path) for f in files], known), strict=True):
        progress.advance()
        galaxy_id = galaxy_ids[f.source_id]
        if image is None:  # its checksum is known: unchanged if it is this galaxy's cutout
            band = bands.get(f.band or survey.detection_band or (band_option.name if band_option else ""))
            prior = existing.get((galaxy_id, band.pk)) if band else None
            if prior and prior[1] == checksum:
                counts.unchanged += 1
                continue
            try:
                image = read_image_fits(raw)
            except FitsProblem as exc:
                image = f"{f.path}: {exc}"
        if isinstance(image, str):
            problems.append(image)
            continue
        band_name = f.band or image.band or survey.detection_band or (band_option.name if band_option else None)
        if not band_name:
            problems.append(f"{f.path}: band unknown: name the file <id>_<BAND>.fits, set FILTER, or pass --band")
            continue
        facts = BandFacts(
            name=band_name,
            pixel_scale_arcsec=image.pixel_scale_arcsec,
            psf_fwhm_arcsec=image.psf_fwhm_arcsec,
            zero_point_ab=image.zero_point_ab,
            instrument=image.instrument,
        )
        if band_option is not None and band_option.name == band_name:
            facts = band_option.merged(facts)
        try:
            band = bands.get(band_name)
            if band is None:
                band = bands[band_name] = band_ensure(survey=survey, facts=facts, source=str(f.path))
            else:
                check_band_facts(band=band, facts=facts, source=str(f.path))
        except ApplicationError as exc:
            problems.append(exc.message)
            continue
        height, width = image.data.shape
        if min(height, width) < 8:
            problems.append(f"{f.path}: image {height}x{width} is smaller than 8x8 pixels")
            continue
        prior = existing.get((galaxy_id, band.pk))
        if prior and prior[1] == checksum:
            counts.unchanged += 1
            continue
        if problems:
            continue  # keep validating, but write nothing more once something is wrong
        name = staged.save(f"cutouts/{survey.name}/{band.name}/{get_valid_filename(f.source_id)}.fits", raw)
        cutout = Cutout(
            pk=prior[0] if prior else None,
            galaxy_id=galaxy_id,
            band=band,
            fits_file=name,
            checksum=checksum,
            width=width,
            height=height,
            pixel_scale_arcsec=facts.pixel_scale_arcsec or band.pixel_scale_arcsec,
            psf_fwhm_arcsec=facts.psf_fwhm_arcsec or band.psf_fwhm_arcsec,
            zero_point_ab=facts.zero_point_ab if facts.zero_point_ab is not None else band.zero_point_ab,
        )
        if prior:
            staged.supersede(prior[2])
            counts.updated += 1
        else:
            counts.created += 1
        shards.add((band.pk,), image.data, cutout)
    if problems:
        raise IngestError(problems)
    shards.flush_all()
    return counts
