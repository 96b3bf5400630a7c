"""The DLA finder's catalog as read from its predictions, and its evaluation against a truth
table (``manage.py evaluate dla --truth``)."""

from pathlib import Path

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion, Prediction, QuasarSpectrum


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
    """A truth table (CSV, ECSV, FITS or VOTable) with plate, mjd, fiber, z_abs, log_nhi:
    ((plate, mjd, fiber), z_abs, log_nhi) per absorber."""
    from catalog.ingest.tables import read_sightline_table

    return [(r[:3], r[3], r[4]) for r in read_sightline_table(path, extra=("z_abs", "log_nhi"), what="truth table")]


def dla_evaluate(
    *, version: ModelVersion, truth: list[tuple], seed: int = 0, z_qso_range: tuple[float, float] | None = None
) -> dict:
    """The version's catalog against the truth on the sightlines it scanned: completeness as
    absorber and as DLA, false DLAs, sigma(z), sigma(log N), overall, by S/N bin and by the
    quasar's redshift (``by_z_qso``) and by log N(HI) (``by_log_nhi``: completeness by the true
    column, false DLAs by the predicted one). ``z_qso_range`` (lo, hi): only the sightlines with
    lo <= z_qso < hi, for a survey whose quasars lie there."""
    from mlworker.ml.dla import ZQSO_BINS, catalog_metrics_binned, catalog_metrics_by_log_nhi, catalog_metrics_by_snr

    sightlines, absorbers = dla_predicted_absorbers(version=version)
    if not sightlines:
        raise ApplicationError(f"{version} has predicted no sightlines yet")
    z_qso = {
        (plate, mjd, fiber): z
        for plate, mjd, fiber, z in QuasarSpectrum.objects.filter(predictions__model_version=version).values_list(
            "plate", "mjd", "fiber", "z_qso"
        )
    }
    if truth and not any(t[0] in sightlines for t in truth):
        raise ApplicationError("no sightline of the truth table was scanned by this version (plate-mjd-fiber)")
    if z_qso_range is not None:
        lo, hi = z_qso_range
        if not lo < hi:
            raise ApplicationError(f"z_qso range: the lower end ({lo:g}) must be below the upper ({hi:g})")
        sightlines = {k: v for k, v in sightlines.items() if lo <= z_qso.get(k, float("nan")) < hi}
        if not sightlines:
            raise ApplicationError(f"{version} scanned no sightline with {lo:g} <= z_qso < {hi:g}")
        absorbers = [a for a in absorbers if a["sightline"] in sightlines]
    scanned_truth = [t for t in truth if t[0] in sightlines]
    predicted = [(a["sightline"], a["z_abs"], a["log_nhi"], a["lyman_beta"]) for a in absorbers]
    report = catalog_metrics_by_snr(predicted, scanned_truth, sightlines, seed)
    z_qso = {k: z for k, z in z_qso.items() if k in sightlines}
    report["by_z_qso"] = catalog_metrics_binned(predicted, scanned_truth, z_qso, ZQSO_BINS, "z_qso", seed)
    report["by_log_nhi"] = catalog_metrics_by_log_nhi(predicted, scanned_truth, seed)
    return {
        "version": str(version),
        "z_qso_range": list(z_qso_range) if z_qso_range is not None else None,
        "n_sightlines": len(sightlines),
        "n_truth_absorbers": len(scanned_truth),
        "n_predicted_absorbers": len(predicted),
        **report,
    }


