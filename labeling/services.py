"""Writes of the labeling app: schemes, projects, votes, skips, retirement, gold labels, fractions.

Counts and fractions change in the same transaction as the vote that changes them. Locks are
taken in one order everywhere (the project subject row, then the galaxy's vote total, then
its answer counts sorted by answer), so concurrent votes never deadlock; a duplicate vote is
refused by the database's unique constraint, whatever the timing.
"""

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, OuterRef, Subquery
from django.utils import timezone

from catalog.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling.models import (
    Answer,
    AnswerCount,
    ClassifierWeight,
    GalaxyVoteTotal,
    GoldLabel,
    Project,
    ProjectSubject,
    Question,
    Scheme,
    SchemeVersion,
    Skip,
    Vote,
    VoteAnswer,
    WeightedFraction,
)
from labeling.schemes import validate_definition
from labeling.schemes.build import build_version_rows

# ---------------------------------------------------------------------------------------
# Scheme versions: an in-memory view of a version's structure, used to validate votes.


@dataclass(frozen=True)
class QuestionSpec:
    id: int
    key: str
    kind: str
    required: bool
    position: int
    default_answer: int | None
    answers: dict[int, int | None]  # answer id -> next question id (trees)
    answer_keys: dict[str, int]


@dataclass(frozen=True)
class VersionSpec:
    id: int
    scheme_id: int
    scheme_slug: str
    kind: str
    root: int | None
    questions: dict[int, QuestionSpec]
    answer_question: dict[int, int] = field(default_factory=dict)  # answer id -> question id
    answer_key: dict[int, str] = field(default_factory=dict)  # answer id -> "question:answer"

    @property
    def first_question(self) -> QuestionSpec:
        return min(self.questions.values(), key=lambda q: q.position)

    def resolve(self, answers: list) -> list[int]:
        """Answer ids from ids or "question:answer" keys; raises ApplicationError."""
        by_key = {q.key: q for q in self.questions.values()}
        ids = []
        for item in answers:
            if isinstance(item, bool):
                raise ApplicationError(f"answer {item!r} is neither an answer id nor 'question:answer'")
            if isinstance(item, int):
                ids.append(item)
                continue
            question_key, sep, answer_key = str(item).partition(":")
            question = by_key.get(question_key)
            if not sep or question is None or answer_key not in question.answer_keys:
                raise ApplicationError(
                    f"{item!r} is not an answer of {self.scheme_slug} (use 'question:answer' or an answer id)"
                )
            ids.append(question.answer_keys[answer_key])
        return ids

    def validate(self, answer_ids: list[int]) -> list[int]:
        """The complete, valid answer set of a vote (defaults filled in); raises ApplicationError."""
        unknown = [a for a in answer_ids if a not in self.answer_question]
        if unknown:
            raise ApplicationError(f"answers {unknown} do not belong to scheme {self.scheme_slug} version in use")
        if len(set(answer_ids)) != len(answer_ids):
            raise ApplicationError("an answer is given twice")
        chosen: dict[int, list[int]] = {}
        for a in answer_ids:
            chosen.setdefault(self.answer_question[a], []).append(a)
        if self.kind == Scheme.Kind.TREE:
            return self._validate_path(chosen)
        result = []
        for q in sorted(self.questions.values(), key=lambda q: q.position):
            picked = chosen.get(q.id, [])
            if not picked and q.default_answer is not None:
                picked = [q.default_answer]
            if q.kind in (Question.Kind.SINGLE, Question.Kind.GRID) and len(picked) > 1:
                raise ApplicationError(f"question {q.key!r} takes one answer, got {len(picked)}")
            if q.required and not picked:
                raise ApplicationError(f"question {q.key!r} needs an answer")
            result += picked
        return result

    def _validate_path(self, chosen: dict[int, list[int]]) -> list[int]:
        path, question_id, visited = [], self.root, set()
        while question_id is not None:
            q = self.questions[question_id]
            picked = chosen.get(question_id, [])
            if len(picked) != 1:
                raise ApplicationError(f"question {q.key!r} is on the path and needs exactly one answer")
            visited.add(question_id)
            path.append(picked[0])
            question_id = q.answers[picked[0]]
        off_path = set(chosen) - visited
        if off_path:
            keys = ", ".join(sorted(self.questions[q].key for q in off_path))
            raise ApplicationError(f"answers to questions off the path taken: {keys}")
        return path


