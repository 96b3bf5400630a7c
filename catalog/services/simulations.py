"""Simulation run ingest: one run directory (run.json, snapshots, mergers, mock images).

Layout (README, "Simulation runs"):

    RUN/run.json          {"name": ..., "code": ..., "description": ..., "properties": {...}}
    RUN/snapshots.<csv|ecsv|fits>   one row per snapshot (SNAPSHOT_COLUMNS)
    RUN/mergers.<csv|ecsv|fits>     scale_factor, mass_ratio[, kind]   (optional)
    RUN/images/<anything>_a<scale>_cam<NN>_<FILTER>[_snr<S>].fits
"""

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.table import Table

from catalog.bulk import UpsertCounts
from catalog.errors import ApplicationError, IngestError
from catalog.ingest.fitsfiles import FitsProblem, read_image_files, read_image_fits
from catalog.ingest.tables import read_table
from catalog.models import Band, ImageShard, MergerEvent, MockImage, SimulationRun, Snapshot, Survey
from catalog.progress import NullProgress, Progress
from catalog.services.files import ImageShardSet
from catalog.services.galaxies import FITS_SUFFIXES
from catalog.services.notify import survey_ingested
from catalog.services.surveys import BandFacts, band_ensure, check_band_facts, survey_ingest_batch

SNAPSHOT_COLUMNS = {
    "scale_factor": float,
    "redshift": float,
    "stellar_mass_msun": float,
    "gas_mass_msun": float,
    "sfr_msun_per_yr": float,
    "gas_inflow_rate_msun_per_yr": float,
    "gas_outflow_rate_msun_per_yr": float,
    "compaction_phase": str,
}
OPTIONAL_SNAPSHOT_COLUMNS = {"halo_mass_msun": float, "half_mass_radius_kpc": float, "counter_rotating_stream": bool}
IMAGE_NAME = re.compile(r"_a(?P<a>\d*\.\d+)_cam(?P<cam>\d+)_(?P<band>[A-Za-z0-9]+)(?:_snr(?P<snr>\d+(?:\.\d+)?))?$")
SCALE_FACTOR_MATCH = 5e-4
MAJOR_MERGER_RATIO = 0.25


@dataclass
class SimulationIngestReport:
    survey: str
    run: str
    run_created: bool
    snapshots: UpsertCounts = field(default_factory=UpsertCounts)
    mergers: int = 0
    images: UpsertCounts = field(default_factory=UpsertCounts)
    seconds: float = 0.0

    def summary(self) -> str:
        s, i = self.snapshots, self.images
        return (
            f"run {self.run} ({'created' if self.run_created else 'existing'}) in survey {self.survey}: "
            f"snapshots {s.created} created, {s.updated} updated, {s.unchanged} unchanged; {self.mergers} mergers; "
            f"mock images {i.created} created, {i.updated} updated, {i.unchanged} unchanged in {self.seconds:.1f} s"
        )


def _find_table(run_dir: Path, stem: str, required: bool) -> Path | None:
    for suffix in (".ecsv", ".csv", ".fits", ".vot", ".xml"):
        path = run_dir / f"{stem}{suffix}"
        if path.exists():
            return path
    if required:
        raise IngestError([f"{run_dir}: missing {stem}.csv (or .ecsv/.fits)"])
    return None


def _run_metadata(run_dir: Path) -> dict:
    path = run_dir / "run.json"
    if not path.exists():
        raise IngestError([f"{run_dir}: missing run.json"])
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise IngestError([f"{path}: not valid JSON ({exc})"]) from None
    if not isinstance(meta, dict) or not str(meta.get("name", "")).strip():
        raise IngestError([f'{path}: needs a non-empty "name"'])
    if not isinstance(meta.get("properties", {}), dict):
        raise IngestError([f'{path}: "properties" must be an object'])
    return meta


def _snapshot_rows(path: Path) -> list[dict]:
    table = read_table(path)
    lower = {c.lower(): c for c in table.colnames}
    missing = [c for c in SNAPSHOT_COLUMNS if c not in lower]
    if missing:
        raise IngestError([f"{path}: missing column(s) {', '.join(missing)} (columns: {', '.join(table.colnames)})"])
    problems, rows = [], []
    phases = set(Snapshot.CompactionPhase.values)
    for i, rec in enumerate(table, start=1):
        row = {}
        for name, kind in {**SNAPSHOT_COLUMNS, **OPTIONAL_SNAPSHOT_COLUMNS}.items():
            if name not in lower:
                continue
            value = rec[lower[name]]
            if np.ma.is_masked(value):
                value = None
            elif kind is float:
                value = float(value)
            elif kind is bool:
                value = str(value).strip().lower() in ("true", "1", "yes", "t")
            else:
                value = str(value).strip()
            row[name] = value
        a, z = row["scale_factor"], row["redshift"]
        if a is None or not np.isfinite(a) or not 0 < a <= 1:
            problems.append(f"{path} row {i}: scale_factor {a} outside (0, 1]")
        elif z is None or not np.isfinite(z) or abs(z - (1 / a - 1)) > 0.01 * (1 + z):
            problems.append(
                f"{path} row {i}: redshift {z} inconsistent with scale_factor {a} (1/a - 1 = {1 / a - 1:.4f})"
            )
        for name in SNAPSHOT_COLUMNS:
            if SNAPSHOT_COLUMNS[name] is float and name not in ("scale_factor", "redshift"):
                v = row[name]
                if v is None or not np.isfinite(v) or v < 0:
                    problems.append(f"{path} row {i}: {name} {v} must be a non-negative number")
        if row["compaction_phase"] not in phases:
            problems.append(
                f"{path} row {i}: compaction_phase {row['compaction_phase']!r} not one of {', '.join(sorted(phases))}"
            )
        for name in ("halo_mass_msun", "half_mass_radius_kpc"):
            v = row.get(name)
            if v is not None and (not np.isfinite(v) or v < 0):
                problems.append(f"{path} row {i}: {name} {v} must be a non-negative number")
        rows.append(row)
    scale = [r["scale_factor"] for r in rows]
    if len(set(scale)) != len(scale):
        problems.append(f"{path}: duplicate scale_factor values")
    if problems:
        raise IngestError(problems)
    return rows


