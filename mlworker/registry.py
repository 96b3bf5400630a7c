"""The model families the platform can train and apply, behind one interface.

Each task says how to export its dataset, which pure training function and config to use,
which metric decides promotion, which subjects it predicts for, and how to turn a chunk of
subjects into prediction rows. Tasks whose models come with later work are listed as not
available, with the reason.
"""

import math
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from catalog.errors import ApplicationError
from catalog.models import Band, Cutout, Galaxy, MockImage, ModelTask, ModelVersion, QuasarSpectrum, Survey

FACT_TOLERANCE = 0.05


@dataclass(frozen=True)
class PredictionRow:
    subject_id: int
    values: dict
    uncertainty: float
    out_of_distribution: bool


class _TorchTask:
    def checkpoint(self, version: ModelVersion, device="cpu") -> dict:
        import torch

        with version.weights.open("rb") as fh:
            return torch.load(fh, map_location=device, weights_only=True)


class _ImageTask(_TorchTask):
    """A model of cutouts in one band, at the pixel scale and PSF it was trained for."""

    subject_field = "galaxy"
    survey_kinds = (Survey.Kind.IMAGING,)

    def subject_field_for(self, survey: Survey) -> str:
        return "mock_image" if survey.kind == Survey.Kind.SIMULATION else "galaxy"

    def trained_for(self, version: ModelVersion) -> str:
        return f'{version} was trained on {version.band} at {version.pixel_scale_arcsec}"/px with PSF {version.psf_fwhm_arcsec}"'

    def survey_problems(self, version: ModelVersion, survey: Survey) -> list[str]:
        """How the survey's band differs from what the model was trained for (empty: it matches)."""
        if survey.kind not in self.survey_kinds:
            return [f"it is a {survey.kind} survey ({' or '.join(self.survey_kinds)} needed)"]
        band = Band.objects.filter(survey=survey, name=version.band).first()
        if band is None:
            return [f"survey {survey.name} has no {version.band} band"]
        problems = []
        for label, ours, theirs in (
            ("pixel scale", version.pixel_scale_arcsec, band.pixel_scale_arcsec),
            ("PSF FWHM", version.psf_fwhm_arcsec, band.psf_fwhm_arcsec),
        ):
            if ours and theirs and abs(theirs - ours) > FACT_TOLERANCE * ours:
                problems.append(f'{label} {theirs:g}" differs from the training set\'s {ours:g}"')
        return problems

    def can_force(self, version: ModelVersion, survey: Survey) -> bool:
        return survey.kind in self.survey_kinds and Band.objects.filter(survey=survey, name=version.band).exists()

    def surveys(self, version: ModelVersion):
        return Survey.objects.filter(
            kind__in=self.survey_kinds,
            bands__name=version.band,
            bands__pixel_scale_arcsec=version.pixel_scale_arcsec,
            bands__psf_fwhm_arcsec=version.psf_fwhm_arcsec,
        ).distinct()

    def subject_ids(self, version: ModelVersion, survey: Survey, only_missing: bool) -> list[int]:
        """Galaxies with a cutout in the version's band, or a simulation's mock images in it."""
        band = Band.objects.filter(survey=survey, name=version.band).first()
        if band is None:
            return []
        if survey.kind == Survey.Kind.SIMULATION:
            ids = MockImage.objects.filter(snapshot__run__survey=survey, filter_name=band.name).values_list(
                "pk", flat=True
            )
            if only_missing:
                ids = ids.exclude(pk__in=version.predictions.values("mock_image_id"))
            return sorted(ids)
        ids = Cutout.objects.filter(band=band).values_list("galaxy_id", flat=True)
        if only_missing:
            ids = ids.exclude(galaxy_id__in=version.predictions.values("galaxy_id"))
        return sorted(ids)


