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
    from mlworker.ml.continuum import continuum_estimate
    from mlworker.ml.dla import DLAData, lyman_limit_flux, scan_input
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
                continuum = continuum_estimate(s0, inserted, ivar, z_qso)
                x, covered = scan_input(s0, inserted, ivar, z_qso, continuum)
                limit = lyman_limit_flux(s0, inserted, ivar, z_qso, continuum).astype(np.float16)
                row = first + len(rows)
                rows.append((x, covered, z_qso, snr, f"{plate}-{mjd}-{fiber}+{copy + 1}", limit))
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
        lyman_limit=None
        if data.lyman_limit is None
        else np.concatenate([data.lyman_limit, np.stack([r[5] for r in rows])]),
    )
    return merged, len(free)


def dla_dataset_export(*, variant: str, cfg) -> tuple[DatasetExport, None]:
    """Variant "mock": ``cfg.train_sightlines`` mock sightlines with the DLA incidence raised
    ``cfg.dla_boost`` times (``cfg.validation_sightlines`` of them, at most 10%, validate) and ``cfg.test_sightlines`` held out, made
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
        validation_fraction=min(cfg.validation_sightlines, 0.1 * cfg.train_sightlines) / n,
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
            "split": "the last test_sightlines held out; validation_sightlines (at most 10%) of the rest validate",
        },
    )
    return export, None


def emulator_dataset_export(*, variant: str, cfg) -> tuple[DatasetExport, Band]:
    """Variant "mock": ``cfg.train_galaxies`` GalSim galaxies of known structure (single Sersic
    and bulge + disk, ``mlworker.synthetic.structure``; a few percent validate) and
    ``cfg.test_galaxies`` held out, with fixed seeds from ``cfg.seed``, made for the survey
    mock's F160W-like instrument. Returns the export and that instrument as an unsaved Band."""
    from mlworker.synthetic.galaxies import GalaxyMockConfig
    from mlworker.synthetic.structure import emulator_mock_data

    if variant != "mock":
        raise ApplicationError(f"unknown emulator training set {variant!r} (known: mock)")
    instrument = GalaxyMockConfig()
    seed = 3000 + cfg.seed
    data = emulator_mock_data(
        cfg.train_galaxies,
        cfg.test_galaxies,
        seed,
        validation_fraction=cfg.validation_fraction,
        composite_fraction=cfg.composite_fraction,
        mag_range=tuple(cfg.mag_range),
        workers=2,
        cfg=instrument,
    )
    export = _export_save(
        task=ModelTask.EMULATOR,
        variant=variant,
        data=data,
        is_test=data.is_test,
        description={
            "source": "GalSim galaxies of known structure (mlworker/synthetic/structure.py)",
            "seed": seed,
            "composite_fraction": cfg.composite_fraction,
            "mag_range": list(cfg.mag_range),
            "conventions": "r_e along the major axis; total magnitude of the untruncated profile; q = b/a",
            "split": "the last test_galaxies held out; validation_fraction of the rest validate",
        },
    )
    band = Band(
        name=instrument.band,
        instrument=instrument.instrument,
        pixel_scale_arcsec=instrument.pixel_scale_arcsec,
        psf_fwhm_arcsec=instrument.psf_fwhm_arcsec,
        zero_point_ab=instrument.zero_point_ab,
    )
    return export, band