def _merger_rows(path: Path | None) -> list[tuple[float, float, str]]:
    if path is None:
        return []
    table = Table.read(path, format="ascii.csv") if path.suffix == ".csv" else read_table(path)
    if len(table) == 0:
        return []
    lower = {c.lower(): c for c in table.colnames}
    missing = [c for c in ("scale_factor", "mass_ratio") if c not in lower]
    if missing:
        raise IngestError([f"{path}: missing column(s) {', '.join(missing)}"])
    problems, rows = [], []
    for i, rec in enumerate(table, start=1):
        a, ratio = float(rec[lower["scale_factor"]]), float(rec[lower["mass_ratio"]])
        derived = "major" if ratio >= MAJOR_MERGER_RATIO else "minor"
        kind = str(rec[lower["kind"]]).strip().lower() if "kind" in lower else derived
        if not 0 < a <= 1:
            problems.append(f"{path} row {i}: scale_factor {a} outside (0, 1]")
        if not 0 < ratio <= 1:
            problems.append(f"{path} row {i}: mass_ratio {ratio} outside (0, 1] (secondary/primary)")
        if kind not in ("major", "minor"):
            problems.append(f"{path} row {i}: kind {kind!r} is not major or minor")
        rows.append((round(a, 6), round(ratio, 6), kind))
    if problems:
        raise IngestError(problems)
    return sorted(set(rows))


@dataclass(frozen=True)
class ImageFile:
    path: Path
    scale_factor: float
    camera: int
    band: str
    snr: float | None


def _image_files(run_dir: Path) -> list[ImageFile]:
    images_dir = run_dir / "images"
    if not images_dir.is_dir():
        return []
    files, problems = [], []
    seen = {}
    for path in sorted(images_dir.rglob("*")):
        suffix = next((s for s in FITS_SUFFIXES if path.name.lower().endswith(s)), None)
        if suffix is None or not path.is_file():
            continue
        match = IMAGE_NAME.search(path.name[: -len(suffix)])
        if not match:
            problems.append(f"{path}: name does not follow <run>_a<scale>_cam<NN>_<FILTER>[_snr<S>].fits")
            continue
        f = ImageFile(
            path, float(match["a"]), int(match["cam"]), match["band"], float(match["snr"]) if match["snr"] else None
        )
        key = (f.scale_factor, f.camera, f.band, f.snr)
        if key in seen:
            problems.append(f"{path}: same snapshot, camera, filter and S/N as {seen[key]}")
        seen[key] = path
        files.append(f)
    if problems:
        raise IngestError(problems)
    return files


def simulation_run_ingest(
    *, survey_name: str, run_dir: Path, survey_title: str = "", progress: Progress | None = None
) -> SimulationIngestReport:
    """Ingests one simulation run directory; atomic and re-runnable."""
    progress = progress or NullProgress()
    started = time.perf_counter()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise IngestError([f"{run_dir}: not a directory"])
    meta = _run_metadata(run_dir)
    snapshots = _snapshot_rows(_find_table(run_dir, "snapshots", required=True))
    mergers = _merger_rows(_find_table(run_dir, "mergers", required=False))
    images = _image_files(run_dir)
    known = np.array(sorted(r["scale_factor"] for r in snapshots))
    problems = []
    for f in images:
        nearest = known[np.argmin(np.abs(known - f.scale_factor))]
        if abs(nearest - f.scale_factor) > SCALE_FACTOR_MATCH:
            problems.append(f"{f.path}: no snapshot at a = {f.scale_factor}")
    if problems:
        raise IngestError(problems)

    try:
        with survey_ingest_batch(name=survey_name, kind=Survey.Kind.SIMULATION, title=survey_title) as batch:
            survey = batch.survey
            run, created = SimulationRun.objects.get_or_create(
                survey=survey,
                name=str(meta["name"]).strip(),
                defaults={
                    "code": meta.get("code", ""),
                    "description": meta.get("description", ""),
                    "properties": meta.get("properties", {}),
                },
            )
            if not created:
                changed = {
                    k: meta.get(k, getattr(run, k) if k != "properties" else {})
                    for k in ("code", "description", "properties")
                }
                if any(getattr(run, k) != v for k, v in changed.items()):
                    SimulationRun.objects.filter(pk=run.pk).update(**changed)
            report = SimulationIngestReport(survey=survey.name, run=run.name, run_created=created)
            snap_ids = _upsert_snapshots(run, snapshots, report)
            report.mergers = _replace_mergers(run, mergers)
            if images:
                _ingest_images(survey, run, images, snap_ids, batch.files, report, progress)
                if report.images.created or report.images.updated:
                    survey_ingested(survey_id=survey.pk, images="mock_image")
    finally:
        progress.close()
    report.seconds = time.perf_counter() - started
    return report


