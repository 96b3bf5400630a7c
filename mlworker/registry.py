"""The model families the platform can train and apply, behind one interface.

Each task says how to export its dataset, which pure training function and config to use,
which metric decides promotion, which subjects it predicts for, and how to turn a chunk of
subjects into prediction rows. Tasks whose models come with later work are listed as not
available, with the reason.
"""

from dataclasses import dataclass, fields
from pathlib import Path

from catalog.errors import ApplicationError
from catalog.models import Band, Cutout, Galaxy, ModelTask, ModelVersion, Survey


@dataclass(frozen=True)
class PredictionRow:
    subject_id: int
    values: dict
    uncertainty: float
    out_of_distribution: bool


class MorphologyTask:
    name = ModelTask.MORPHOLOGY
    subject_field = "galaxy"
    primary_metric = "rmse"
    higher_is_better = False

    def config(self, overrides: dict):
        from mlworker.ml.morphology import MorphologyConfig

        known = {f.name for f in fields(MorphologyConfig)}
        unknown = set(overrides) - known
        if unknown:
            raise ApplicationError(f"unknown training options {sorted(unknown)} (known: {sorted(known)})")
        return MorphologyConfig(**overrides)

    def export(self, variant: str):
        from mlworker.datasets import morphology_dataset_export

        return morphology_dataset_export(variant=variant)

    def train(self, cfg, dataset_path: Path, progress):
        from mlworker.ml.morphology import MorphologyData, train

        return train(cfg, MorphologyData.load(dataset_path), progress)

    def subject_ids(self, version: ModelVersion, survey: Survey, only_missing: bool) -> list[int]:
        """Galaxies of the survey with a cutout in the band the model was trained for."""
        band = Band.objects.filter(survey=survey, name=version.band).first()
        if band is None:
            return []
        ids = Cutout.objects.filter(band=band).values_list("galaxy_id", flat=True)
        if only_missing:
            ids = ids.exclude(galaxy_id__in=version.predictions.values("galaxy_id"))
        return sorted(ids)

    def after_write(self, version: ModelVersion, subject_ids: list[int] | None = None) -> None:
        """The promoted model's uncertainties feed the voting queue's "active" strategy."""
        from labeling.services import active_scores_set

        if version.is_promoted:
            active_scores_set(scheme_slug=version.variant, prediction_version_id=version.pk, galaxy_ids=subject_ids)

    def survey_band(self, version: ModelVersion, survey: Survey) -> Band | None:
        return Band.objects.filter(survey=survey, name=version.band).first()

    def checkpoint(self, version: ModelVersion, device="cpu") -> dict:
        import torch

        with version.weights.open("rb") as fh:
            return torch.load(fh, map_location=device, weights_only=True)

    def load(self, version: ModelVersion, device):
        from mlworker.ml.morphology import load_model

        checkpoint = self.checkpoint(version, device)
        return checkpoint, load_model(checkpoint, device)

    def predict(self, version: ModelVersion, loaded, subject_ids: list[int], device) -> list[PredictionRow]:
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


class NotYetAvailable:
    def __init__(self, name: str, issue: str):
        self.name, self.issue = name, issue


TASKS = {
    ModelTask.MORPHOLOGY: MorphologyTask(),
    ModelTask.EMULATOR: NotYetAvailable(ModelTask.EMULATOR, "the GALFIT emulator"),
    ModelTask.DLA: NotYetAvailable(ModelTask.DLA, "the DLA finder"),
    ModelTask.ENVIRONMENT: NotYetAvailable(ModelTask.ENVIRONMENT, "the environment estimator"),
}


def task_spec(name: str):
    spec = TASKS.get(name)
    if spec is None:
        raise ApplicationError(f"unknown task {name!r} (tasks: {', '.join(TASKS)})")
    if isinstance(spec, NotYetAvailable):
        raise ApplicationError(f"task {name}: {spec.issue} is not part of this release yet")
    return spec
