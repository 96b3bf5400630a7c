"""Quasar spectra ingest: SDSS spec-lite files parsed in parallel, put on the SDSS grid, packed."""

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from catalog import spectral_grid
from catalog.bulk import UpsertCounts
from catalog.errors import IngestError
from catalog.ingest.fitsfiles import FitsProblem, read_speclite
from catalog.ingest.parallel import parallel_map
from catalog.models import QuasarSpectrum, SpectrumShard, Survey
from catalog.progress import NullProgress, Progress
from catalog.services.files import StagedFiles
from catalog.services.galaxies import FITS_SUFFIXES
from catalog.services.surveys import survey_ingest_batch
from catalog.sky import sky_columns


@dataclass
class ParsedSpectrum:
    path: str
    checksum: str
    plate: int
    mjd: int
    fiber: int
    thing_id: int | None
    ra: float
    dec: float
    z: float
    z_err: float | None
    object_class: str
    start_index: int
    flux: np.ndarray
    ivar: np.ndarray
    resampled: bool
    snr: float


@dataclass
class SpectraIngestReport:
    survey: str
    files: int
    spectra: UpsertCounts = field(default_factory=UpsertCounts)
    resampled: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        s = self.spectra
        rate = self.files / self.seconds if self.seconds else 0
        return (
            f"survey {self.survey}: {self.files} files -> {s.created} spectra created, {s.updated} updated, "
            f"{s.unchanged} unchanged ({self.resampled} resampled onto the SDSS grid) in {self.seconds:.1f} s "
            f"({rate:,.0f} spectra/s)"
        )


def find_spectrum_files(paths: list[Path]) -> list[Path]:
    """FITS files among ``paths``, directories searched recursively."""
    found, problems = [], []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            found += sorted(
                p for p in path.rglob("*") if p.is_file() and any(p.name.lower().endswith(s) for s in FITS_SUFFIXES)
            )
        elif path.is_file():
            found.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    if problems:
        raise IngestError(problems)
    if not found:
        raise IngestError([f"no FITS files found in {', '.join(map(str, paths))}"])
    return found