def sightline_dla(*, spectrum) -> dict | None:
    """What the promoted DLA finder found on a sightline, and the latest release's entries:
    {"version", "absorbers": [...], "released": [DLAAbsorber...], "release"}; None if the
    finder has not scanned it."""
    from catalog.models import DLAAbsorber, DLARelease

    version = ModelVersion.objects.filter(task=ModelTask.DLA, is_promoted=True).first()
    prediction = (
        Prediction.objects.filter(model_version=version, spectrum=spectrum).first() if version is not None else None
    )
    release = DLARelease.objects.first()
    released = (
        list(DLAAbsorber.objects.filter(release=release, plate=spectrum.plate, mjd=spectrum.mjd, fiber=spectrum.fiber))
        if release
        else []
    )
    if prediction is None and not released:
        return None
    return {
        "version": version if prediction else None,
        "absorbers": sorted(prediction.values["absorbers"], key=lambda a: a["z_abs"]) if prediction else [],
        "release": release if released else None,
        "released": sorted(released, key=lambda a: a.z_abs),
    }


def sightline_dla_png(*, spectrum, absorbers: list[dict]) -> bytes:
    from catalog.selectors import spectra_arrays

    start, flux, ivar = spectra_arrays(spectrum_ids=[spectrum.pk])[0]
    title = f"{spectrum}  z_qso = {spectrum.z_qso:.3f}: absorbers (log N(HI) above each)"
    return dla_plot_png(start, flux, ivar, spectrum.z_qso, title, absorbers)


def dla_plot_png(start: int, flux, ivar, z_qso: float, title: str, absorbers: list[dict]) -> bytes:
    """A spectrum with its continuum estimate, each absorber marked (Lyman alpha, and Lyman
    beta for DLAs) and the continuum times every non-Lyman-beta absorber's Voigt profile at its
    fitted N(HI) (b = 30 km/s) overlaid."""
    import io as _io

    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from mlworker.ml.continuum import continuum_estimate
    from mlworker.synthetic.spectra import LYA, LYB, Absorber, absorber_tau

    wave = 10 ** ((start + np.arange(flux.size)) * 1e-4)
    good = ivar > 0
    continuum = continuum_estimate(start, flux, ivar, z_qso)
    tau = np.zeros(flux.size)
    for a in absorbers:
        if not a["lyman_beta"]:
            tau += absorber_tau(wave, Absorber(z_abs=a["z_abs"], log_nhi=a["log_nhi"], b_kms=30.0))
    fig = Figure(figsize=(10, 3.8), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(wave, np.where(good, flux, np.nan), lw=0.5, color="k", label="flux")
    ax.plot(wave, continuum, lw=1.0, color="tab:green", label="continuum estimate")
    if absorbers:
        ax.plot(wave, continuum * np.exp(-tau), lw=1.0, color="tab:orange", label="Voigt profiles at fitted N(HI)")
    for i, a in enumerate(absorbers):
        colour = "tab:purple" if a["lyman_beta"] else ("tab:red" if a["type"] == "dla" else "tab:blue")
        lya = LYA[0] * (1 + a["z_abs"])
        ax.axvline(lya, color=colour, lw=0.8, ls="--")
        label = ("Ly$\\beta$? " if a["lyman_beta"] else "") + f"{a['log_nhi']:.2f}"
        height = 1.0 + 0.06 * (i % 2)  # neighbours' labels on alternate rows
        ax.text(
            lya, height, label, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8, color=colour
        )
        if a["type"] == "dla" and not a["lyman_beta"]:
            ax.axvline(LYB[0] * (1 + a["z_abs"]), color=colour, lw=0.6, ls=":")
    blue = wave < LYA[0] * (1 + z_qso) * 1.05
    shown = flux[good & blue] if (good & blue).any() else flux[good]
    if shown.size:
        lo, hi = np.percentile(shown, [1, 99.5])
        ax.set_ylim(min(lo, 0) - 0.1 * (hi - lo), hi + 0.25 * (hi - lo))
    ax.set_xlim(max(wave[0], 880 * (1 + z_qso)), min(wave[-1], 1600 * (1 + z_qso)))
    ax.set_xlabel("observed wavelength [$\\AA$]")
    ax.set_ylabel("$f_\\lambda$")
    ax.set_title(title, fontsize=10, pad=24)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    buffer = _io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()
