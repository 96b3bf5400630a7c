"""Reads of the catalog: cone searches, packed pixel reads, summaries."""

import math
from collections import defaultdict

import numpy as np
from django.db.models import Count, F, Q, QuerySet

from catalog import packstore
from catalog.errors import ApplicationError, NotFound
from catalog.models import (
    Band,
    Cutout,
    DLAAbsorber,
    DLARelease,
    Galaxy,
    ImageShard,
    MockImage,
    QuasarSpectrum,
    SimulationRun,
    SpectrumShard,
    Survey,
)
from catalog.services.files import pack_root
from catalog.sky import cone_pixel_ranges, unit_vectors


def validate_cone(*, ra: float, dec: float, radius_deg: float) -> None:
    """Raises ApplicationError unless the cone is well-formed (ICRS degrees)."""
    for name, value in (("ra", ra), ("dec", dec), ("radius", radius_deg)):
        if value is None or not math.isfinite(value):
            raise ApplicationError(f"{name} must be a finite number of degrees")
    if not 0.0 <= ra < 360.0:
        raise ApplicationError(f"ra {ra} outside [0, 360) degrees")
    if not -90.0 <= dec <= 90.0:
        raise ApplicationError(f"dec {dec} outside [-90, 90] degrees")
    if not 0.0 < radius_deg <= 180.0:
        raise ApplicationError(f"radius {radius_deg} outside (0, 180] degrees")


def cone_filter(queryset: QuerySet, *, ra: float, dec: float, radius_deg: float) -> QuerySet:
    """Rows of a SkyPosition queryset within ``radius_deg`` of (ra, dec).

    The HEALPix ranges let the index find candidates; the unit-vector dot product keeps
    exactly those inside the cone.
    """
    validate_cone(ra=ra, dec=dec, radius_deg=radius_deg)
    ranges = cone_pixel_ranges(ra, dec, radius_deg)
    pixel_q = Q()
    for lo, hi in ranges:
        pixel_q |= Q(healpix__gte=lo, healpix__lt=hi)
    x0, y0, z0 = (float(v[0]) for v in unit_vectors(np.array([ra]), np.array([dec])))
    cos_r = math.cos(math.radians(radius_deg))
    return (
        queryset.filter(pixel_q).alias(_cos_sep=F("cx") * x0 + F("cy") * y0 + F("cz") * z0).filter(_cos_sep__gte=cos_r)
    )


def galaxy_cone_search(*, ra: float, dec: float, radius_deg: float, survey: Survey | None = None) -> QuerySet[Galaxy]:
    queryset = Galaxy.objects.all() if survey is None else Galaxy.objects.filter(survey=survey)
    return cone_filter(queryset, ra=ra, dec=dec, radius_deg=radius_deg)


def spectrum_cone_search(*, ra: float, dec: float, radius_deg: float) -> QuerySet[QuasarSpectrum]:
    return cone_filter(QuasarSpectrum.objects.all(), ra=ra, dec=dec, radius_deg=radius_deg)


