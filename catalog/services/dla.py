"""Publishing the DLA catalog: a named release frozen from a model version's predictions."""

import re

from django.db import IntegrityError, transaction

from catalog.bulk import bulk_upsert
from catalog.errors import ApplicationError, Conflict
from catalog.models import DLAAbsorber, DLARelease, ModelTask, ModelVersion, Prediction
from catalog.sky import sky_columns

RELEASE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,31}$")
ABSORBER_FIELDS = (
    "identifier",
    "spectrum",
    *DLAAbsorber.SIGHTLINE_FIELDS,
    *DLAAbsorber.MEASURED_FIELDS,
    "kind",
    "lyman_beta",
    "model_version",
    "healpix",
    "cx",
    "cy",
    "cz",
)


def dla_release_publish(
    *, name: str, version: ModelVersion | None = None, description: str = "", min_confidence: float = 0.0
) -> DLARelease:
    """Copies the absorbers of ``version`` (default: the promoted DLA finder) into a new
    release ``name``. Every scanned sightline must have its prediction; a name is used once."""
    if not RELEASE_NAME.match(name or ""):
        raise ApplicationError(f"release name {name!r}: letters, digits, _ and . only, starting with a letter")
    if not 0.0 <= min_confidence <= 1.0:
        raise ApplicationError(f"min_confidence {min_confidence} outside [0, 1]")
    if version is None:
        version = ModelVersion.objects.filter(task=ModelTask.DLA, is_promoted=True).first()
        if version is None:
            raise ApplicationError("no promoted DLA finder to publish: train one with `manage.py train dla`")
    if version.task != ModelTask.DLA:
        raise ApplicationError(f"{version} is not a DLA finder")
    if not version.predictions_complete:
        raise ApplicationError(f"{version} has not finished predicting: publish once every sightline is scanned")
    if DLARelease.objects.filter(name=name).exists():
        raise Conflict(f"release {name} exists and is frozen: choose a new name")
    predictions = Prediction.objects.filter(model_version=version, spectrum__isnull=False).values_list(
        "spectrum_id",
        "spectrum__plate",
        "spectrum__mjd",
        "spectrum__fiber",
        "spectrum__thing_id",
        "spectrum__ra",
        "spectrum__dec",
        "spectrum__z_qso",
        "spectrum__snr",
        "values",
    )
    try:
        with transaction.atomic():
            release = DLARelease.objects.create(
                name=name,
                model_version=version,
                description=description,
                min_confidence=min_confidence,
                n_sightlines=0,
                n_absorbers=0,
            )
            n_sightlines, rows = 0, []
            for spectrum_id, plate, mjd, fiber, thing_id, ra, dec, z_qso, snr, values in predictions.iterator(2000):
                n_sightlines += 1
                found = sorted(
                    (a for a in values.get("absorbers", []) if a["confidence"] >= min_confidence),
                    key=lambda a: a["z_abs"],
                )
                for k, a in enumerate(found, start=1):
                    rows.append(
                        [
                            f"{name}-{plate:04d}-{mjd:05d}-{fiber:04d}-{k}",
                            spectrum_id,
                            plate,
                            mjd,
                            fiber,
                            thing_id,
                            ra,
                            dec,
                            z_qso,
                            snr,
                            *(a[f] for f in ("z_abs", "log_nhi", "log_nhi_err")),
                            min(1.0, max(0.0, a["confidence"])),
                            a["type"],
                            bool(a["lyman_beta"]),
                            version.pk,
                        ]
                    )
            if rows:
                sky = sky_columns([r[6] for r in rows], [r[7] for r in rows])
                for r, pix, x, y, z in zip(rows, sky.healpix, sky.cx, sky.cy, sky.cz, strict=True):
                    r += [int(pix), float(x), float(y), float(z)]
                bulk_upsert(
                    model=DLAAbsorber,
                    fields=ABSORBER_FIELDS,
                    rows=(tuple(r) for r in rows),
                    conflict_fields=("release", "identifier"),
                    constants={"release_id": release.pk},
                )
            DLARelease.objects.filter(pk=release.pk).update(n_sightlines=n_sightlines, n_absorbers=len(rows))
            release.refresh_from_db()
    except IntegrityError:
        raise Conflict(f"release {name} was published meanwhile: choose a new name") from None
    return release


def spectra_mark_dla_free(*, survey_name: str, sightlines: list[tuple[int, int, int]] | None = None) -> int:
    """Marks sightlines of a survey (all of them, or the listed plate-mjd-fiber) as free of DLAs;
    unknown sightlines are refused and nothing changes. Returns how many are marked."""
    from catalog.models import QuasarSpectrum, Survey

    survey = Survey.objects.filter(name=survey_name, kind=Survey.Kind.SPECTROSCOPIC).first()
    if survey is None:
        raise ApplicationError(f"no spectroscopic survey {survey_name!r}")
    spectra = QuasarSpectrum.objects.filter(survey=survey)
    if sightlines is not None:
        keys = {(p, m, f): pk for pk, p, m, f in spectra.values_list("pk", "plate", "mjd", "fiber")}
        missing = [s for s in sightlines if tuple(s) not in keys]
        if missing:
            shown = ", ".join("-".join(map(str, s)) for s in missing[:10])
            raise ApplicationError(f"{len(missing)} sightlines are not in survey {survey_name}: {shown}")
        spectra = spectra.filter(pk__in=[keys[tuple(s)] for s in sightlines])
    with transaction.atomic():
        return spectra.update(dla_free=True)