class MorphologyTask(_ImageTask):
    name = ModelTask.MORPHOLOGY
    primary_metric = "rmse"
    higher_is_better = False

    def config(self, overrides: dict):
        from mlworker.ml.morphology import MorphologyConfig

        return _config(MorphologyConfig, overrides)

    def export(self, variant: str, cfg=None):
        from mlworker.datasets import morphology_dataset_export

        return morphology_dataset_export(variant=variant)

    def train(self, cfg, dataset_path: Path, progress):
        from mlworker.ml.morphology import MorphologyData, train

        return train(cfg, MorphologyData.load(dataset_path), progress)

    def after_write(self, version: ModelVersion, subject_ids: list[int] | None = None) -> None:
        """The promoted model's uncertainties feed the voting queue's "active" strategy."""
        from labeling.services import active_scores_set

        if version.is_promoted:
            active_scores_set(scheme_slug=version.variant, prediction_version_id=version.pk, galaxy_ids=subject_ids)

    def load(self, version: ModelVersion, device):
        from mlworker.ml.morphology import load_model

        checkpoint = self.checkpoint(version, device)
        return checkpoint, load_model(checkpoint, device)

    def predict(
        self, version: ModelVersion, loaded, subject_ids: list[int], device, survey=None
    ) -> list[PredictionRow]:
        """Values: {"fractions": {answer: f}, "sigma": {answer: s}}; the row's uncertainty is
        the mean sigma over the main question's answers."""
        from catalog.selectors import cutout_arrays
        from mlworker.ml.morphology import main_uncertainty, out_of_distribution, predict

        checkpoint, model = loaded
        tta = bool(checkpoint["config"].get("tta", False))
        rows = []
        survey_ids = sorted(set(Galaxy.objects.filter(pk__in=subject_ids).values_list("survey_id", flat=True)))
        for band in Band.objects.filter(survey_id__in=survey_ids, name=version.band):
            found, images = cutout_arrays(galaxy_ids=subject_ids, band=band, size=checkpoint["config"]["image_size"])
            if not len(found):
                continue
            fractions, sigma = predict(checkpoint, images, device=device, model=model, tta=tta)
            uncertainty = main_uncertainty(checkpoint, sigma)
            ood = out_of_distribution(images, version.input_ranges)
            answers = checkpoint["answers"]
            for i, galaxy_id in enumerate(found.tolist()):
                values = {
                    "fractions": {a: round(float(v), 4) for a, v in zip(answers, fractions[i], strict=True)},
                    "sigma": {a: round(float(v), 4) for a, v in zip(answers, sigma[i], strict=True)},
                }
                rows.append(PredictionRow(galaxy_id, values, float(uncertainty[i]), bool(ood[i])))
        return rows


SERSIC_FIT_VARIANT = "sersic-fit"