_SPECS: dict[int, VersionSpec] = {}


def version_spec(version_id: int) -> VersionSpec:
    """The structure of a scheme version (cached: versions never change)."""
    spec = _SPECS.get(version_id)
    if spec is not None:
        return spec
    version = SchemeVersion.objects.select_related("scheme").get(pk=version_id)
    questions = {}
    answer_question, answer_key = {}, {}
    for q in version.questions.prefetch_related("answers"):
        answers = list(q.answers.all())
        default = next((a.pk for a in answers if a.key == q.default_key), None) if q.default_key else None
        questions[q.pk] = QuestionSpec(
            id=q.pk,
            key=q.key,
            kind=q.kind,
            required=q.required,
            position=q.position,
            default_answer=default,
            answers={a.pk: a.next_question_id for a in answers},
            answer_keys={a.key: a.pk for a in answers},
        )
        answer_question.update({a.pk: q.pk for a in answers})
        answer_key.update({a.pk: f"{q.key}:{a.key}" for a in answers})
    spec = VersionSpec(
        id=version.pk,
        scheme_id=version.scheme_id,
        scheme_slug=version.scheme.slug,
        kind=version.scheme.kind,
        root=version.root_id,
        questions=questions,
        answer_question=answer_question,
        answer_key=answer_key,
    )
    _SPECS[version_id] = spec
    return spec


@transaction.atomic
def scheme_version_create(*, definition: dict) -> SchemeVersion:
    """A new version of a scheme (the scheme is created with its first version)."""
    problems = validate_definition(definition)
    if problems:
        raise ApplicationError("invalid scheme definition: " + "; ".join(problems))
    existing = Scheme.objects.filter(slug=definition["slug"]).first()
    if existing and existing.kind != definition["kind"]:
        raise ApplicationError(f"scheme {existing.slug} is a {existing.kind} scheme; a new version cannot change that")
    return build_version_rows(
        scheme_model=Scheme,
        version_model=SchemeVersion,
        question_model=Question,
        answer_model=Answer,
        definition=definition,
    )


# ---------------------------------------------------------------------------------------
# Projects and their subject sets.


def _random_sql() -> str:
    if connection.vendor == "postgresql":
        return "random()"
    return "(abs(random()) %% 1000000000) / 1000000000.0"  # %% : a literal % in a parametrised query


@transaction.atomic
def project_subjects_sync(*, project: Project) -> int:
    """Adds the survey's galaxies that pass the project's filters; returns how many were added.
    Existing subjects (and their votes) are kept."""
    where = ["g.survey_id = %s"]
    params: list = [project.survey_id]
    if project.mag_min is not None:
        where.append("g.mag >= %s")
        params.append(project.mag_min)
    if project.mag_max is not None:
        where.append("g.mag <= %s")
        params.append(project.mag_max)
    table = ProjectSubject._meta.db_table
    galaxy_table = "catalog_galaxy"
    sql = (
        f"INSERT INTO {table} (project_id, galaxy_id, random_key, priority, n_votes, is_gold, retired, retired_reason) "
        f"SELECT %s, g.id, {_random_sql()}, 0, 0, false, false, '' FROM {galaxy_table} g "
        f"WHERE {' AND '.join(where)} AND NOT EXISTS (SELECT 1 FROM {table} s WHERE s.project_id = %s AND s.galaxy_id = g.id)"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [project.pk, *params, project.pk])
        return cursor.rowcount


