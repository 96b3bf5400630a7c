"""Classification schemes, labeling projects, classifiers' votes and the vote fractions.

A scheme is data: each version holds its questions and answers as rows, so that every vote
points at the exact answers it chose. Votes are the source of truth; the per-galaxy counts
and fractions are kept equal to them in the same transaction as every vote (and can be
rebuilt from them with ``recompute_fractions``).
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now

from catalog.models import Galaxy, Survey


class Scheme(models.Model):
    class Kind(models.TextChoices):
        FLAT = "flat", "all questions at once"
        TREE = "tree", "decision tree"

    slug = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    description = models.TextField(blank=True)
    default_retire_after = models.PositiveIntegerField(help_text="Votes after which a galaxy retires by default.")

    class Meta:
        ordering = ["slug"]
        constraints = [models.CheckConstraint(condition=Q(kind__in=["flat", "tree"]), name="scheme_kind_valid")]

    def __str__(self) -> str:
        return self.slug

    @property
    def current_version(self) -> "SchemeVersion":
        return self.versions.order_by("-number").first()


class SchemeVersion(models.Model):
    """An immutable version of a scheme's questions; changing questions makes a new one."""

    scheme = models.ForeignKey(Scheme, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    definition = models.JSONField(help_text="The validated definition this version was built from.")
    root = models.ForeignKey(
        "Question",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="First question of a tree.",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["scheme", "number"]
        constraints = [models.UniqueConstraint(fields=["scheme", "number"], name="schemeversion_unique_number")]

    def __str__(self) -> str:
        return f"{self.scheme.slug} v{self.number}"


class Question(models.Model):
    class Kind(models.TextChoices):
        SINGLE = "single", "single choice"
        MULTIPLE = "multiple", "multiple choice"
        GRID = "grid", "grid"

    version = models.ForeignKey(SchemeVersion, on_delete=models.CASCADE, related_name="questions")
    key = models.SlugField(max_length=50)
    text = models.CharField(max_length=300)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    position = models.PositiveSmallIntegerField()
    required = models.BooleanField(default=True)
    default_key = models.CharField(
        max_length=50, blank=True, help_text="Answer chosen when the question is left alone."
    )

    class Meta:
        ordering = ["version", "position"]
        constraints = [
            models.UniqueConstraint(fields=["version", "key"], name="question_unique_key"),
            models.CheckConstraint(condition=Q(kind__in=["single", "multiple", "grid"]), name="question_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.version}:{self.key}"


class Answer(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="answers")
    key = models.SlugField(max_length=50)
    label = models.CharField(max_length=200)
    shortcut = models.CharField(max_length=1, help_text="Keyboard key that picks this answer.")
    position = models.PositiveSmallIntegerField()
    next_question = models.ForeignKey(
        Question,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Tree: the next question.",
    )
    grid_row = models.PositiveSmallIntegerField(null=True, blank=True)
    grid_column = models.PositiveSmallIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["question", "position"]
        constraints = [models.UniqueConstraint(fields=["question", "key"], name="answer_unique_key")]

    def __str__(self) -> str:
        return f"{self.question.key}:{self.key}"

    @property
    def column_name(self) -> str:
        return f"{self.question.key}__{self.key}"


class Project(models.Model):
    """A scheme applied to a subject set, with a selection strategy and a retirement rule."""

    class Strategy(models.TextChoices):
        RANDOM = "random", "random"
        PRIORITY = "priority", "explicit priority"
        ACTIVE = "active", "active (model uncertainty or disagreement, else random)"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    scheme_version = models.ForeignKey(SchemeVersion, on_delete=models.PROTECT, related_name="projects")
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="labeling_projects")
    mag_min = models.FloatField(null=True, blank=True, help_text="Subjects: brighter limit of the survey magnitude.")
    mag_max = models.FloatField(null=True, blank=True, help_text="Subjects: fainter limit of the survey magnitude.")
    strategy = models.CharField(max_length=10, choices=Strategy.choices, default=Strategy.RANDOM)
    retire_after = models.PositiveIntegerField(help_text="A galaxy retires after this many votes.")
    consensus_fraction = models.FloatField(
        null=True, blank=True, help_text="Retire early when one answer of the first question reaches this fraction..."
    )
    consensus_min_votes = models.PositiveIntegerField(default=3, help_text="...after at least this many votes.")
    gold_rate = models.FloatField(default=0.0, help_text="Fraction of served galaxies that are gold-standard checks.")
    undo_seconds = models.PositiveIntegerField(default=120, help_text="How long a classifier can undo their last vote.")
    classifiers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="labeling_projects", help_text="Empty: every active user."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["slug"]
        constraints = [
            models.CheckConstraint(condition=Q(retire_after__gte=1), name="project_retire_after_positive"),
            models.CheckConstraint(
                condition=Q(gold_rate__gte=0) & Q(gold_rate__lte=0.5), name="project_gold_rate_range"
            ),
            models.CheckConstraint(
                condition=Q(consensus_fraction__isnull=True)
                | (Q(consensus_fraction__gt=0.5) & Q(consensus_fraction__lte=1)),
                name="project_consensus_fraction_range",
            ),
            models.CheckConstraint(
                condition=Q(strategy__in=["random", "priority", "active"]), name="project_strategy_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.slug


class ProjectSubject(models.Model):
    """A galaxy in a project's subject set, with its selection keys and retirement state."""

    class RetiredReason(models.TextChoices):
        VOTES = "votes", "reached the vote limit"
        CONSENSUS = "consensus", "consensus"
        STAFF = "staff", "retired by staff"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="subjects")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="+")
    random_key = models.FloatField(help_text="Uniform in [0, 1): random selection walks this index.")
    priority = models.FloatField(default=0.0, help_text="Higher is served first (strategy 'priority').")
    active_score = models.FloatField(
        null=True, blank=True, help_text="Model uncertainty or model-human disagreement (strategy 'active')."
    )
    n_votes = models.PositiveIntegerField(default=0, help_text="Counted (non-gold) votes in this project.")
    is_gold = models.BooleanField(default=False, help_text="Served only as a gold-standard check.")
    retired = models.BooleanField(default=False)
    retired_reason = models.CharField(max_length=10, choices=RetiredReason.choices, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "galaxy"], name="projectsubject_unique")]
        indexes = [
            models.Index(fields=["project", "retired", "is_gold", "random_key"], name="subject_random"),
            models.Index(
                F("project"), F("retired"), F("is_gold"), F("priority").desc(), F("random_key"), name="subject_priority"
            ),
            models.Index(fields=["project", "retired", "is_gold", "active_score"], name="subject_active"),
        ]

    def __str__(self) -> str:
        return f"{self.project.slug}:{self.galaxy_id}"


class Vote(models.Model):
    """One classifier's whole answer to a scheme for one galaxy (for a tree, the path taken)."""

    # CASCADE so that deleting a survey takes its projects' votes; a project with votes
    # cannot be deleted on its own (labeling.services.project_delete refuses).
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="votes")
    scheme = models.ForeignKey(Scheme, on_delete=models.PROTECT, related_name="+")
    scheme_version = models.ForeignKey(SchemeVersion, on_delete=models.PROTECT, related_name="votes")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="votes")
    classifier = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="votes")
    answers = models.ManyToManyField(Answer, through="VoteAnswer", related_name="votes")
    is_gold = models.BooleanField(default=False, help_text="A gold-standard check: not counted in fractions.")
    seconds_spent = models.FloatField(null=True, blank=True, help_text="Time from showing the galaxy to the vote.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["classifier", "galaxy", "scheme"], name="vote_one_per_classifier_galaxy_scheme"
            ),
            models.CheckConstraint(
                condition=Q(seconds_spent__isnull=True) | Q(seconds_spent__gte=0), name="vote_seconds_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["project", "created_at"], name="vote_project_time"),
            models.Index(fields=["classifier", "project", "created_at"], name="vote_classifier_time"),
            models.Index(fields=["galaxy", "scheme_version"], name="vote_galaxy_version"),
        ]

    def __str__(self) -> str:
        return f"vote {self.pk} by {self.classifier_id} on {self.galaxy_id}"