def _upsert_snapshots(run: SimulationRun, rows: list[dict], report: SimulationIngestReport) -> dict[float, int]:
    existing = {s.scale_factor: s for s in Snapshot.objects.filter(run=run)}
    for row in rows:
        values = {k: v for k, v in row.items() if k != "scale_factor"}
        snap = existing.get(row["scale_factor"])
        if snap is None:
            existing[row["scale_factor"]] = Snapshot.objects.create(run=run, **row)
            report.snapshots.created += 1
        elif any(getattr(snap, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(snap, k, v)
            snap.save()
            report.snapshots.updated += 1
        else:
            report.snapshots.unchanged += 1
    return {a: s.pk for a, s in existing.items()}


def _replace_mergers(run: SimulationRun, rows: list[tuple[float, float, str]]) -> int:
    current = sorted(MergerEvent.objects.filter(run=run).values_list("scale_factor", "mass_ratio", "kind"))
    if current != rows:
        MergerEvent.objects.filter(run=run).delete()
        MergerEvent.objects.bulk_create(
            [MergerEvent(run=run, scale_factor=a, mass_ratio=r, kind=k) for a, r, k in rows]
        )
    return len(rows)


def _ingest_images(survey, run, files, snap_ids, staged, report, progress) -> None:
    known = np.array(sorted(snap_ids))
    existing = {
        (s, cam, band, snr): (pk, checksum, name)
        for pk, s, cam, band, snr, checksum, name in MockImage.objects.filter(snapshot__run=run).values_list(
            "pk", "snapshot_id", "camera", "filter_name", "signal_to_noise", "checksum", "fits_file"
        )
    }
    bands = {b.name: b for b in Band.objects.filter(survey=survey)}
    shards = ImageShardSet(survey, staged, ImageShard.Kind.MOCK_IMAGE, f"mock_images/{survey.name}", MockImage)
    problems = []
    progress.stage(f"mock images of {run.name}", len(files))
    known_checksums = {v[1] for v in existing.values()}
    reads = read_image_files([str(f.path) for f in files], known_checksums)
    for f, (checksum, raw, image) in zip(files, reads, strict=True):
        progress.advance()
        a = float(known[np.argmin(np.abs(known - f.scale_factor))])
        snapshot_id = snap_ids[a]
        prior = existing.get((snapshot_id, f.camera, f.band, f.snr))
        if prior and prior[1] == checksum:
            report.images.unchanged += 1
            continue
        if image is None:  # the same bytes as another view's image: parse them here
            try:
                image = read_image_fits(raw)
            except FitsProblem as exc:
                image = f"{f.path}: {exc}"
        if isinstance(image, str):
            problems.append(image)
            continue
        facts = BandFacts(
            name=f.band,
            pixel_scale_arcsec=image.pixel_scale_arcsec,
            psf_fwhm_arcsec=image.psf_fwhm_arcsec,
            zero_point_ab=image.zero_point_ab,
            instrument=image.instrument,
        )
        try:
            if f.band not in bands:
                bands[f.band] = band_ensure(survey=survey, facts=facts, source=str(f.path))
            else:
                check_band_facts(band=bands[f.band], facts=facts, source=str(f.path))
        except ApplicationError as exc:
            problems.append(exc.message)
            continue
        if problems:
            continue
        band = bands[f.band]
        name = staged.save(f"mock_images/{survey.name}/{run.name}/{f.path.name}", raw)
        height, width = image.data.shape
        obj = MockImage(
            pk=prior[0] if prior else None,
            snapshot_id=snapshot_id,
            camera=f.camera,
            instrument=image.instrument or band.instrument,
            filter_name=f.band,
            signal_to_noise=f.snr,
            fits_file=name,
            checksum=checksum,
            width=width,
            height=height,
            pixel_scale_arcsec=facts.pixel_scale_arcsec or band.pixel_scale_arcsec,
            psf_fwhm_arcsec=facts.psf_fwhm_arcsec or band.psf_fwhm_arcsec,
        )
        if prior:
            staged.supersede(prior[2])
            report.images.updated += 1
        else:
            report.images.created += 1
        shards.add((band.pk,), image.data, obj)
    if problems:
        raise IngestError(problems)
    shards.flush_all()
