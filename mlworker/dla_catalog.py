"""The DLA finder's catalog as read from its predictions, and its evaluation against a truth
table (``manage.py evaluate dla --truth``)."""

from pathlib import Path

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion, Prediction

TRUTH_COLUMNS = ("plate", "mjd", "fiber", "z_abs", "log_nhi")


def dla_version(*, number: int | None = None, variant: str = "mock") -> ModelVersion:
    """The named version of the DLA finder, or the promoted one."""
    versions = ModelVersion.objects.filter(task=ModelTask.DLA, variant=variant)
    version = versions.filter(number=number).first() if number else versions.filter(is_promoted=True).first()
    if version is None:
        which = f"version {number}" if number else "a promoted version"
        raise ApplicationError(f"the DLA finder ({variant}) has no {which}: train one with `manage.py train dla`")
    return version


def dla_predicted_absorbers(*, version: ModelVersion) -> tuple[dict, list[dict]]:
    """(sightlines, absorbers) of a version's predictions: sightlines keyed by
    (plate, mjd, fiber) with their S/N; one dict per absorber with its sightline key."""
    sightlines, absorbers = {}, []
    rows = Prediction.objects.filter(model_version=version, spectrum__isnull=False).values_list(
        "spectrum__plate", "spectrum__mjd", "spectrum__fiber", "spectrum__snr", "values"
    )
    for plate, mjd, fiber, snr, values in rows.iterator(chunk_size=2000):
        key = (plate, mjd, fiber)
        sightlines[key] = snr
        absorbers += [{"sightline": key, **a} for a in values.get("absorbers", [])]
    return sightlines, absorbers


def truth_read(path: str | Path) -> list[tuple]:
    """A truth table (CSV, ECSV, FITS or VOTable) with plate, mjd, fiber, z_abs, log_nhi."""
    from catalog.errors import IngestError
    from catalog.ingest.tables import read_table

    path = Path(path)
    if not path.exists():
        raise ApplicationError(f"no truth table at {path}")
    try:
        table = read_table(path)
    except IngestError as exc:
        raise ApplicationError(f"cannot read the truth table: {exc.message}") from None
    names = {n.lower(): n for n in table.colnames}
    missing = [c for c in TRUTH_COLUMNS if c not in names]
    if missing:
        raise ApplicationError(
            f"the truth table {path.name} lacks the columns {missing} (it needs {', '.join(TRUTH_COLUMNS)})"
        )
    try:
        return [
            (
                (int(r[names["plate"]]), int(r[names["mjd"]]), int(r[names["fiber"]])),
                float(r[names["z_abs"]]),
                float(r[names["log_nhi"]]),
            )
            for r in table
        ]
    except (TypeError, ValueError) as exc:
        raise ApplicationError(f"the truth table {path.name} has a non-numeric value: {exc}") from None


def dla_evaluate(*, version: ModelVersion, truth: list[tuple], seed: int = 0) -> dict:
    """The version's catalog against the truth on the sightlines it scanned: completeness as
    absorber and as DLA, false DLAs, sigma(z), sigma(log N), overall and by S/N bin."""
    from mlworker.ml.dla import catalog_metrics_by_snr

    sightlines, absorbers = dla_predicted_absorbers(version=version)
    if not sightlines:
        raise ApplicationError(f"{version} has predicted no sightlines yet")
    scanned_truth = [t for t in truth if t[0] in sightlines]
    if truth and not scanned_truth:
        raise ApplicationError("no sightline of the truth table was scanned by this version (plate-mjd-fiber)")
    predicted = [(a["sightline"], a["z_abs"], a["log_nhi"], a["lyman_beta"]) for a in absorbers]
    report = catalog_metrics_by_snr(predicted, scanned_truth, sightlines, seed)
    return {
        "version": str(version),
        "n_sightlines": len(sightlines),
        "n_truth_absorbers": len(scanned_truth),
        "n_predicted_absorbers": len(predicted),
        **report,
    }