class VoteAnswer(models.Model):
    vote = models.ForeignKey(Vote, on_delete=models.CASCADE, related_name="vote_answers")
    answer = models.ForeignKey(Answer, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["vote", "answer"], name="voteanswer_unique")]

    def __str__(self) -> str:
        return f"vote {self.vote_id}: answer {self.answer_id}"


class Skip(models.Model):
    """A galaxy a classifier passed on: never served to them again; not a vote."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="skips")
    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="+")
    classifier = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "classifier", "galaxy"], name="skip_unique")]

    def __str__(self) -> str:
        return f"skip {self.project_id}:{self.galaxy_id} by {self.classifier_id}"


class GalaxyVoteTotal(models.Model):
    """Counted votes of a galaxy under one scheme version (the CANDELS denominator)."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="+")
    scheme_version = models.ForeignKey(SchemeVersion, on_delete=models.CASCADE, related_name="+")
    n_votes = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["galaxy", "scheme_version"], name="galaxyvotetotal_unique")]

    def __str__(self) -> str:
        return f"galaxy {self.galaxy_id}: {self.n_votes} votes"


class AnswerCount(models.Model):
    """Votes for one answer of one galaxy, and the resulting vote fraction."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="answer_counts")
    scheme_version = models.ForeignKey(SchemeVersion, on_delete=models.CASCADE, related_name="+")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="+")
    count = models.PositiveIntegerField(default=0)
    fraction = models.FloatField(default=0.0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["galaxy", "answer"], name="answercount_unique"),
            models.CheckConstraint(
                condition=Q(fraction__gte=0) & Q(fraction__lte=1), name="answercount_fraction_range"
            ),
        ]
        indexes = [models.Index(fields=["scheme_version", "galaxy"], name="answercount_version_galaxy")]

    def __str__(self) -> str:
        return f"galaxy {self.galaxy_id} answer {self.answer_id}: {self.count} ({self.fraction:.2f})"


class WeightedFraction(models.Model):
    """Consistency-weighted vote fraction (Galaxy Zoo 2 iterative classifier weighting)."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="+")
    scheme_version = models.ForeignKey(SchemeVersion, on_delete=models.CASCADE, related_name="+")
    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="+")
    fraction = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["galaxy", "answer"], name="weightedfraction_unique"),
            models.CheckConstraint(condition=Q(fraction__gte=0) & Q(fraction__lte=1), name="weightedfraction_range"),
        ]
        indexes = [models.Index(fields=["scheme_version", "galaxy"], name="weightedfraction_version")]

    def __str__(self) -> str:
        return f"galaxy {self.galaxy_id} answer {self.answer_id}: {self.fraction:.2f} weighted"


class ClassifierWeight(models.Model):
    """A classifier's consistency (kappa) and weight w = min(1, (kappa/0.6)^8.5) for a scheme version."""

    scheme_version = models.ForeignKey(SchemeVersion, on_delete=models.CASCADE, related_name="+")
    classifier = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    consistency = models.FloatField()
    weight = models.FloatField()
    n_votes = models.PositiveIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scheme_version", "classifier"], name="classifierweight_unique"),
            models.CheckConstraint(condition=Q(weight__gte=0) & Q(weight__lte=1), name="classifierweight_range"),
        ]

    def __str__(self) -> str:
        return f"{self.classifier_id}: weight {self.weight:.2f}"


class GoldLabel(models.Model):
    """Staff's expert answer for a galaxy, kept apart from votes and never counted in fractions."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="+")
    scheme_version = models.ForeignKey(SchemeVersion, on_delete=models.CASCADE, related_name="gold_labels")
    answers = models.ManyToManyField(Answer, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["galaxy", "scheme_version"], name="goldlabel_unique")]

    def __str__(self) -> str:
        return f"gold {self.scheme_version} galaxy {self.galaxy_id}"