class EmulatorTask(_ImageTask):
    """Single-Sersic structure of galaxies' cutouts and of simulations' mock images: the CNN
    emulator (variant "mock": trained on GalSim mocks made on the worker) and the reference
    fit (variant "sersic-fit": astropy Sersic2D convolved with the PSF; a versioned method,
    not trained, run by ``manage.py fit_sersic``)."""

    name = ModelTask.EMULATOR
    primary_metric = "nmad_log_n"  # NMAD of log10(n_emulator / n_true) on held-out mocks
    higher_is_better = False
    default_variant = "mock"
    survey_kinds = (Survey.Kind.IMAGING, Survey.Kind.SIMULATION)

    def surveys(self, version: ModelVersion):
        if version.variant == SERSIC_FIT_VARIANT:  # any pixel scale and PSF: the fit reads them per band
            return Survey.objects.filter(kind__in=self.survey_kinds, bands__name=version.band).distinct()
        return super().surveys(version)

    def config(self, overrides: dict):
        from mlworker.ml.emulator import EmulatorConfig

        return _config(EmulatorConfig, overrides)

    def prediction_batch(self, version: ModelVersion) -> int:
        """A fit takes ~0.1-0.5 s: the lease is renewed every 16 of them."""
        return 16 if version.variant == SERSIC_FIT_VARIANT else 256

    def refuse_training(self, variant: str) -> str | None:
        if variant == SERSIC_FIT_VARIANT:
            return "the reference Sersic fit is not trained: run it with manage.py fit_sersic"
        return None

    def export(self, variant: str, cfg=None):
        from mlworker.datasets import emulator_dataset_export

        return emulator_dataset_export(variant=variant or self.default_variant, cfg=cfg or self.config({}))

    def train(self, cfg, dataset_path: Path, progress):
        from mlworker.ml.emulator import EmulatorData, train

        return train(cfg, EmulatorData.load(dataset_path), progress)

    def load(self, version: ModelVersion, device):
        if version.variant == SERSIC_FIT_VARIANT:
            return None
        from mlworker.ml.emulator import load_model

        checkpoint = self.checkpoint(version, device)
        return checkpoint, load_model(checkpoint, device)

    def _images(self, version: ModelVersion, subject_ids: list[int], survey: Survey):
        """(ids found, images, band) per band of the subjects."""
        from catalog.selectors import cutout_arrays, mock_image_arrays

        if survey.kind == Survey.Kind.SIMULATION:
            band = Band.objects.get(survey=survey, name=version.band)
            found, images = mock_image_arrays(image_ids=subject_ids, size=64)
            yield found, images, band
            return
        for band in Band.objects.filter(survey=survey, name=version.band):
            found, images = cutout_arrays(galaxy_ids=subject_ids, band=band, size=64)
            if len(found):
                yield found, images, band

    def predict(
        self, version: ModelVersion, loaded, subject_ids: list[int], device, survey=None
    ) -> list[PredictionRow]:
        """Values: mag (null without a zero point), r_e_arcsec (major axis), sersic_n, q, their
        errors (mag_err, log_r_e_err and log_n_err in dex, q_err) and p_bulge, p_disk,
        p_bulge_disk for the emulator; the reference fit's parameters, chi2_nu, ok and its
        failure message for the fit. The row's uncertainty: the sigma of log10 n."""
        if survey is None:
            raise ApplicationError("the emulator predicts per survey")
        if version.variant == SERSIC_FIT_VARIANT:
            return self._fit(version, subject_ids, survey)
        from mlworker.ml.emulator import predict
        from mlworker.ml.imaging import out_of_distribution

        checkpoint, model = loaded
        rows = []
        for found, images, band in self._images(version, subject_ids, survey):
            zero_point = band.zero_point_ab
            out = predict(checkpoint, images, zero_point if zero_point is not None else 0.0, device=device, model=model)
            ood = out_of_distribution(images, version.input_ranges)
            for i, subject_id in enumerate(found.tolist()):
                values = {k: round(float(v[i]), 5) for k, v in out.items()}
                if zero_point is None:
                    values["mag"] = values["mag_err"] = None
                rows.append(PredictionRow(subject_id, values, float(out["log_n_err"][i]), bool(ood[i])))
        return rows

    def _fit(self, version: ModelVersion, subject_ids: list[int], survey: Survey) -> list[PredictionRow]:
        from mlworker.ml.sersic_fit import FitSettings, fit_sersic

        rows = []
        method = {k: v for k, v in version.config.items() if k in FitSettings.__dataclass_fields__}
        for found, images, band in self._images(version, subject_ids, survey):
            settings = FitSettings(
                **{
                    **method,
                    "pixel_scale_arcsec": band.pixel_scale_arcsec,
                    "psf_fwhm_arcsec": band.psf_fwhm_arcsec,
                    "zero_point_ab": band.zero_point_ab if band.zero_point_ab is not None else 0.0,
                }
            )
            for subject_id, image in zip(found.tolist(), images, strict=True):
                fit = fit_sersic(image, settings)
                values = fit.as_dict()
                if band.zero_point_ab is None:
                    values["mag"] = None
                error = fit.errors.get("sersic_n") if fit.ok else None
                uncertainty = error / fit.sersic_n / math.log(10) if error and fit.sersic_n > 0 else 0.0
                rows.append(PredictionRow(subject_id, values, float(uncertainty), False))
        return rows


