"""Dataset exports: the current labels snapshotted into a packed, versioned file."""

import hashlib
import uuid
from pathlib import Path

import numpy as np
from django.db.models import Count

from catalog.errors import ApplicationError
from catalog.models import Band, DatasetExport, Galaxy, ModelTask
from catalog.selectors import cutout_arrays
from catalog.services.files import pack_root
from labeling.models import AnswerCount, GalaxyVoteTotal, Scheme
from labeling.services import version_spec
from mlworker.ml.morphology import MorphologyData, Question

TEST_FRACTION_MODULUS = 5  # galaxy id % 5 == 0: the held-out split, fixed for a galaxy forever


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _export_save(*, task: str, variant: str, data, is_test: np.ndarray, description: dict) -> DatasetExport:
    """Packs a dataset (anything with ``save(path)``) under the pack root and records it."""
    relative = f"datasets/{task}/{variant}/{uuid.uuid4().hex}.npz"
    path = pack_root() / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    data.save(path)
    return DatasetExport.objects.create(
        task=task,
        variant=variant,
        path=relative,
        n_train=int((~is_test).sum()),
        n_test=int(is_test.sum()),
        checksum=_sha256(path),
        description=description,
    )


def morphology_dataset_export(*, variant: str, image_size: int = 64) -> tuple[DatasetExport, Band]:
    """Every galaxy with counted votes under the scheme's current version: its cutout in the
    survey's detection band, its magnitude, and the vote counts of every question of the
    scheme (the first question, e.g. the CANDELS main class, first)."""
    scheme = Scheme.objects.filter(slug=variant).first()
    if scheme is None:
        raise ApplicationError(f"no scheme {variant!r} to train a morphology model on")
    version = scheme.current_version
    spec = version_spec(version.pk)
    ordered = sorted(spec.questions.values(), key=lambda q: q.position)
    answer_ids, keys, questions = [], [], []
    for q in ordered:
        ids = list(q.answers)  # in the question's answer order
        kind = "multiple" if q.kind == "multiple" else "single"  # a grid is one choice among its cells
        questions.append(Question(q.key, kind, len(answer_ids), len(answer_ids) + len(ids)))
        answer_ids += ids
        keys += [spec.answer_key[a] for a in ids]
    totals = dict(
        GalaxyVoteTotal.objects.filter(scheme_version=version, n_votes__gt=0).values_list("galaxy_id", "n_votes")
    )
    if len(totals) < 20:
        raise ApplicationError(f"only {len(totals)} galaxies have votes under {version}: too few to train")
    # One band for the whole dataset: the most common detection band with cutouts.
    band = Band.objects.filter(cutouts__galaxy_id__in=list(totals)).annotate(n=Count("cutouts")).order_by("-n").first()
    if band is None:
        raise ApplicationError("the voted galaxies have no cutouts")
    same_band = Band.objects.filter(
        name=band.name, pixel_scale_arcsec=band.pixel_scale_arcsec, psf_fwhm_arcsec=band.psf_fwhm_arcsec
    )
    galaxy_ids, images = [], []
    for b in same_band:
        found, pixels = cutout_arrays(galaxy_ids=sorted(totals), band=b, size=image_size)
        galaxy_ids.append(found)
        images.append(pixels)
    galaxy_ids = np.concatenate(galaxy_ids)
    images = np.concatenate(images)
    index = {g: i for i, g in enumerate(galaxy_ids.tolist())}
    column = {a: j for j, a in enumerate(answer_ids)}
    counts = np.zeros((len(galaxy_ids), len(answer_ids)), dtype=np.int32)
    fractions = np.zeros(counts.shape, dtype=np.float64)
    for galaxy_id, answer_id, count, fraction in AnswerCount.objects.filter(
        scheme_version=version, galaxy_id__in=list(index)
    ).values_list("galaxy_id", "answer_id", "count", "fraction"):
        if answer_id in column:
            counts[index[galaxy_id], column[answer_id]] = count
            fractions[index[galaxy_id], column[answer_id]] = fraction
    n_votes = np.array([totals[g] for g in galaxy_ids.tolist()], dtype=np.int32)
    trials = np.zeros((len(galaxy_ids), len(questions)), dtype=np.int32)
    for j, q in enumerate(questions):
        c = counts[:, q.start : q.stop]
        if spec.kind != "tree":
            trials[:, j] = n_votes  # every vote answers every question of a flat scheme
        elif q.kind == "single":
            trials[:, j] = c.sum(axis=1)  # the votes that reached the question
        else:  # a multiple-choice question inside a tree: votes that reached it, from a fraction
            f = fractions[:, q.start : q.stop]
            trials[:, j] = np.round(np.max(np.divide(c, f, out=np.zeros(c.shape), where=f > 0), axis=1))
    mags = dict(Galaxy.objects.filter(pk__in=list(index)).values_list("pk", "mag"))
    is_test = galaxy_ids % TEST_FRACTION_MODULUS == 0
    data = MorphologyData(
        images=images,
        counts=counts,
        trials=trials,
        n_votes=n_votes,
        galaxy_ids=galaxy_ids,
        is_test=is_test,
        answers=keys,
        questions=questions,
        mags=np.array([np.nan if mags[g] is None else mags[g] for g in galaxy_ids.tolist()], dtype=float),
    )
    export = _export_save(
        task=ModelTask.MORPHOLOGY,
        variant=variant,
        data=data,
        is_test=is_test,
        description={
            "scheme_version": str(version),
            "questions": [q.key for q in questions],
            "answers": keys,
            "band": band.name,
            "split": f"galaxy id % {TEST_FRACTION_MODULUS} == 0 held out",
            "image_size": image_size,
        },
    )
    return export, band


