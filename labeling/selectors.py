"""Reads of the labeling app: the next galaxy to show, fractions, classifier and project statistics."""

import random
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from django.db import connection
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from labeling.models import (
    AnswerCount,
    GalaxyVoteTotal,
    GoldLabel,
    Project,
    ProjectSubject,
    Vote,
    WeightedFraction,
)


def projects_for(user) -> QuerySet[Project]:
    projects = Project.objects.filter(is_active=True).select_related("scheme_version__scheme", "survey")
    if user.is_staff:
        return projects
    return projects.filter(classifiers=user) | projects.filter(classifiers__isnull=True)


@dataclass
class Cutout:
    id: int
    band: str
    checksum: str
    pixel_scale_arcsec: float


@dataclass
class NextSubject:
    """What the voting UI shows of a galaxy (never whether it is a gold-standard check)."""

    galaxy_id: int
    source_id: str
    ra: float
    dec: float
    mag: float | None
    cutouts: list[Cutout]


_UNSEEN = """
    s.project_id = %s AND s.retired = %s AND s.is_gold = %s
    AND NOT EXISTS (SELECT 1 FROM labeling_vote v WHERE v.classifier_id = %s AND v.scheme_id = %s AND v.galaxy_id = s.galaxy_id)
    AND NOT EXISTS (SELECT 1 FROM labeling_skip k WHERE k.project_id = %s AND k.classifier_id = %s AND k.galaxy_id = s.galaxy_id)
"""


def _pick(
    project: Project, classifier, *, gold: bool, where: str, where_params: list, order: str, exclude: list[int]
) -> int | None:
    """The first unseen subject in ``order``: one indexed query, no locks (two classifiers
    asking at once both get valid galaxies). Plain SQL: this runs on every "next"."""
    params = [project.pk, False, gold, classifier.pk, project.scheme_version.scheme_id, project.pk, classifier.pk]
    sql = f"SELECT s.galaxy_id FROM labeling_projectsubject s WHERE {_UNSEEN}"
    if where:
        sql += f" AND {where}"
        params += where_params
    if exclude:
        sql += f" AND s.galaxy_id NOT IN ({', '.join(['%s'] * len(exclude))})"
        params += exclude
    sql += f" ORDER BY {order} LIMIT 1"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


def _random(project: Project, classifier, gold: bool, exclude: list[int], rng: random.Random) -> int | None:
    """The first subject at or after a random point of the random_key index, wrapping around."""
    start = rng.random()
    return _pick(
        project,
        classifier,
        gold=gold,
        where="s.random_key >= %s",
        where_params=[start],
        order="s.random_key",
        exclude=exclude,
    ) or _pick(
        project,
        classifier,
        gold=gold,
        where="s.random_key < %s",
        where_params=[start],
        order="s.random_key",
        exclude=exclude,
    )


def subject_next(
    *, project: Project, classifier, exclude: list[int] | None = None, rng: random.Random | None = None
) -> NextSubject | None:
    """The next galaxy to show: never one the classifier voted on or skipped, never a retired
    one; a gold-standard check at the project's rate; otherwise by the project's strategy."""
    rng = rng or random.Random()
    exclude = list(exclude or [])
    galaxy_id = None
    if project.gold_rate and rng.random() < project.gold_rate:
        galaxy_id = _random(project, classifier, True, exclude, rng)
    if galaxy_id is None and project.strategy == Project.Strategy.PRIORITY:
        galaxy_id = _pick(
            project,
            classifier,
            gold=False,
            where="",
            where_params=[],
            order="s.priority DESC, s.random_key",
            exclude=exclude,
        )
    elif galaxy_id is None and project.strategy == Project.Strategy.ACTIVE:
        # Largest model uncertainty or disagreement first, once a model has scored the subjects.
        galaxy_id = _pick(
            project,
            classifier,
            gold=False,
            where="s.active_score IS NOT NULL",
            where_params=[],
            order="s.active_score DESC, s.random_key",
            exclude=exclude,
        )
    if galaxy_id is None:
        galaxy_id = _random(project, classifier, False, exclude, rng)
    return subject_view(galaxy_id=galaxy_id) if galaxy_id is not None else None