class PhenomenaTask(_ImageTask):
    """Compaction phase and recent mergers of simulated galaxies from their mock images alone
    (variant "runs": trained on the ingested simulation runs' metadata, held out by run)."""

    name = ModelTask.PHENOMENA
    primary_metric = "score"  # mean of the phase macro ROC AUC and the merger ROC AUC, held-out runs
    higher_is_better = True
    default_variant = "runs"
    survey_kinds = (Survey.Kind.SIMULATION,)

    def config(self, overrides: dict):
        from mlworker.ml.phenomena import PhenomenaConfig

        return _config(PhenomenaConfig, overrides)

    def export(self, variant: str, cfg=None):
        from mlworker.datasets import phenomena_dataset_export

        return phenomena_dataset_export(variant=variant or self.default_variant, cfg=cfg or self.config({}))

    def train(self, cfg, dataset_path: Path, progress):
        from mlworker.ml.phenomena import PhenomenaData, train

        return train(cfg, PhenomenaData.load(dataset_path), progress)

    def load(self, version: ModelVersion, device):
        from mlworker.ml.phenomena import load_model

        checkpoint = self.checkpoint(version, device)
        return checkpoint, load_model(checkpoint, device)

    def predict(
        self, version: ModelVersion, loaded, subject_ids: list[int], device, survey=None
    ) -> list[PredictionRow]:
        """Values: p_pre, p_blue_nugget, p_post, p_recent_merger and the most likely phase; the
        row's uncertainty is 1 - the largest phase probability."""
        from catalog.selectors import mock_image_arrays
        from mlworker.ml.imaging import out_of_distribution
        from mlworker.ml.phenomena import PHASES, predict

        checkpoint, model = loaded
        found, images = mock_image_arrays(image_ids=subject_ids, size=64)
        p_phase, p_merger = predict(checkpoint, images, device=device, model=model)
        ood = out_of_distribution(images, version.input_ranges)
        rows = []
        for i, image_id in enumerate(found.tolist()):
            values = {f"p_{name}": round(float(p_phase[i, k]), 4) for k, name in enumerate(PHASES)}
            values["p_recent_merger"] = round(float(p_merger[i]), 4)
            values["phase"] = PHASES[int(p_phase[i].argmax())]
            rows.append(PredictionRow(image_id, values, float(1 - p_phase[i].max()), bool(ood[i])))
        return rows


ENVIRONMENT_METHODS = ("photoz", "sort")  # versioned methods, not trained; "learned" is trained


