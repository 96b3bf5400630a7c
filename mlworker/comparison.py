"""Model against humans: the held-out comparison of a morphology version, its plots, the
galaxies where model and humans disagree most, and a galaxy's fractions beside predictions."""

import io

import numpy as np
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.db.models.functions import Mod

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion, Prediction
from labeling.models import AnswerCount, GalaxyVoteTotal, Scheme
from labeling.services import version_spec
from mlworker.ml.comparison import comparison_report

BASELINE_LABELS = {"model": "CNN", "prior": "class prior", "logistic": "logistic on image statistics"}


def morphology_version(*, variant: str, number: int | None = None) -> ModelVersion:
    """The promoted (or numbered) morphology version of a scheme; ApplicationError if none."""
    versions = ModelVersion.objects.filter(task=ModelTask.MORPHOLOGY, variant=variant)
    version = versions.filter(number=number).first() if number else versions.filter(is_promoted=True).first()
    if version is None:
        which = f"version {number}" if number else "promoted version"
        raise ApplicationError(f"no {which} of morphology/{variant}")
    return version


def version_layout(version: ModelVersion) -> tuple[list[str], tuple[int, int]]:
    """(answer keys, (start, stop) of the main question's answers) of a morphology version."""
    key = f"morphology-layout:{version.pk}"
    layout = cache.get(key)
    if layout is None:
        evaluation = version_evaluation(version)
        layout = ([str(a) for a in evaluation["answers"]], tuple(int(v) for v in evaluation["main"]))
        cache.set(key, layout, 24 * 3600)
    return layout


def version_evaluation(version: ModelVersion) -> dict:
    if not version.evaluation:
        raise ApplicationError(f"{version} has no stored held-out evaluation (trained before comparisons existed)")
    with default_storage.open(version.evaluation.name, "rb") as fh, np.load(fh, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}


def comparison(version: ModelVersion, n_boot: int = 1000) -> dict:
    """The report of mlworker.ml.comparison for a version (cached: it never changes)."""
    key = f"morphology-comparison:{version.pk}:{n_boot}"
    report = cache.get(key)
    if report is None:
        answers, main = version_layout(version)
        report = comparison_report(version_evaluation(version), answers, main, n_boot=n_boot)
        cache.set(key, report, 24 * 3600)
    return report


def comparison_rows(report: dict) -> list[dict]:
    """Flat table rows: source, answer, n, bias, scatter, RMSE with intervals."""
    rows = []
    for source, by in report["by"].items():
        for answer, stats in by["fractions"].items():
            rows.append(
                {"source": source, "label": BASELINE_LABELS.get(source, source), "answer": answer, **stats["all"]}
            )
    return rows


def disagreements(*, version: ModelVersion, limit: int = 50, held_out_only: bool = False) -> list[dict]:
    """Galaxies with votes and a prediction of ``version``, ranked by the largest absolute
    difference between model and human fraction over the main question's answers."""
    scheme = Scheme.objects.filter(slug=version.variant).first()
    if scheme is None:
        return []
    spec = version_spec(scheme.current_version.pk)
    answers, (start, stop) = version_layout(version)
    main_keys = answers[start:stop]
    answer_ids = {spec.answer_key[a]: a for a in spec.answer_key if spec.answer_key[a] in main_keys}
    human: dict[int, dict[str, float]] = {}
    counts = AnswerCount.objects.filter(scheme_version=scheme.current_version, answer_id__in=list(answer_ids.values()))
    if held_out_only:
        from mlworker.datasets import TEST_FRACTION_MODULUS

        counts = counts.annotate(split=Mod("galaxy_id", TEST_FRACTION_MODULUS)).filter(split=0)
    for galaxy_id, answer_id, fraction in counts.values_list("galaxy_id", "answer_id", "fraction").iterator(
        chunk_size=10_000
    ):
        human.setdefault(galaxy_id, {})[spec.answer_key[answer_id]] = fraction
    totals = dict(
        GalaxyVoteTotal.objects.filter(scheme_version=scheme.current_version, galaxy_id__in=list(human)).values_list(
            "galaxy_id", "n_votes"
        )
    )
    ranked = []
    predictions = Prediction.objects.filter(model_version=version, galaxy_id__in=list(human)).values_list(
        "galaxy_id", "values", "uncertainty"
    )
    for galaxy_id, values, uncertainty in predictions.iterator(chunk_size=5_000):
        model = values.get("fractions", values)
        diffs = {a: float(model.get(a, 0.0)) - human[galaxy_id].get(a, 0.0) for a in main_keys}
        worst = max(diffs, key=lambda a: abs(diffs[a]))
        ranked.append((abs(diffs[worst]), galaxy_id, worst, diffs, model, uncertainty))
    ranked.sort(key=lambda r: -r[0])
    out = []
    from catalog.models import Galaxy

    top = ranked[:limit]
    galaxies = Galaxy.objects.in_bulk([r[1] for r in top])
    for score, galaxy_id, worst, _diffs, model, uncertainty in top:
        out.append(
            {
                "galaxy": galaxies[galaxy_id],
                "score": score,
                "answer": worst,
                "model": float(model.get(worst, 0.0)),
                "human": human[galaxy_id].get(worst, 0.0),
                "n_votes": totals.get(galaxy_id, 0),
                "uncertainty": uncertainty,
            }
        )
    return out