def phenomena_dataset_export(*, variant: str, cfg) -> tuple[DatasetExport, Band]:
    """Variant "runs": every mock image, in the most common filter, of every simulation run
    ingested, labelled from the run's metadata (its snapshot's compaction phase; a merger
    within RECENT_MERGER_DA in scale factor before the snapshot). Runs whose id %
    cfg.held_out_modulus == 0 are held out, for good; at least cfg.min_train_runs and
    cfg.min_test_runs are needed."""
    from catalog.models import MergerEvent, MockImage, SimulationRun, Snapshot
    from catalog.selectors import mock_image_arrays
    from mlworker.ml.phenomena import PHASES, RECENT_MERGER_DA, PhenomenaData

    if variant != "runs":
        raise ApplicationError(f"unknown phenomena training set {variant!r} (known: runs)")
    images = MockImage.objects.filter(snapshot__run__survey__kind="simulation")
    common = images.values("filter_name").annotate(n=Count("pk")).order_by("-n").first()
    if common is None:
        raise ApplicationError("no simulation run with mock images has been ingested")
    filter_name = common["filter_name"]
    runs = list(SimulationRun.objects.filter(snapshots__mock_images__filter_name=filter_name).distinct().order_by("pk"))
    held_out = [r for r in runs if r.pk % cfg.held_out_modulus == 0]
    training = [r for r in runs if r.pk % cfg.held_out_modulus != 0]
    if len(training) < cfg.min_train_runs or len(held_out) < cfg.min_test_runs:
        raise ApplicationError(
            f"the phenomena model needs at least {cfg.min_train_runs} training and {cfg.min_test_runs} held-out runs "
            f"(run id % {cfg.held_out_modulus} == 0 is held out); the catalog has {len(training)} and {len(held_out)} "
            f"with {filter_name} mock images"
        )
    snapshots = {
        s.pk: s
        for s in Snapshot.objects.filter(run__in=runs).only(
            "pk", "run_id", "scale_factor", "redshift", "compaction_phase"
        )
    }
    mergers: dict[int, list[float]] = {}
    for run_id, a in MergerEvent.objects.filter(run__in=runs).values_list("run_id", "scale_factor"):
        mergers.setdefault(run_id, []).append(a)
    rows = list(
        images.filter(filter_name=filter_name, snapshot__run__in=runs)
        .order_by("snapshot__run_id", "snapshot__scale_factor", "camera")
        .values_list("pk", "snapshot_id", "camera")
    )
    ids = [r[0] for r in rows]
    found, pixels = mock_image_arrays(image_ids=ids, size=64)
    run_index = {r.pk: i for i, r in enumerate(runs)}
    snap = [snapshots[r[1]] for r in rows]
    merged = np.array(
        [any(0 <= s.scale_factor - a < RECENT_MERGER_DA for a in mergers.get(s.run_id, [])) for s in snap], dtype=bool
    )
    is_test = np.array([s.run_id % cfg.held_out_modulus == 0 for s in snap], dtype=bool)
    data = PhenomenaData(
        images=pixels,
        phase=np.array([PHASES.index(s.compaction_phase) for s in snap], dtype=np.int8),
        merger=merged,
        redshift=np.array([s.redshift for s in snap]),
        run=np.array([run_index[s.run_id] for s in snap], dtype=np.int32),
        snapshot=np.array([r[1] for r in rows], dtype=np.int64),
        camera=np.array([r[2] for r in rows], dtype=np.int32),
        image_ids=found,
        is_test=is_test,
        run_names=[r.name for r in runs],
    )
    export = _export_save(
        task=ModelTask.PHENOMENA,
        variant=variant,
        data=data,
        is_test=is_test,
        description={
            "filter": filter_name,
            "train_runs": [r.name for r in training],
            "test_runs": [r.name for r in held_out],
            "labels": f"compaction phase of the snapshot; a merger with 0 <= a - a_merger < {RECENT_MERGER_DA}",
            "split": f"run id % {cfg.held_out_modulus} == 0 held out",
        },
    )
    band = Band.objects.filter(survey__kind="simulation", name=filter_name).first()
    return export, band


def environment_dataset_export(*, variant: str, cfg) -> tuple[DatasetExport, None]:
    """Variant "learned": ``cfg.train_mocks`` mock light cones of ``cfg.train_galaxies`` for
    training (fixed seeds from ``cfg.seed``) and the held-out evaluation light cone: each galaxy's
    neighbourhood features and its truth (log delta_5 from every galaxy's redshift-space
    redshift; its true t minus its best t)."""
    from mlworker.ml.environment import Catalog
    from mlworker.ml.environment_learned import LearnedData, neighbourhood_features
    from mlworker.synthetic.lightcone import (
        EVALUATION_SEED,
        LightconeConfig,
        evaluation_lightcone,
        make_lightcone,
        truth_environment,
    )

    if variant != "learned":
        raise ApplicationError(f"unknown environment training set {variant!r} (known: learned)")
    features, targets, z_best, is_test, ra, dec = [], [], [], [], [], []
    seeds = [5000 + 10 * cfg.seed + k for k in range(cfg.train_mocks)]
    config = LightconeConfig(n_galaxies=cfg.train_galaxies, side_deg=cfg.side_deg)
    cones = [(make_lightcone(config, seed), None) for seed in seeds]
    from mlworker.services.environment import evaluation_galaxies

    cones.append(evaluation_lightcone(evaluation_galaxies()))  # held out: every method is measured on it
    for k, (lc, truth) in enumerate(cones):
        catalog = Catalog(lc.ra, lc.dec, lc.z_phot, lc.z_phot_err, lc.z_spec, lc.mag)
        truth = truth if truth is not None else truth_environment(lc)
        features.append(neighbourhood_features(catalog))
        targets.append(np.column_stack([truth["log_delta5"], np.log1p(lc.z_obs) - np.log1p(catalog.z_best)]))
        z_best.append(catalog.z_best)
        is_test.append(np.full(len(lc), k == len(cones) - 1))
        ra.append(lc.ra)
        dec.append(lc.dec)
    is_test = np.concatenate(is_test)
    data = LearnedData(
        features=np.concatenate(features).astype(np.float32),
        target=np.concatenate(targets).astype(np.float32),
        z_best=np.concatenate(z_best),
        is_test=is_test,
        ra=np.concatenate(ra),
        dec=np.concatenate(dec),
    )
    export = _export_save(
        task=ModelTask.ENVIRONMENT,
        variant=variant,
        data=data,
        is_test=is_test,
        description={
            "source": "mock light cones (mlworker/synthetic/lightcone.py)",
            "seeds": seeds,
            "held_out_seed": EVALUATION_SEED,
            "galaxies_per_mock": cfg.train_galaxies,
            "side_deg": cfg.side_deg,
        },
    )
    return export, None