class EnvironmentTask(_TorchTask):
    """Local density of a survey's galaxies from their redshifts: photo-z slices ("photoz"),
    SORT ("sort") and the learned estimator ("learned", trained on mock light cones). Each
    estimate needs the whole survey (neighbours): the first chunk of a run computes it for
    every galaxy (``prepare``), every chunk then writes its own rows."""

    name = ModelTask.ENVIRONMENT
    subject_field = "galaxy"
    primary_metric = "spearman_log_delta5"  # held-out mock light cone, against the true log delta_5
    higher_is_better = True
    default_variant = "learned"

    def config(self, overrides: dict):
        from mlworker.ml.environment_learned import LearnedConfig

        return _config(LearnedConfig, overrides)

    def refuse_training(self, variant: str) -> str | None:
        if variant in ENVIRONMENT_METHODS:
            return (
                f"the {variant} environment method is not trained: run it with manage.py environment --method {variant}"
            )
        if variant != "learned":
            return f"unknown environment variant {variant!r} (learned, or the methods {', '.join(ENVIRONMENT_METHODS)})"
        return None

    def export(self, variant: str, cfg=None):
        from mlworker.datasets import environment_dataset_export

        return environment_dataset_export(variant=variant, cfg=cfg or self.config({}))

    def train(self, cfg, dataset_path: Path, progress):
        from mlworker.ml.environment_learned import LearnedData, train

        return train(cfg, LearnedData.load(dataset_path), progress)

    def trained_for(self, version: ModelVersion) -> str:
        return f"{version} measures environment from photometric and spectroscopic redshifts"

    def survey_problems(self, version: ModelVersion, survey: Survey) -> list[str]:
        if survey.kind != Survey.Kind.IMAGING:
            return [f"it is a {survey.kind} survey, not a galaxy catalog"]
        if not Galaxy.objects.filter(survey=survey).exclude(z_phot__isnull=True, z_spec__isnull=True).exists():
            return [f"no galaxy of survey {survey.name} has a redshift"]
        return []

    def can_force(self, version: ModelVersion, survey: Survey) -> bool:
        return False

    def surveys(self, version: ModelVersion):
        return Survey.objects.filter(kind=Survey.Kind.IMAGING, galaxies__z_phot__isnull=False).distinct()

    def subject_ids(self, version: ModelVersion, survey: Survey, only_missing: bool) -> list[int]:
        ids = Galaxy.objects.filter(survey=survey).exclude(z_phot__isnull=True, z_spec__isnull=True)
        ids = ids.values_list("pk", flat=True)
        if only_missing:
            ids = ids.exclude(pk__in=version.predictions.values("galaxy_id"))
        return sorted(ids)

    def prediction_batch(self, version: ModelVersion) -> int:
        return 100_000  # rows come from the survey-wide estimate: writing them is all that is left

    def load(self, version: ModelVersion, device):
        if version.variant in ENVIRONMENT_METHODS:
            return None
        from mlworker.ml.environment_learned import load_model

        checkpoint = self.checkpoint(version, device)
        return checkpoint, load_model(checkpoint, device)

    def prepare(self, version: ModelVersion, loaded, survey: Survey, device, renew=None) -> None:
        from mlworker.environment import survey_estimate

        survey_estimate(version=version, loaded=loaded, survey=survey, device=device, renew=renew)

    def predict(
        self, version: ModelVersion, loaded, subject_ids: list[int], device, survey=None
    ) -> list[PredictionRow]:
        """Values: the redshift the method places the galaxy at (z, z_err), log Sigma_5 and
        Sigma_10 (h^2 Mpc^-2), counts in 1 h^-1 Mpc cylinders, and their log overdensities
        (log_delta5, log_delta10, log_delta_cylinder); the learned estimator gives log_delta5
        with its sigma (the row's uncertainty) and its learned redshift."""
        from mlworker.environment import survey_estimate

        estimate = survey_estimate(version=version, loaded=loaded, survey=survey, device=device)
        position = estimate["position"]
        rows = []
        for galaxy_id in subject_ids:
            i = position.get(galaxy_id)
            if i is None:
                continue
            values = {
                k: (None if not np.isfinite(v[i]) else round(float(v[i]), 5)) for k, v in estimate["values"].items()
            }
            values["method"] = version.variant
            uncertainty = values.get("log_delta5_err") or 0.0
            rows.append(PredictionRow(galaxy_id, values, float(uncertainty), False))
        return rows