def _with_inserted_dlas(data, cfg):
    """Adds, for training only, ``cfg.inserted_copies`` copies of every sightline a user marked
    free of DLAs (up to ``cfg.max_dla_free``), each with mock absorbers inserted."""
    from catalog.models import QuasarSpectrum
    from catalog.selectors import spectra_arrays
    from mlworker.ml.dla import DLAData, scan_input
    from mlworker.synthetic.spectra import insert_absorbers

    free = list(
        QuasarSpectrum.objects.filter(dla_free=True)
        .order_by("pk")
        .values_list("pk", "plate", "mjd", "fiber", "z_qso", "snr")[: cfg.max_dla_free]
    )
    if not free:
        return data, 0
    rng = np.random.default_rng([cfg.seed, 2018])
    rows, absorbers = [], []
    first = len(data.x)
    for start in range(0, len(free), 500):
        batch = free[start : start + 500]
        for (_pk, plate, mjd, fiber, z_qso, snr), (s0, flux, ivar) in zip(
            batch, spectra_arrays(spectrum_ids=[b[0] for b in batch]), strict=True
        ):
            for copy in range(cfg.inserted_copies):
                inserted, found = insert_absorbers(s0, flux, ivar, z_qso, rng, cfg.dla_boost)
                x, covered = scan_input(s0, inserted, ivar, z_qso)
                row = first + len(rows)
                rows.append((x, covered, z_qso, snr, f"{plate}-{mjd}-{fiber}+{copy + 1}"))
                absorbers += [(row, a.z_abs, a.log_nhi) for a in found]
    n = len(rows)
    merged = DLAData(
        x=np.concatenate([data.x, np.stack([r[0] for r in rows])]),
        covered=np.concatenate([data.covered, np.stack([r[1] for r in rows])]),
        z_qso=np.concatenate([data.z_qso, [r[2] for r in rows]]),
        snr=np.concatenate([data.snr, [r[3] for r in rows]]),
        sightline_ids=np.concatenate([data.sightline_ids, [r[4] for r in rows]]),
        absorber_sightline=np.concatenate([data.absorber_sightline, np.array([a[0] for a in absorbers], np.int64)]),
        absorber_z=np.concatenate([data.absorber_z, [a[1] for a in absorbers]]),
        absorber_log_nhi=np.concatenate([data.absorber_log_nhi, [a[2] for a in absorbers]]),
        is_test=np.concatenate([data.is_test, np.zeros(n, bool)]),
        is_validation=np.concatenate([data.is_validation, np.zeros(n, bool)]),
    )
    return merged, len(free)


def dla_dataset_export(*, variant: str, cfg) -> tuple[DatasetExport, None]:
    """Variant "mock": ``cfg.train_sightlines`` mock sightlines with the DLA incidence raised
    ``cfg.dla_boost`` times (10% of them validate) and ``cfg.test_sightlines`` held out, made
    with fixed seeds from ``cfg.seed``; plus, for training, the sightlines users marked free of
    DLAs with mock DLAs inserted (``cfg.inserted_copies`` copies each)."""
    from mlworker.synthetic.spectra import dla_mock_data

    if variant != "mock":
        raise ApplicationError(f"unknown DLA training set {variant!r} (known: mock)")
    n_test = cfg.test_sightlines
    n = cfg.train_sightlines + n_test
    data = dla_mock_data(
        n,
        seed=1000 + cfg.seed,
        dla_boost=cfg.dla_boost,
        test_fraction=n_test / n,
        validation_fraction=0.1 * cfg.train_sightlines / n,
        workers=2,
    )
    n_inserted = 0
    if cfg.inserted_copies > 0:
        data, n_inserted = _with_inserted_dlas(data, cfg)
    export = _export_save(
        task=ModelTask.DLA,
        variant=variant,
        data=data,
        is_test=data.is_test,
        description={
            "source": "mock sightlines (mlworker/synthetic/spectra.py)",
            "seed": 1000 + cfg.seed,
            "dla_boost": cfg.dla_boost,
            "n_absorbers": len(data.absorber_z),
            "n_inserted_sightlines": n_inserted,
            "split": "the last test_sightlines held out; 10% of the rest validate",
        },
    )
    return export, None