@transaction.atomic
def project_create(
    *,
    slug: str,
    name: str,
    scheme_slug: str,
    survey,
    mag_min: float | None = None,
    mag_max: float | None = None,
    strategy: str = Project.Strategy.RANDOM,
    retire_after: int | None = None,
    gold_rate: float = 0.0,
    consensus_fraction: float | None = None,
    description: str = "",
) -> Project:
    scheme = Scheme.objects.filter(slug=scheme_slug).first()
    if scheme is None:
        raise ApplicationError(
            f"no scheme {scheme_slug!r} (known: {', '.join(Scheme.objects.values_list('slug', flat=True))})"
        )
    if Project.objects.filter(slug=slug).exists():
        raise Conflict(f"a project called {slug!r} exists")
    project = Project.objects.create(
        slug=slug,
        name=name,
        description=description,
        scheme_version=scheme.current_version,
        survey=survey,
        mag_min=mag_min,
        mag_max=mag_max,
        strategy=strategy,
        retire_after=retire_after or scheme.default_retire_after,
        gold_rate=gold_rate,
        consensus_fraction=consensus_fraction,
    )
    project_subjects_sync(project=project)
    return project


def project_delete(*, project: Project) -> None:
    if Vote.objects.filter(project=project).exists():
        raise ApplicationError(f"project {project.slug} has votes: deactivate it instead (votes are never thrown away)")
    project.delete()


def check_classifier(*, project: Project, classifier) -> None:
    """Raises unless the user may classify in the project (staff always may)."""
    if not classifier.is_active:
        raise ApplicationError("this account is inactive")
    if not project.is_active:
        raise ApplicationError(f"project {project.slug} is closed")
    if classifier.is_staff:
        return
    # Views may fetch the project with these two answers annotated (one query instead of two).
    restricted = getattr(project, "restricted", None)
    member = getattr(project, "is_member", None)
    if restricted is None or member is None:
        restricted = project.classifiers.exists()
        member = restricted and project.classifiers.filter(pk=classifier.pk).exists()
    if restricted and not member:
        raise Forbidden(f"you are not a classifier of project {project.slug}")


# ---------------------------------------------------------------------------------------
# Counts and fractions.


def _apply_counts(*, galaxy_id: int, spec: VersionSpec, answer_ids: list[int], delta: int) -> int:
    """Adds ``delta`` to the galaxy's vote total and to the counts of ``answer_ids``, then
    rewrites the galaxy's fractions: three statements whatever the number of answers.
    Returns the new vote total."""
    total_table = GalaxyVoteTotal._meta.db_table
    count_table = AnswerCount._meta.db_table
    answer_ids = sorted(answer_ids)  # one lock order for every transaction
    upsert_total = (
        f"INSERT INTO {total_table} (galaxy_id, scheme_version_id, n_votes) VALUES (%s, %s, %s) "
        f"ON CONFLICT (galaxy_id, scheme_version_id) DO UPDATE SET n_votes = {total_table}.n_votes + %s RETURNING n_votes"
    )
    total_params = [galaxy_id, spec.id, max(delta, 0), delta]
    values = ", ".join(["(%s, %s, %s, %s, 0)"] * len(answer_ids))
    upsert_counts = (
        f"INSERT INTO {count_table} (galaxy_id, scheme_version_id, answer_id, count, fraction) VALUES {values} "
        f"ON CONFLICT (galaxy_id, answer_id) DO UPDATE SET count = {count_table}.count + %s"
    )
    count_params = [v for a in answer_ids for v in (galaxy_id, spec.id, a, max(delta, 0))] + [delta]
    with connection.cursor() as cursor:
        # The vote total row is the per-galaxy lock: every count update happens behind it.
        if connection.vendor == "postgresql" and answer_ids:
            # One round trip: a data-modifying WITH runs the total first, then the counts.
            cursor.execute(
                f"WITH t AS ({upsert_total}), c AS ({upsert_counts} RETURNING 1) SELECT n_votes FROM t",
                [*total_params, *count_params],
            )
            n_votes = cursor.fetchone()[0]
        else:
            cursor.execute(upsert_total, total_params)
            n_votes = cursor.fetchone()[0]
            if answer_ids:
                cursor.execute(upsert_counts, count_params)
        _rewrite_fractions(cursor, galaxy_id=galaxy_id, spec=spec, n_votes=n_votes)
    return n_votes


