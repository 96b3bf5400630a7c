"""The votes and the vote fractions as streamed tables (CSV, FITS, VOTable) for export."""

from collections.abc import Iterator

from catalog.exports import Column
from labeling.models import Answer, AnswerCount, GalaxyVoteTotal, Vote, VoteAnswer, WeightedFraction

CHUNK = 2000


def _answers(scheme_version) -> list[Answer]:
    return list(
        Answer.objects.filter(question__version=scheme_version)
        .select_related("question")
        .order_by("question__position", "position")
    )


def votes_table(*, scheme_version, project=None) -> tuple[list[Column], int, Iterator[list[tuple]]]:
    """One row per vote: who, what, when, and one true/false column per answer."""
    answers = _answers(scheme_version)
    columns = [
        Column("vote_id", "int", ucd="meta.id"),
        Column("project", "str", width=64),
        Column("scheme", "str", width=50),
        Column("scheme_version", "int"),
        Column("survey", "str", width=64),
        Column("source_id", "str", width=64, ucd="meta.id;meta.main"),
        Column("galaxy_id", "int"),
        Column("classifier", "str", width=150),
        Column("created_at", "str", width=32, ucd="time.epoch", description="ISO 8601, UTC"),
        Column("is_gold", "bool", description="gold-standard check, not counted in fractions"),
        Column("seconds_spent", "float", unit="s"),
    ] + [Column(a.column_name, "bool", description=a.label) for a in answers]
    votes = Vote.objects.filter(scheme_version=scheme_version)
    if project is not None:
        votes = votes.filter(project=project)
    n_rows = votes.count()
    scheme = scheme_version.scheme.slug
    position = {a.pk: i for i, a in enumerate(answers)}

    def chunks() -> Iterator[list[tuple]]:
        last = 0
        while True:
            batch = list(
                votes.filter(pk__gt=last)
                .order_by("pk")
                .values_list(
                    "pk",
                    "project__slug",
                    "galaxy__survey__name",
                    "galaxy__source_id",
                    "galaxy_id",
                    "classifier__username",
                    "created_at",
                    "is_gold",
                    "seconds_spent",
                )[:CHUNK]
            )
            if not batch:
                return
            chosen: dict[int, set[int]] = {}
            for vote_id, answer_id in VoteAnswer.objects.filter(vote_id__in=[b[0] for b in batch]).values_list(
                "vote_id", "answer_id"
            ):
                chosen.setdefault(vote_id, set()).add(position[answer_id])
            rows = []
            for vote_id, project_slug, survey, source_id, galaxy_id, classifier, created_at, is_gold, seconds in batch:
                flags = chosen.get(vote_id, set())
                rows.append(
                    (
                        vote_id,
                        project_slug,
                        scheme,
                        scheme_version.number,
                        survey,
                        source_id,
                        galaxy_id,
                        classifier,
                        created_at.isoformat(),
                        is_gold,
                        seconds,
                        *[i in flags for i in range(len(answers))],
                    )
                )
            yield rows
            last = batch[-1][0]

    return columns, n_rows, chunks()


def fractions_table(
    *, scheme_version, survey=None, weighted: bool = True
) -> tuple[list[Column], int, Iterator[list[tuple]]]:
    """One row per voted galaxy: position, magnitude, votes, then count and fraction (and the
    consistency-weighted fraction) per answer."""
    answers = _answers(scheme_version)
    columns = [
        Column("galaxy_id", "int"),
        Column("survey", "str", width=64),
        Column("source_id", "str", width=64, ucd="meta.id;meta.main"),
        Column("ra", "float", unit="deg", ucd="pos.eq.ra;meta.main"),
        Column("dec", "float", unit="deg", ucd="pos.eq.dec;meta.main"),
        Column("mag", "float", unit="mag", ucd="phot.mag"),
        Column("n_votes", "int", ucd="meta.number", description="counted votes (gold-standard checks excluded)"),
    ]
    for a in answers:
        columns.append(Column(f"{a.column_name}_count", "int", description=f"{a.question.text}: {a.label}"))
        columns.append(Column(f"{a.column_name}_fraction", "float", ucd="stat.fit", description=a.label))
        if weighted:
            columns.append(
                Column(f"{a.column_name}_weighted", "float", description=f"{a.label} (consistency-weighted)")
            )
    totals = GalaxyVoteTotal.objects.filter(scheme_version=scheme_version, n_votes__gt=0)
    if survey is not None:
        totals = totals.filter(galaxy__survey=survey)
    n_rows = totals.count()
    position = {a.pk: i for i, a in enumerate(answers)}

    def chunks() -> Iterator[list[tuple]]:
        last = 0
        while True:
            batch = list(
                totals.filter(galaxy_id__gt=last)
                .order_by("galaxy_id")
                .values_list(
                    "galaxy_id",
                    "galaxy__survey__name",
                    "galaxy__source_id",
                    "galaxy__ra",
                    "galaxy__dec",
                    "galaxy__mag",
                    "n_votes",
                )[:CHUNK]
            )
            if not batch:
                return
            ids = [b[0] for b in batch]
            counts: dict[int, dict[int, tuple[int, float]]] = {}
            for galaxy_id, answer_id, count, fraction in AnswerCount.objects.filter(
                scheme_version=scheme_version, galaxy_id__in=ids
            ).values_list("galaxy_id", "answer_id", "count", "fraction"):
                counts.setdefault(galaxy_id, {})[position[answer_id]] = (count, fraction)
            weights: dict[int, dict[int, float]] = {}
            if weighted:
                for galaxy_id, answer_id, fraction in WeightedFraction.objects.filter(
                    scheme_version=scheme_version, galaxy_id__in=ids
                ).values_list("galaxy_id", "answer_id", "fraction"):
                    weights.setdefault(galaxy_id, {})[position[answer_id]] = fraction
            rows = []
            for b in batch:
                values = list(b)
                got, w = counts.get(b[0], {}), weights.get(b[0], {})
                for i in range(len(answers)):
                    count, fraction = got.get(i, (0, 0.0))
                    values += [count, fraction] + ([w.get(i)] if weighted else [])
                rows.append(tuple(values))
            yield rows
            last = batch[-1][0]

    return columns, n_rows, chunks()