class DLATask(_TorchTask):
    """The DLA finder over a spectroscopic survey's quasar sightlines (variant "mock": trained
    on mock sightlines made on the worker)."""

    name = ModelTask.DLA
    subject_field = "spectrum"
    primary_metric = "dla_score"  # completeness as DLA x (1 - fraction of false DLAs), held out
    default_variant = "mock"
    higher_is_better = True

    def config(self, overrides: dict):
        from mlworker.ml.dla import DLAConfig

        return _config(DLAConfig, overrides)

    def export(self, variant: str, cfg=None):
        from mlworker.datasets import dla_dataset_export

        return dla_dataset_export(variant=variant or self.default_variant, cfg=cfg or self.config({}))

    def train(self, cfg, dataset_path: Path, progress, deadline: float | None = None):
        from mlworker.ml.dla import DLAData, train

        return train(cfg, DLAData.load(dataset_path), progress, deadline)

    def trained_for(self, version: ModelVersion) -> str:
        return f"{version} scans SDSS-grid quasar spectra"

    def survey_problems(self, version: ModelVersion, survey: Survey) -> list[str]:
        if survey.kind != Survey.Kind.SPECTROSCOPIC:
            return [f"it is an {survey.kind} survey, not a spectroscopic one"]
        return []

    def can_force(self, version: ModelVersion, survey: Survey) -> bool:
        return False

    def surveys(self, version: ModelVersion):
        return Survey.objects.filter(kind=Survey.Kind.SPECTROSCOPIC, spectra__isnull=False).distinct()

    def subject_ids(self, version: ModelVersion, survey: Survey, only_missing: bool) -> list[int]:
        ids = QuasarSpectrum.objects.filter(survey=survey).values_list("pk", flat=True)
        if only_missing:
            ids = ids.exclude(pk__in=version.predictions.values("spectrum_id"))
        return sorted(ids)

    def after_write(self, version: ModelVersion, subject_ids: list[int] | None = None) -> None:
        return None

    def load(self, version: ModelVersion, device):
        from mlworker.ml.dla import load_model

        checkpoint = self.checkpoint(version, device)
        return checkpoint, load_model(checkpoint, device)

    def predict(
        self, version: ModelVersion, loaded, subject_ids: list[int], device, survey=None
    ) -> list[PredictionRow]:
        """Values: {"absorbers": [{z_abs, log_nhi, log_nhi_err, confidence, type, lyman_beta,
        pixel}], "snr", "z_qso"}; the row's uncertainty is the most ambiguous window's
        1 - |2 p - 1|; out of distribution: S/N outside the training range."""
        import numpy as np
        import torch
        from django.conf import settings

        from catalog.selectors import spectra_arrays
        from mlworker.ml.continuum import continuum_estimate
        from mlworker.ml.dla import (
            absorbers_from_scan,
            ambiguity,
            lyman_limit_flux,
            scan,
            scan_input,
            scan_windowed,
            veto_of,
        )

        # "windowed" (every 400-pixel window through the network, in chunks of 512) is the
        # baseline the one-pass scan is measured against (bench/dla.py); same outputs
        scanner = scan_windowed if getattr(settings, "GALAXYLAB_DLA_SCAN", "one-pass") == "windowed" else scan

        checkpoint, model = loaded
        cfg = checkpoint["config"]
        veto = veto_of(cfg)
        rows_of = QuasarSpectrum.objects.filter(pk__in=subject_ids).values_list("pk", "z_qso", "snr")
        facts, snr = {}, {}
        for pk, z_qso, s_n in rows_of:
            facts[pk], snr[pk] = z_qso, s_n
        lo, hi = (version.input_ranges or {}).get("snr", [0.0, float("inf")])
        rows = []
        for start in range(0, len(subject_ids), 8):
            ids = subject_ids[start : start + 8]
            arrays = list(spectra_arrays(spectrum_ids=ids))
            inputs, limits = [], []
            for i, (first, flux, ivar) in zip(ids, arrays, strict=True):
                continuum = continuum_estimate(first, flux, ivar, facts[i])  # once for both
                inputs.append(scan_input(first, flux, ivar, facts[i], continuum))
                limits.append(lyman_limit_flux(first, flux, ivar, facts[i], continuum) if veto else None)
            with torch.inference_mode():
                x = torch.from_numpy(np.stack([x for x, _ in inputs])).to(device)
                prob, offset, column = scanner(model, x, [facts[i] for i in ids])
            prob, offset, column = (t.float().cpu().numpy() for t in (prob, offset, column))
            for j, i in enumerate(ids):
                covered = inputs[j][1]
                found = absorbers_from_scan(
                    facts[i],
                    prob[j],
                    offset[j],
                    column[j],
                    covered,
                    cfg.get("vote_threshold", 0.2),
                    checkpoint.get("column_sigma", 0.0),
                    checkpoint.get("column_shift", 0.0),
                    limits[j],
                    veto,
                )
                values = {
                    "absorbers": [a.as_dict() for a in found],
                    "z_qso": round(facts[i], 4),
                    "snr": round(snr[i], 2),
                }
                ood = not (0.8 * lo <= snr[i] <= 1.2 * hi)
                rows.append(PredictionRow(i, values, ambiguity(prob[j], covered), ood))
        return rows


def _config(cls, overrides: dict):
    known = {f.name for f in fields(cls)}
    unknown = set(overrides) - known
    if unknown:
        raise ApplicationError(f"unknown training options {sorted(unknown)} (known: {sorted(known)})")
    return cls(**overrides)


TASKS = {
    ModelTask.MORPHOLOGY: MorphologyTask(),
    ModelTask.EMULATOR: EmulatorTask(),
    ModelTask.DLA: DLATask(),
    ModelTask.ENVIRONMENT: EnvironmentTask(),
    ModelTask.PHENOMENA: PhenomenaTask(),
}


def task_spec(name: str):
    spec = TASKS.get(name)
    if spec is None:
        raise ApplicationError(f"unknown task {name!r} (tasks: {', '.join(TASKS)})")
    return spec