def _crop_or_pad(images: np.ndarray, size: int) -> np.ndarray:
    """Centre-crops or zero-pads (n, h, w) images to (n, size, size)."""
    n, h, w = images.shape
    out = np.zeros((n, size, size), dtype=np.float32)
    sy, sx = max((h - size) // 2, 0), max((w - size) // 2, 0)
    dy, dx = max((size - h) // 2, 0), max((size - w) // 2, 0)
    ch, cw = min(h, size), min(w, size)
    out[:, dy : dy + ch, dx : dx + cw] = images[:, sy : sy + ch, sx : sx + cw]
    return out


def _packed_images(rows: list[tuple[int, int, int]], size: int | None) -> np.ndarray:
    """Images for (shard_id, shard_row) pairs, in order; one memory-mapped read per shard."""
    shards = {s.pk: s for s in ImageShard.objects.filter(pk__in={r[0] for r in rows})}
    by_shard: dict[int, list[int]] = defaultdict(list)
    for i, (shard_id, _, _) in enumerate(rows):
        by_shard[shard_id].append(i)
    if size is None:
        shapes = {(s.height, s.width) for s in shards.values()}
        if len(shapes) > 1:
            raise ApplicationError(f"images have several shapes {sorted(shapes)}: ask for a common size")
        size = next(iter(shapes))[0] if shapes else 0
    out = np.zeros((len(rows), size, size), dtype=np.float32)
    root = pack_root()
    for shard_id, positions in by_shard.items():
        shard = shards[shard_id]
        images = packstore.read_images(
            root, shard.path, (shard.n_images, shard.height, shard.width), [rows[i][1] for i in positions]
        )
        if images.shape[1:] != (size, size):
            images = _crop_or_pad(images, size)
        out[positions] = images
    return out


def cutout_arrays(*, galaxy_ids: list[int], band: Band, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of the galaxies' cutouts in ``band`` from the packed store.

    Returns (galaxy_ids_found, images (n, size, size) float32) in the order asked; galaxies
    without a cutout in that band are left out.
    """
    found = {
        g: (shard, row)
        for g, shard, row in Cutout.objects.filter(band=band, galaxy_id__in=galaxy_ids).values_list(
            "galaxy_id", "shard_id", "shard_row"
        )
    }
    ordered = [g for g in galaxy_ids if g in found]
    images = _packed_images([(*found[g], g) for g in ordered], size)
    return np.asarray(ordered, dtype=np.int64), images


def mock_image_arrays(*, image_ids: list[int], size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of simulation mock images from the packed store: (ids found, images (n, size,
    size) float32) in the order asked."""
    found = {
        i: (shard, row)
        for i, shard, row in MockImage.objects.filter(pk__in=image_ids).values_list("pk", "shard_id", "shard_row")
    }
    ordered = [i for i in image_ids if i in found]
    images = _packed_images([(*found[i], i) for i in ordered], size)
    return np.asarray(ordered, dtype=np.int64), images


def cutout_pixels(cutout: Cutout) -> np.ndarray:
    return _packed_images([(cutout.shard_id, cutout.shard_row, cutout.pk)], None)[0]


def mock_image_pixels(image: MockImage) -> np.ndarray:
    return _packed_images([(image.shard_id, image.shard_row, image.pk)], None)[0]


def spectra_arrays(*, spectrum_ids: list[int]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(loglam_start_index, flux, ivar) per spectrum, in the order asked, from the packed store."""
    rows = {
        r[0]: r
        for r in QuasarSpectrum.objects.filter(pk__in=spectrum_ids).values_list(
            "pk", "shard_id", "shard_offset", "n_pixels", "loglam_start_index"
        )
    }
    missing = [i for i in spectrum_ids if i not in rows]
    if missing:
        raise ApplicationError(f"no spectra with ids {missing[:10]}")
    shards = {s.pk: s for s in SpectrumShard.objects.filter(pk__in={r[1] for r in rows.values()})}
    by_shard: dict[int, list[int]] = defaultdict(list)
    for i, sid in enumerate(spectrum_ids):
        by_shard[rows[sid][1]].append(i)
    out: list = [None] * len(spectrum_ids)
    root = pack_root()
    for shard_id, positions in by_shard.items():
        shard = shards[shard_id]
        chosen = [rows[spectrum_ids[i]] for i in positions]
        arrays = packstore.read_spectra(
            root, shard.path, shard.n_pixels, [c[2] for c in chosen], [c[3] for c in chosen]
        )
        for i, c, (flux, ivar) in zip(positions, chosen, arrays, strict=True):
            out[i] = (c[4], flux, ivar)
    return out


def survey_summaries() -> list[Survey]:
    """Surveys with their object counts (one grouped count per table, no join fan-out)."""
    surveys = list(Survey.objects.prefetch_related("bands").order_by("name"))
    counts = {}
    for label, model in (("n_galaxies", Galaxy), ("n_spectra", QuasarSpectrum)):
        counts[label] = dict(
            model.objects.values_list("survey_id").annotate(n=Count("id")).values_list("survey_id", "n")
        )
    counts["n_runs"] = dict(
        SimulationRun.objects.values_list("survey_id").annotate(n=Count("id")).values_list("survey_id", "n")
    )
    for survey in surveys:
        for label, by_survey in counts.items():
            setattr(survey, label, by_survey.get(survey.pk, 0))
    return surveys


# ---- the DLA catalog ---------------------------------------------------------------------------
DLA_ORDERINGS = ("z_abs", "log_nhi", "confidence", "z_qso", "snr", "id")
DLA_RANGES = {  # query parameter prefix -> field, allowed range
    "z": ("z_abs", (0.0, 8.0)),
    "logn": ("log_nhi", (15.0, 25.0)),
    "conf": ("confidence", (0.0, 1.0)),
    "zqso": ("z_qso", (0.0, 8.0)),
    "snr": ("snr", (0.0, 1e4)),
}


def dla_release_get(*, name: str | None = None) -> DLARelease:
    """The named release, or the latest one."""
    if name:
        release = DLARelease.objects.filter(name=name).first()
        if release is None:
            known = ", ".join(DLARelease.objects.values_list("name", flat=True)) or "none yet"
            raise ApplicationError(f"no DLA release {name!r} (releases: {known})")
        return release
    release = DLARelease.objects.first()
    if release is None:
        raise NotFound("no DLA catalog release has been published yet")
    return release


def dla_absorber_search(
    *,
    release,
    ranges: dict[str, tuple[float | None, float | None]] | None = None,
    kind: str | None = None,
    lyman_beta: bool | None = None,
    cone: tuple[float, float, float] | None = None,
) -> QuerySet:
    """Absorbers of a release within the given ranges ({prefix: (min, max)} over DLA_RANGES),
    of one type, and inside a cone (ra, dec, radius in degrees)."""
    queryset = DLAAbsorber.objects.filter(release=release)
    for prefix, (lo, hi) in (ranges or {}).items():
        field, (allowed_lo, allowed_hi) = DLA_RANGES[prefix]
        for label, value in ((f"{prefix}_min", lo), (f"{prefix}_max", hi)):
            if value is not None and not (math.isfinite(value) and allowed_lo <= value <= allowed_hi):
                raise ApplicationError(f"{label} {value} outside [{allowed_lo:g}, {allowed_hi:g}]")
        if lo is not None and hi is not None and lo > hi:
            raise ApplicationError(f"{prefix}_min {lo} is above {prefix}_max {hi}")
        if lo is not None:
            queryset = queryset.filter(**{f"{field}__gte": lo})
        if hi is not None:
            queryset = queryset.filter(**{f"{field}__lte": hi})
    if kind is not None:
        if kind not in DLAAbsorber.Kind.values:
            raise ApplicationError(f"type must be one of {', '.join(DLAAbsorber.Kind.values)}, got {kind!r}")
        queryset = queryset.filter(kind=kind)
    if lyman_beta is not None:
        queryset = queryset.filter(lyman_beta=lyman_beta)
    if cone is not None:
        ra, dec, radius = cone
        queryset = cone_filter(queryset, ra=ra, dec=dec, radius_deg=radius)
    return queryset
