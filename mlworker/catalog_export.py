"""The galaxy morphology catalog: galaxies with the humans' vote fractions under a scheme and a
model version's predictions beside them, as JSON rows or a streamed CSV/FITS/VOTable."""

from collections.abc import Iterator

from catalog.errors import ApplicationError
from catalog.exports import Column
from catalog.models import ModelTask, ModelVersion, Prediction
from labeling.models import AnswerCount, GalaxyVoteTotal, Scheme
from labeling.services import version_spec

CHUNK = 2000
# The galaxy columns of every catalog table, and the queryset fields they come from.
GALAXY_COLUMNS = [
    Column("galaxy_id", "int", ucd="meta.id"),
    Column("survey", "str", width=64),
    Column("source_id", "str", width=64, ucd="meta.id;meta.main"),
    Column("ra", "float", unit="deg", ucd="pos.eq.ra;meta.main"),
    Column("dec", "float", unit="deg", ucd="pos.eq.dec;meta.main"),
    Column("mag", "float", unit="mag", ucd="phot.mag"),
    Column("z_phot", "float", ucd="src.redshift.phot"),
    Column("z_spec", "float", ucd="src.redshift"),
]
GALAXY_FIELDS = ("pk", "survey__name", "source_id", "ra", "dec", "mag", "z_phot", "z_spec")


def catalog_sources(*, scheme_slug: str, version_number: int | None = None):
    """(scheme version, model version or None): the scheme's current version and the promoted
    morphology version of the scheme (or the numbered one)."""
    scheme = Scheme.objects.filter(slug=scheme_slug).first()
    if scheme is None:
        known = ", ".join(Scheme.objects.order_by("slug").values_list("slug", flat=True))
        raise ApplicationError(f"no scheme {scheme_slug!r} (schemes: {known})")
    versions = ModelVersion.objects.filter(task=ModelTask.MORPHOLOGY, variant=scheme_slug)
    if version_number is not None:
        model_version = versions.filter(number=version_number).first()
        if model_version is None:
            raise ApplicationError(f"no version {version_number} of morphology/{scheme_slug}")
    else:
        model_version = versions.filter(is_promoted=True).first()
    return scheme.current_version, model_version


def _answer_keys(scheme_version) -> list[tuple[int, str]]:
    spec = version_spec(scheme_version.pk)
    out = []
    for q in sorted(spec.questions.values(), key=lambda q: q.position):
        out += [(answer_id, spec.answer_key[answer_id]) for answer_id in q.answers]
    return out


def _lookups(galaxy_ids: list[int], scheme_version, model_version):
    fractions: dict[int, dict[int, float]] = {}
    for galaxy_id, answer_id, fraction in AnswerCount.objects.filter(
        scheme_version=scheme_version, galaxy_id__in=galaxy_ids
    ).values_list("galaxy_id", "answer_id", "fraction"):
        fractions.setdefault(galaxy_id, {})[answer_id] = fraction
    totals = dict(
        GalaxyVoteTotal.objects.filter(scheme_version=scheme_version, galaxy_id__in=galaxy_ids).values_list(
            "galaxy_id", "n_votes"
        )
    )
    predictions = {}
    if model_version is not None:
        predictions = {
            galaxy_id: (values, uncertainty, ood)
            for galaxy_id, values, uncertainty, ood in Prediction.objects.filter(
                model_version=model_version, galaxy_id__in=galaxy_ids
            ).values_list("galaxy_id", "values", "uncertainty", "out_of_distribution")
        }
    return fractions, totals, predictions


def catalog_json_rows(galaxies: list[dict], scheme_version, model_version) -> list[dict]:
    """Adds "classification" (votes, human fractions, the model's prediction) to serialised galaxies."""
    keys = _answer_keys(scheme_version)
    fractions, totals, predictions = _lookups([g["id"] for g in galaxies], scheme_version, model_version)
    for g in galaxies:
        human = fractions.get(g["id"], {})
        n_votes = totals.get(g["id"], 0)
        entry = {
            "scheme": str(scheme_version),
            "n_votes": n_votes,
            "human": {key: human.get(answer_id, 0.0) for answer_id, key in keys} if n_votes else None,
            "model": None,
        }
        if g["id"] in predictions:
            values, uncertainty, ood = predictions[g["id"]]
            entry["model"] = {
                "version": str(model_version),
                "fractions": values.get("fractions", {}),
                "sigma": values.get("sigma", {}),
                "uncertainty": uncertainty,
                "out_of_distribution": ood,
            }
        g["classification"] = entry
    return galaxies


def _column_name(key: str) -> str:
    return key.replace(":", "_").replace("-", "_")


def catalog_table(queryset, scheme_version, model_version) -> tuple[list[Column], int, Iterator[list[tuple]]]:
    """One row per galaxy of ``queryset``: position, photometry, then per answer the human
    fraction (f_*), the model's fraction (p_*) and its sigma (sigma_*), then the model's
    overall uncertainty and out-of-distribution flag. Empty where nobody voted / no prediction."""
    keys = _answer_keys(scheme_version)
    columns = [
        *GALAXY_COLUMNS,
        Column("n_votes", "int", ucd="meta.number", description=f"counted votes under {scheme_version}"),
    ]
    for _, key in keys:
        name = _column_name(key)
        columns.append(Column(f"f_{name}", "float", ucd="stat.fit", description=f"human vote fraction: {key}"))
        columns.append(Column(f"p_{name}", "float", ucd="stat.fit", description=f"model fraction: {key}"))
        columns.append(Column(f"sigma_{name}", "float", ucd="stat.error", description=f"model sigma: {key}"))
    columns += [
        Column("model_uncertainty", "float", ucd="stat.error", description="mean sigma over the main question"),
        Column("model_ood", "bool", description="input statistics outside the model's training range"),
        Column("model_version", "str", width=64, description="the model version of the p_* columns"),
    ]
    n_rows = queryset.count()
    version_name = str(model_version) if model_version else ""

    def chunks() -> Iterator[list[tuple]]:
        last = 0
        while True:
            batch = list(queryset.filter(pk__gt=last).order_by("pk").values_list(*GALAXY_FIELDS)[:CHUNK])
            if not batch:
                return
            fractions, totals, predictions = _lookups([b[0] for b in batch], scheme_version, model_version)
            rows = []
            for b in batch:
                n_votes = totals.get(b[0], 0)
                human = fractions.get(b[0], {})
                values, uncertainty, ood = predictions.get(b[0], ({}, None, None))
                model, sigma = values.get("fractions", {}), values.get("sigma", {})
                row = [*b, n_votes]
                for answer_id, key in keys:
                    row += [human.get(answer_id, 0.0) if n_votes else None, model.get(key), sigma.get(key)]
                row += [uncertainty, bool(ood), version_name if b[0] in predictions else ""]
                rows.append(tuple(row))
            yield rows
            last = batch[-1][0]

    return columns, n_rows, chunks()