def _rewrite_fractions(cursor, *, galaxy_id: int, spec: VersionSpec, n_votes: int) -> None:
    """One UPDATE: fraction = count / votes (flat) or count / votes on its question (tree)."""
    count_table = AnswerCount._meta.db_table
    if spec.kind == Scheme.Kind.FLAT:
        cursor.execute(
            f"UPDATE {count_table} SET fraction = CASE WHEN %s > 0 THEN count * 1.0 / %s ELSE 0 END "
            "WHERE galaxy_id = %s AND scheme_version_id = %s",
            [n_votes, n_votes, galaxy_id, spec.id],
        )
        return
    answer_table = Answer._meta.db_table
    cursor.execute(
        f"UPDATE {count_table} SET fraction = COALESCE(("
        f"  SELECT {count_table}.count * 1.0 / NULLIF(SUM(c2.count), 0) FROM {count_table} c2"
        f"  JOIN {answer_table} a2 ON a2.id = c2.answer_id"
        f"  WHERE c2.galaxy_id = {count_table}.galaxy_id AND c2.scheme_version_id = {count_table}.scheme_version_id"
        f"  AND a2.question_id = (SELECT question_id FROM {answer_table} WHERE id = {count_table}.answer_id)"
        "), 0) WHERE galaxy_id = %s AND scheme_version_id = %s",
        [galaxy_id, spec.id],
    )


def fractions_for_counts(spec: VersionSpec, counts: dict[int, int], n_votes: int) -> dict[int, float]:
    """Fractions from answer counts. Flat schemes (CANDELS): classifiers who chose the option /
    classifiers who voted. Trees (Galaxy Zoo): votes for the answer / votes on its question."""
    if spec.kind == Scheme.Kind.FLAT:
        return {a: (c / n_votes if n_votes else 0.0) for a, c in counts.items()}
    per_question: dict[int, int] = {}
    for a, c in counts.items():
        q = spec.answer_question[a]
        per_question[q] = per_question.get(q, 0) + c
    return {
        a: (c / per_question[spec.answer_question[a]] if per_question[spec.answer_question[a]] else 0.0)
        for a, c in counts.items()
    }


def _retirement(project: Project, subject: ProjectSubject, spec: VersionSpec) -> str:
    """The reason the subject should now be retired, or ''."""
    if subject.n_votes >= project.retire_after:
        return ProjectSubject.RetiredReason.VOTES
    if project.consensus_fraction and subject.n_votes >= project.consensus_min_votes:
        first = spec.first_question
        best = (
            AnswerCount.objects.filter(galaxy_id=subject.galaxy_id, answer_id__in=list(first.answers))
            .order_by("-fraction")
            .values_list("fraction", flat=True)
            .first()
        )
        if best is not None and best >= project.consensus_fraction:
            return ProjectSubject.RetiredReason.CONSENSUS
    return ""


# ---------------------------------------------------------------------------------------
# Votes, undo, skips.