def galaxy_comparison(*, galaxy_id: int) -> list[dict]:
    """For each scheme with votes on the galaxy: its answers with the human fraction and the
    promoted morphology version's prediction (and sigma) side by side."""
    out = []
    totals = GalaxyVoteTotal.objects.filter(galaxy_id=galaxy_id, n_votes__gt=0).select_related("scheme_version__scheme")
    predictions = {
        p.model_version.variant: p
        for p in Prediction.objects.filter(
            galaxy_id=galaxy_id, model_version__task=ModelTask.MORPHOLOGY, model_version__is_promoted=True
        ).select_related("model_version")
    }
    seen = set()
    for total in totals:
        scheme = total.scheme_version.scheme
        seen.add(scheme.slug)
        spec = version_spec(total.scheme_version_id)
        human = dict(
            AnswerCount.objects.filter(galaxy_id=galaxy_id, scheme_version=total.scheme_version).values_list(
                "answer_id", "fraction"
            )
        )
        out.append(_galaxy_rows(scheme.slug, scheme.name, spec, human, total.n_votes, predictions.get(scheme.slug)))
    for slug, prediction in predictions.items():
        if slug not in seen:
            scheme = Scheme.objects.filter(slug=slug).first()
            if scheme is not None:
                spec = version_spec(scheme.current_version.pk)
                out.append(_galaxy_rows(slug, scheme.name, spec, {}, 0, prediction))
    return out


def _galaxy_rows(slug, name, spec, human: dict, n_votes: int, prediction) -> dict:
    fractions = (prediction.values.get("fractions", {}) if prediction else {}) or {}
    sigma = (prediction.values.get("sigma", {}) if prediction else {}) or {}
    rows = []
    for q in sorted(spec.questions.values(), key=lambda q: q.position):
        for answer_id in q.answers:
            key = spec.answer_key[answer_id]
            h, m = human.get(answer_id), fractions.get(key)
            if h is None and m is None:
                continue
            rows.append({"key": key, "human": h, "model": m, "sigma": sigma.get(key)})
    return {
        "scheme": slug,
        "name": name,
        "n_votes": n_votes,
        "version": prediction.model_version if prediction else None,
        "out_of_distribution": prediction.out_of_distribution if prediction else False,
        "rows": rows,
    }


# ---- plots ----------------------------------------------------------------------------------
def _figure_png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buffer.getvalue()


def plot_predicted_vs_human(version: ModelVersion) -> bytes:
    """One panel per main-question answer: model fraction against human fraction, held out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    evaluation = version_evaluation(version)
    answers, (start, stop) = version_layout(version)
    n = stop - start
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.2), squeeze=False)
    rng = np.random.default_rng(0)
    for i, j in enumerate(range(start, stop)):
        ax = axes[0, i]
        human, model = evaluation["human"][:, j], evaluation["model"][:, j]
        jitter = rng.uniform(-0.015, 0.015, len(human))  # human fractions sit on a grid of 1/n
        ax.scatter(human + jitter, model, s=4, alpha=0.35, color="#1f5f8b", linewidths=0)
        levels = np.unique(np.round(human, 3))
        if len(levels) <= 12:
            medians = [np.median(model[np.isclose(human, v, atol=1e-3)]) for v in levels]
            ax.plot(levels, medians, "o-", color="#c0392b", ms=3, lw=1, label="median")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(answers[j].split(":")[-1], fontsize=10)
        ax.set_xlabel("human fraction")
        if i == 0:
            ax.set_ylabel("model fraction")
    fig.suptitle(f"{version}: held-out galaxies (n={len(evaluation['human'])})", fontsize=10)
    return _figure_png(fig)


def plot_bias_vs_magnitude(version: ModelVersion) -> bytes:
    """Bias (model - human) per magnitude bin with 95% bootstrap intervals: CNN and baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = comparison(version)
    answers = report["answers"]
    bins = report["mag_bins"]
    fig, axes = plt.subplots(1, len(answers), figsize=(3.0 * len(answers), 3.2), squeeze=False, sharey=True)
    offsets = {name: (k - 1) * 0.12 for k, name in enumerate(report["by"])}
    for i, answer in enumerate(answers):
        ax = axes[0, i]
        ax.axhline(0, color="k", lw=0.8)
        for name, by in report["by"].items():
            stats = by["fractions"][answer]["by_mag"]
            xs, ys, lo, hi = [], [], [], []
            for b, label in enumerate(bins):
                s = stats.get(label)
                if s and s.get("n", 0) >= 2:
                    xs.append(b + offsets[name])
                    ys.append(s["bias"])
                    lo.append(s["bias"] - s["bias_ci"][0])
                    hi.append(s["bias_ci"][1] - s["bias"])
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", ms=3, capsize=2, label=BASELINE_LABELS.get(name, name))
        ax.set_xticks(range(len(bins)))
        ax.set_xticklabels(bins, rotation=45, fontsize=8)
        ax.set_title(answer.split(":")[-1], fontsize=10)
        ax.set_xlabel("magnitude")
        if i == 0:
            ax.set_ylabel("bias (model - human)")
            ax.legend(fontsize=7)
    return _figure_png(fig)