def subject_view(*, galaxy_id: int) -> NextSubject | None:
    """A galaxy with its cutouts, in one query."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT g.id, g.source_id, g.ra, g.dec, g.mag, c.id, b.name, c.checksum, c.pixel_scale_arcsec "
            "FROM catalog_galaxy g LEFT JOIN catalog_cutout c ON c.galaxy_id = g.id LEFT JOIN catalog_band b ON b.id = c.band_id "
            "WHERE g.id = %s ORDER BY b.name",
            [galaxy_id],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    first = rows[0]
    cutouts = [Cutout(id=r[5], band=r[6], checksum=r[7], pixel_scale_arcsec=r[8]) for r in rows if r[5] is not None]
    return NextSubject(galaxy_id=first[0], source_id=first[1], ra=first[2], dec=first[3], mag=first[4], cutouts=cutouts)


def galaxy_fractions(*, galaxy_id: int) -> list[dict]:
    """Counts and fractions (raw and consistency-weighted) of a galaxy, per scheme version."""
    totals = {t.scheme_version_id: t.n_votes for t in GalaxyVoteTotal.objects.filter(galaxy_id=galaxy_id)}
    weighted = {w.answer_id: w.fraction for w in WeightedFraction.objects.filter(galaxy_id=galaxy_id)}
    by_version: dict[int, dict] = {}
    counts = AnswerCount.objects.filter(galaxy_id=galaxy_id).select_related(
        "answer__question", "scheme_version__scheme"
    )
    for row in counts.order_by("scheme_version_id", "answer__question__position", "answer__position"):
        entry = by_version.setdefault(
            row.scheme_version_id,
            {
                "scheme": row.scheme_version.scheme.slug,
                "version": row.scheme_version.number,
                "n_votes": totals.get(row.scheme_version_id, 0),
                "answers": [],
            },
        )
        entry["answers"].append(
            {
                "question": row.answer.question.key,
                "answer": row.answer.key,
                "label": row.answer.label,
                "count": row.count,
                "fraction": row.fraction,
                "weighted_fraction": weighted.get(row.answer_id),
            }
        )
    return list(by_version.values())


def project_progress(*, project: Project, days: int = 30) -> dict:
    subjects = ProjectSubject.objects.filter(project=project, is_gold=False)
    total = subjects.count()
    retired = subjects.filter(retired=True).count()
    since = timezone.now() - timedelta(days=days)
    per_day = list(
        Vote.objects.filter(project=project, created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values_list("day")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    return {
        "subjects": total,
        "retired": retired,
        "retired_fraction": retired / total if total else 0.0,
        "votes": Vote.objects.filter(project=project).count(),
        "gold_subjects": ProjectSubject.objects.filter(project=project, is_gold=True).count(),
        "votes_per_day": [{"day": d, "votes": n} for d, n in per_day],
    }


def classifier_stats(*, project: Project) -> list[dict]:
    """Per classifier: votes, agreement with the consensus on the first question, accuracy on
    gold-standard galaxies (mean Jaccard overlap with the gold answers) and median seconds.

    Aggregated in the database (a project may hold millions of votes); only gold checks and
    the seconds per vote come back row by row.
    """
    from labeling.services import version_spec

    spec = version_spec(project.scheme_version_id)
    first = sorted(spec.first_question.answers)
    placeholders = ", ".join(["%s"] * len(first))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT u.id, u.username, COUNT(v.id) FROM labeling_vote v JOIN accounts_user u ON u.id = v.classifier_id "
            "WHERE v.project_id = %s AND v.is_gold = %s GROUP BY u.id, u.username",
            [project.pk, False],
        )
        stats = {
            uid: {"classifier": name, "votes": n, "agree": None, "gold": [], "seconds": []}
            for uid, name, n in cursor.fetchall()
        }
        # The consensus of a galaxy: its first-question answer with the largest fraction.
        cursor.execute(
            "WITH ranked AS (SELECT galaxy_id, answer_id, ROW_NUMBER() OVER (PARTITION BY galaxy_id ORDER BY fraction DESC, answer_id) AS rn "
            f"  FROM labeling_answercount WHERE scheme_version_id = %s AND answer_id IN ({placeholders})) "
            "SELECT v.classifier_id, AVG(CASE WHEN va.id IS NULL THEN 0.0 ELSE 1.0 END) FROM labeling_vote v "
            "JOIN ranked r ON r.galaxy_id = v.galaxy_id AND r.rn = 1 "
            "LEFT JOIN labeling_voteanswer va ON va.vote_id = v.id AND va.answer_id = r.answer_id "
            "WHERE v.project_id = %s AND v.is_gold = %s GROUP BY v.classifier_id",
            [project.scheme_version_id, *first, project.pk, False],
        )
        for uid, agreement in cursor.fetchall():
            if uid in stats:
                stats[uid]["agree"] = float(agreement)
    for uid, seconds in (
        Vote.objects.filter(project=project, is_gold=False, seconds_spent__isnull=False)
        .values_list("classifier_id", "seconds_spent")
        .iterator(10_000)
    ):
        stats[uid]["seconds"].append(seconds)
    gold = {
        g.galaxy_id: set(g.answers.values_list("id", flat=True))
        for g in GoldLabel.objects.filter(scheme_version=project.scheme_version).prefetch_related("answers")
    }
    gold_votes = list(
        Vote.objects.filter(project=project, is_gold=True).values_list(
            "id", "classifier_id", "classifier__username", "galaxy_id"
        )
    )
    chosen: dict[int, set[int]] = defaultdict(set)
    for vote_id, answer_id in Vote.answers.through.objects.filter(vote_id__in=[g[0] for g in gold_votes]).values_list(
        "vote_id", "answer_id"
    ):
        chosen[vote_id].add(answer_id)
    for vote_id, uid, name, galaxy_id in gold_votes:
        if galaxy_id in gold:
            entry = stats.setdefault(uid, {"classifier": name, "votes": 0, "agree": None, "gold": [], "seconds": []})
            truth = gold[galaxy_id]
            entry["gold"].append(len(chosen[vote_id] & truth) / len(chosen[vote_id] | truth))
    rows = [
        {
            "classifier": s["classifier"],
            "votes": s["votes"],
            "agreement": s["agree"],
            "gold_votes": len(s["gold"]),
            "gold_accuracy": sum(s["gold"]) / len(s["gold"]) if s["gold"] else None,
            "median_seconds": statistics.median(s["seconds"]) if s["seconds"] else None,
        }
        for s in stats.values()
    ]
    return sorted(rows, key=lambda r: -r["votes"])


def scheme_layout(*, scheme_version) -> dict:
    """A scheme version as the voting UI draws it: questions in order with their answers,
    shortcuts, defaults, grid axes and (for trees) where each answer leads."""
    definition = scheme_version.definition
    axes = {q["key"]: (q.get("rows", []), q.get("columns", [])) for q in definition["questions"]}
    questions = []
    for q in scheme_version.questions.prefetch_related("answers").order_by("position"):
        answers = list(q.answers.all())
        default = next((a.pk for a in answers if a.key == q.default_key), None) if q.default_key else None
        rows, columns = axes.get(q.key, ([], []))
        questions.append(
            {
                "id": q.pk,
                "key": q.key,
                "text": q.text,
                "kind": q.kind,
                "required": q.required,
                "default": default,
                "rows": rows,
                "columns": columns,
                "answers": [
                    {
                        "id": a.pk,
                        "key": a.key,
                        "label": a.label,
                        "shortcut": a.shortcut,
                        "next": a.next_question_id,
                        "row": a.grid_row,
                        "column": a.grid_column,
                    }
                    for a in answers
                ],
            }
        )
    return {
        "scheme": scheme_version.scheme.slug,
        "version": scheme_version.number,
        "kind": scheme_version.scheme.kind,
        "root": scheme_version.root_id,
        "questions": questions,
    }