def vote_cast(
    *, project: Project, classifier, galaxy_id: int, answers: list, seconds_spent: float | None = None
) -> Vote:
    """Records one classifier's vote on one galaxy and updates counts, fractions and retirement.

    Raises ApplicationError (400) for invalid answers or a galaxy outside the project, and
    Conflict (409) for a second vote by the same classifier on the same galaxy and scheme.
    A vote on a galaxy that retired after it was served is accepted. About eight round trips
    to the database, whatever the scheme: this is the hot path of the voting UI.
    """
    check_classifier(project=project, classifier=classifier)
    if seconds_spent is not None and not (0 <= seconds_spent < 86400):
        raise ApplicationError("seconds_spent must be between 0 and 86400")
    spec = version_spec(project.scheme_version_id)
    answer_ids = spec.validate(spec.resolve(list(answers)))
    subject_table, vote_table = ProjectSubject._meta.db_table, Vote._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        # Lock the subject and count the vote in one statement (gold checks are not counted).
        cursor.execute(
            f"UPDATE {subject_table} SET n_votes = n_votes + CASE WHEN is_gold THEN 0 ELSE 1 END "
            "WHERE project_id = %s AND galaxy_id = %s RETURNING id, is_gold, n_votes, retired",
            [project.pk, galaxy_id],
        )
        row = cursor.fetchone()
        if row is None:
            raise ApplicationError(f"galaxy {galaxy_id} is not a subject of project {project.slug}")
        subject_id, is_gold, n_votes, retired = row
        # The unique constraint decides duplicates, whatever the timing of two requests.
        insert_vote = (
            f"INSERT INTO {vote_table} (project_id, scheme_id, scheme_version_id, galaxy_id, classifier_id, is_gold, seconds_spent, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (classifier_id, galaxy_id, scheme_id) DO NOTHING RETURNING id, created_at"
        )
        vote_params = [
            project.pk,
            spec.scheme_id,
            spec.id,
            galaxy_id,
            classifier.pk,
            is_gold,
            seconds_spent,
            timezone.now(),
        ]
        if connection.vendor == "postgresql":
            # The vote and its answers in one round trip (a data-modifying WITH).
            cursor.execute(
                f"WITH v AS ({insert_vote}), a AS (INSERT INTO {VoteAnswer._meta.db_table} (vote_id, answer_id) "
                "SELECT v.id, x FROM v, unnest(%s::bigint[]) AS x) SELECT id, created_at FROM v",
                [*vote_params, answer_ids],
            )
        else:
            cursor.execute(insert_vote, vote_params)
        inserted = cursor.fetchone()
        if inserted is None:
            raise Conflict(f"you have already voted on galaxy {galaxy_id} with scheme {spec.scheme_slug}")
        vote = Vote(
            pk=inserted[0],
            project=project,
            scheme_id=spec.scheme_id,
            scheme_version_id=spec.id,
            galaxy_id=galaxy_id,
            classifier=classifier,
            is_gold=is_gold,
            seconds_spent=seconds_spent,
            created_at=inserted[1],
        )
        if connection.vendor != "postgresql":
            VoteAnswer.objects.bulk_create([VoteAnswer(vote_id=vote.pk, answer_id=a) for a in answer_ids])
        vote.answer_ids = answer_ids
        if not is_gold:
            _apply_counts(galaxy_id=galaxy_id, spec=spec, answer_ids=answer_ids, delta=+1)
            if not retired:
                subject = ProjectSubject(pk=subject_id, project=project, galaxy_id=galaxy_id, n_votes=n_votes)
                reason = _retirement(project, subject, spec)
                if reason:
                    ProjectSubject.objects.filter(pk=subject_id).update(
                        retired=True, retired_reason=reason, retired_at=timezone.now()
                    )
    return vote


def vote_undo(*, project: Project, classifier) -> int:
    """Deletes the classifier's last vote in the project if it is recent enough; the galaxy
    may then be voted on again. Returns the galaxy id."""
    cutoff = timezone.now() - timedelta(seconds=project.undo_seconds)
    last = Vote.objects.filter(project=project, classifier=classifier).order_by("-created_at", "-pk").first()
    if last is None or last.created_at < cutoff:
        raise NotFound(f"nothing to undo: only your last vote, within {project.undo_seconds} s, can be undone")
    spec = version_spec(last.scheme_version_id)
    with transaction.atomic():
        subject = ProjectSubject.objects.select_for_update().get(project=project, galaxy_id=last.galaxy_id)
        vote = Vote.objects.select_for_update().filter(pk=last.pk).first()
        if vote is None:
            raise NotFound("that vote was already undone")
        answer_ids = list(VoteAnswer.objects.filter(vote=vote).values_list("answer_id", flat=True))
        vote.delete()
        if not vote.is_gold:
            _apply_counts(galaxy_id=vote.galaxy_id, spec=spec, answer_ids=answer_ids, delta=-1)
            subject.n_votes -= 1
            if (
                subject.retired
                and subject.retired_reason != ProjectSubject.RetiredReason.STAFF
                and not _retirement(project, subject, spec)
            ):
                subject.retired, subject.retired_reason, subject.retired_at = False, "", None
            subject.save(update_fields=["n_votes", "retired", "retired_reason", "retired_at"])
    return vote.galaxy_id