def parse_spectrum_file(path: str) -> ParsedSpectrum | str:
    """A parsed, gridded spectrum, or the problem with the file as a message."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return f"{path}: cannot read ({exc.strerror})"
    try:
        spec = read_speclite(raw)
        start, flux, ivar, resampled = spectral_grid.to_sdss_grid(spec.loglam, spec.flux, spec.ivar)
    except (FitsProblem, ValueError) as exc:
        return f"{path}: {exc}"
    return ParsedSpectrum(
        path=path,
        checksum=hashlib.sha256(raw).hexdigest(),
        plate=spec.plate,
        mjd=spec.mjd,
        fiber=spec.fiber,
        thing_id=spec.thing_id,
        ra=spec.ra,
        dec=spec.dec,
        z=spec.z,
        z_err=spec.z_err,
        object_class=spec.object_class,
        start_index=start,
        flux=flux,
        ivar=ivar,
        resampled=resampled,
        snr=spectral_grid.median_snr(start, flux, ivar, spec.z),
    )


def parse_spectrum_files(
    files: list[Path], progress: Progress, workers: int | None = None
) -> list[ParsedSpectrum | str]:
    progress.stage("reading spectra", len(files))
    results = []
    for result in parallel_map(parse_spectrum_file, [str(p) for p in files], workers):
        results.append(result)
        progress.advance()
    return results


def quasar_spectra_ingest(
    *,
    survey_name: str,
    paths: list[Path],
    survey_title: str = "",
    progress: Progress | None = None,
    workers: int | None = None,
) -> SpectraIngestReport:
    """Ingests SDSS spec-lite files into a spectroscopic survey; atomic and re-runnable."""
    progress = progress or NullProgress()
    started = time.perf_counter()
    files = find_spectrum_files(paths)
    parsed = parse_spectrum_files(files, progress, workers)
    problems = [p for p in parsed if isinstance(p, str)]
    spectra = [p for p in parsed if not isinstance(p, str)]
    seen: dict[tuple, str] = {}
    for s in spectra:
        key = (s.plate, s.mjd, s.fiber)
        if key in seen:
            problems.append(f"{s.path}: plate-mjd-fiber {s.plate}-{s.mjd}-{s.fiber} also in {seen[key]}")
        seen[key] = s.path
    if problems:
        raise IngestError(problems)

    report = SpectraIngestReport(survey=survey_name, files=len(files))
    try:
        with survey_ingest_batch(
            name=survey_name, kind=Survey.Kind.SPECTROSCOPIC, title=survey_title, instrument="SDSS/BOSS"
        ) as batch:
            _write_spectra(batch.survey, spectra, batch.files, report, progress)
    finally:
        progress.close()
    report.seconds = time.perf_counter() - started
    return report


def _existing(spectra: list[ParsedSpectrum]) -> dict[tuple, tuple]:
    plates = sorted({s.plate for s in spectra})
    rows = {}
    for i in range(0, len(plates), 500):
        for pk, plate, mjd, fiber, survey_id, survey_name, checksum, name in QuasarSpectrum.objects.filter(
            plate__in=plates[i : i + 500]
        ).values_list("pk", "plate", "mjd", "fiber", "survey_id", "survey__name", "checksum", "fits_file"):
            rows[(plate, mjd, fiber)] = (pk, survey_id, survey_name, checksum, name)
    return rows


def _write_spectra(
    survey: Survey, spectra: list[ParsedSpectrum], staged: StagedFiles, report: SpectraIngestReport, progress: Progress
) -> None:
    existing = _existing(spectra)
    problems = []
    todo = []
    for s in spectra:
        prior = existing.get((s.plate, s.mjd, s.fiber))
        if prior and prior[1] != survey.pk:
            problems.append(f"{s.path}: {s.plate}-{s.mjd}-{s.fiber} is already in survey {prior[2]}")
        elif prior and prior[3] == s.checksum:
            report.spectra.unchanged += 1
        else:
            todo.append((s, prior))
    if problems:
        raise IngestError(problems)
    if not todo:
        return
    writer = staged.spectrum_shard(f"spectra/{survey.name}")
    sky = sky_columns(np.array([s.ra for s, _ in todo]), np.array([s.dec for s, _ in todo]))
    new, old = [], []
    progress.stage("writing spectra", len(todo))
    for k, (s, prior) in enumerate(todo):
        name = staged.save(
            f"spectra/{survey.name}/spec-{s.plate:04d}-{s.mjd:05d}-{s.fiber:04d}.fits", Path(s.path).read_bytes()
        )
        offset = writer.append(s.flux, s.ivar)
        row = QuasarSpectrum(
            pk=prior[0] if prior else None,
            survey=survey,
            plate=s.plate,
            mjd=s.mjd,
            fiber=s.fiber,
            thing_id=s.thing_id,
            object_class=s.object_class,
            ra=s.ra,
            dec=s.dec,
            healpix=int(sky.healpix[k]),
            cx=float(sky.cx[k]),
            cy=float(sky.cy[k]),
            cz=float(sky.cz[k]),
            z_qso=s.z,
            z_qso_err=s.z_err,
            snr=s.snr,
            loglam_start_index=s.start_index,
            n_pixels=s.flux.size,
            resampled=s.resampled,
            fits_file=name,
            checksum=s.checksum,
            shard_offset=offset,
        )
        report.resampled += s.resampled
        if prior:
            staged.supersede(prior[4])
            old.append(row)
        else:
            new.append(row)
        progress.advance()
    writer.close()
    shard = SpectrumShard.objects.create(
        survey=survey, path=writer.path, n_spectra=writer.n_spectra, n_pixels=writer.n_pixels
    )
    for row in new + old:
        row.shard = shard
    QuasarSpectrum.objects.bulk_create(new, batch_size=2000)
    if old:
        fields = [
            f.name
            for f in QuasarSpectrum._meta.concrete_fields
            if f.name not in ("id", "created_at", "plate", "mjd", "fiber", "survey")
        ]
        QuasarSpectrum.objects.bulk_update(old, fields, batch_size=1000)
    report.spectra.created += len(new)
    report.spectra.updated += len(old)