def subject_skip(*, project: Project, classifier, galaxy_id: int) -> None:
    """The classifier passes on a galaxy: it is not a vote and they will not see it again."""
    check_classifier(project=project, classifier=classifier)
    if not ProjectSubject.objects.filter(project=project, galaxy_id=galaxy_id).exists():
        raise ApplicationError(f"galaxy {galaxy_id} is not a subject of project {project.slug}")
    if Vote.objects.filter(
        classifier=classifier, galaxy_id=galaxy_id, scheme_id=project.scheme_version.scheme_id
    ).exists():
        raise Conflict(f"you have voted on galaxy {galaxy_id}: it cannot be skipped")
    Skip.objects.get_or_create(project=project, classifier=classifier, galaxy_id=galaxy_id)


def subjects_retire(*, project: Project, galaxy_ids: list[int], retired: bool) -> int:
    """Staff retire (or bring back) subjects by hand."""
    queryset = ProjectSubject.objects.filter(project=project, galaxy_id__in=galaxy_ids)
    if retired:
        return queryset.filter(retired=False).update(
            retired=True, retired_reason=ProjectSubject.RetiredReason.STAFF, retired_at=timezone.now()
        )
    return queryset.filter(retired=True).update(retired=False, retired_reason="", retired_at=None)


@transaction.atomic
def gold_label_set(
    *, galaxy_id: int, scheme_version: SchemeVersion, answers: list, created_by=None, note: str = ""
) -> GoldLabel:
    """Staff's expert answer for a galaxy; its subjects become gold-standard checks."""
    spec = version_spec(scheme_version.pk)
    answer_ids = spec.validate(spec.resolve(list(answers)))
    gold, _ = GoldLabel.objects.update_or_create(
        galaxy_id=galaxy_id, scheme_version=scheme_version, defaults={"created_by": created_by, "note": note}
    )
    gold.answers.set(answer_ids)
    ProjectSubject.objects.filter(project__scheme_version=scheme_version, galaxy_id=galaxy_id).update(is_gold=True)
    return gold


# ---------------------------------------------------------------------------------------
# Bulk: imported votes (the simulated crowd) and rebuilding counts from the votes.


@dataclass
class ImportedVote:
    classifier_id: int
    galaxy_id: int
    answers: list
    seconds_spent: float | None = None


def votes_import(*, project: Project, votes: list[ImportedVote], batch_size: int = 5000) -> int:
    """Adds many votes at once (validated like single votes), then rebuilds the affected
    counts, fractions and subject totals from the votes. Duplicates are refused."""
    spec = version_spec(project.scheme_version_id)
    resolved = [(v, spec.validate(spec.resolve(list(v.answers)))) for v in votes]
    gold = set(ProjectSubject.objects.filter(project=project, is_gold=True).values_list("galaxy_id", flat=True))
    members = set(ProjectSubject.objects.filter(project=project).values_list("galaxy_id", flat=True))
    outside = {v.galaxy_id for v, _ in resolved} - members
    if outside:
        raise ApplicationError(f"{len(outside)} galaxies are not subjects of project {project.slug}")
    with transaction.atomic():
        for start in range(0, len(resolved), batch_size):
            chunk = resolved[start : start + batch_size]
            try:
                with transaction.atomic():
                    created = Vote.objects.bulk_create(
                        [
                            Vote(
                                project=project,
                                scheme_id=spec.scheme_id,
                                scheme_version_id=spec.id,
                                galaxy_id=v.galaxy_id,
                                classifier_id=v.classifier_id,
                                is_gold=v.galaxy_id in gold,
                                seconds_spent=v.seconds_spent,
                            )
                            for v, _ in chunk
                        ]
                    )
            except IntegrityError:
                raise Conflict("some classifiers have already voted on some of these galaxies") from None
            VoteAnswer.objects.bulk_create(
                [VoteAnswer(vote=vote, answer_id=a) for vote, (_, ids) in zip(created, chunk, strict=True) for a in ids]
            )
        galaxy_ids = sorted({v.galaxy_id for v, _ in resolved})
        fractions_recompute(scheme_version=project.scheme_version, galaxy_ids=galaxy_ids)
        subjects_recount(project=project, galaxy_ids=galaxy_ids)
    return len(resolved)


def subjects_recount(*, project: Project, galaxy_ids: list[int] | None = None) -> None:
    """Subject vote totals and vote-based retirement rebuilt from the votes."""
    spec = version_spec(project.scheme_version_id)
    subjects = ProjectSubject.objects.filter(project=project)
    if galaxy_ids is not None:
        subjects = subjects.filter(galaxy_id__in=galaxy_ids)
    counts = dict(
        Vote.objects.filter(project=project, is_gold=False, galaxy_id__in=subjects.values("galaxy_id"))
        .values_list("galaxy_id")
        .annotate(n=Count("id"))
        .values_list("galaxy_id", "n")
    )
    changed = []
    now = timezone.now()
    for subject in subjects.only("id", "galaxy_id", "n_votes", "retired", "retired_reason", "retired_at"):
        subject.n_votes = counts.get(subject.galaxy_id, 0)
        if not subject.retired:
            reason = _retirement(project, subject, spec)
            if reason:
                subject.retired, subject.retired_reason, subject.retired_at = True, reason, now
        changed.append(subject)
    ProjectSubject.objects.bulk_update(changed, ["n_votes", "retired", "retired_reason", "retired_at"], batch_size=2000)


@dataclass
class RecomputeReport:
    scheme_version: str
    galaxies: int
    answer_counts: int


def fractions_recompute(*, scheme_version: SchemeVersion, galaxy_ids: list[int] | None = None) -> RecomputeReport:
    """Rebuilds vote totals, answer counts and fractions from the votes themselves."""
    spec = version_spec(scheme_version.pk)
    votes = Vote.objects.filter(scheme_version=scheme_version, is_gold=False)
    totals_qs = GalaxyVoteTotal.objects.filter(scheme_version=scheme_version)
    counts_qs = AnswerCount.objects.filter(scheme_version=scheme_version)
    answers_qs = VoteAnswer.objects.filter(vote__scheme_version=scheme_version, vote__is_gold=False)
    if galaxy_ids is not None:
        votes = votes.filter(galaxy_id__in=galaxy_ids)
        totals_qs = totals_qs.filter(galaxy_id__in=galaxy_ids)
        counts_qs = counts_qs.filter(galaxy_id__in=galaxy_ids)
        answers_qs = answers_qs.filter(vote__galaxy_id__in=galaxy_ids)
    with transaction.atomic():
        totals_qs.delete()
        counts_qs.delete()
        totals = dict(votes.values_list("galaxy_id").annotate(n=Count("id")).values_list("galaxy_id", "n"))
        GalaxyVoteTotal.objects.bulk_create(
            [GalaxyVoteTotal(galaxy_id=g, scheme_version_id=spec.id, n_votes=n) for g, n in totals.items()],
            batch_size=5000,
        )
        rows = answers_qs.values_list("vote__galaxy_id", "answer_id").annotate(n=Count("id"))
        per_galaxy: dict[int, dict[int, int]] = {}
        for galaxy_id, answer_id, n in rows:
            per_galaxy.setdefault(galaxy_id, {})[answer_id] = n
        objects = []
        for galaxy_id, counts in per_galaxy.items():
            fractions = fractions_for_counts(spec, counts, totals.get(galaxy_id, 0))
            objects += [
                AnswerCount(galaxy_id=galaxy_id, scheme_version_id=spec.id, answer_id=a, count=c, fraction=fractions[a])
                for a, c in counts.items()
            ]
        AnswerCount.objects.bulk_create(objects, batch_size=5000)
    return RecomputeReport(scheme_version=str(scheme_version), galaxies=len(totals), answer_counts=len(objects))


# ---------------------------------------------------------------------------------------
# Consistency-weighted fractions (stored apart from the raw ones).


@dataclass
class WeightingReport:
    classifiers: int
    galaxies: int
    down_weighted: int


def classifier_weights_compute(*, scheme_version: SchemeVersion) -> WeightingReport:
    """Galaxy Zoo 2 iterative classifier weighting over all counted votes of a version; stores
    each classifier's consistency and weight and the weighted fraction of every answer."""
    import numpy as np

    from labeling.weighting import weighted_fractions

    spec = version_spec(scheme_version.pk)
    votes = list(
        Vote.objects.filter(scheme_version=scheme_version, is_gold=False).values_list(
            "pk", "classifier_id", "galaxy_id"
        )
    )
    if not votes:
        return WeightingReport(classifiers=0, galaxies=0, down_weighted=0)
    answer_ids = sorted(spec.answer_question)
    answer_index = {a: i for i, a in enumerate(answer_ids)}
    question_ids = sorted(spec.questions)
    question_index = {q: i for i, q in enumerate(question_ids)}
    vote_index = {v[0]: i for i, v in enumerate(votes)}
    classifiers = sorted({v[1] for v in votes})
    galaxies = sorted({v[2] for v in votes})
    c_index = {c: i for i, c in enumerate(classifiers)}
    g_index = {g: i for i, g in enumerate(galaxies)}
    chosen = np.zeros((len(votes), len(answer_ids)), dtype=bool)
    for vote_id, answer_id in VoteAnswer.objects.filter(
        vote__scheme_version=scheme_version, vote__is_gold=False
    ).values_list("vote_id", "answer_id"):
        chosen[vote_index[vote_id], answer_index[answer_id]] = True
    result = weighted_fractions(
        chosen=chosen,
        classifier=np.array([c_index[v[1]] for v in votes]),
        galaxy=np.array([g_index[v[2]] for v in votes]),
        answer_question=np.array([question_index[spec.answer_question[a]] for a in answer_ids]),
        tree=spec.kind == Scheme.Kind.TREE,
        n_classifiers=len(classifiers),
        n_galaxies=len(galaxies),
    )
    per_classifier = np.bincount([c_index[v[1]] for v in votes], minlength=len(classifiers))
    with transaction.atomic():
        ClassifierWeight.objects.filter(scheme_version=scheme_version).delete()
        ClassifierWeight.objects.bulk_create(
            [
                ClassifierWeight(
                    scheme_version=scheme_version,
                    classifier_id=c,
                    consistency=float(result.consistency[i]),
                    weight=float(result.weights[i]),
                    n_votes=int(per_classifier[i]),
                )
                for i, c in enumerate(classifiers)
            ]
        )
        WeightedFraction.objects.filter(scheme_version=scheme_version).delete()
        rows = []
        for gi, galaxy_id in enumerate(galaxies):
            for ai, answer_id in enumerate(answer_ids):
                value = result.fractions[gi, ai]
                if np.isfinite(value) and (value > 0 or chosen[:, ai].any()):
                    rows.append(
                        WeightedFraction(
                            galaxy_id=galaxy_id,
                            scheme_version=scheme_version,
                            answer_id=answer_id,
                            fraction=float(min(max(value, 0.0), 1.0)),
                        )
                    )
        WeightedFraction.objects.bulk_create(rows, batch_size=5000)
    return WeightingReport(
        classifiers=len(classifiers), galaxies=len(galaxies), down_weighted=int((result.weights < 1).sum())
    )


def active_scores_set(*, scheme_slug: str, prediction_version_id: int, galaxy_ids: list[int] | None = None) -> int:
    """The "active" selection strategy's score of every subject of the scheme's projects: the
    promoted morphology model's uncertainty on it (galaxies it has not scored keep theirs)."""
    from catalog.models import Prediction

    uncertainty = Prediction.objects.filter(
        model_version_id=prediction_version_id, galaxy_id=OuterRef("galaxy_id")
    ).values("uncertainty")[:1]
    subjects = ProjectSubject.objects.filter(project__scheme_version__scheme__slug=scheme_slug)
    if galaxy_ids is not None:
        subjects = subjects.filter(galaxy_id__in=galaxy_ids)
    subjects = subjects.filter(
        Exists(Prediction.objects.filter(model_version_id=prediction_version_id, galaxy_id=OuterRef("galaxy_id")))
    )
    return subjects.update(active_score=Subquery(uncertainty))
