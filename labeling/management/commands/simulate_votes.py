"""python manage.py simulate_votes (--project SLUG | --scheme candels --survey NAME) --truth truth.csv"""

import numpy as np
from astropy.table import Table
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from catalog.errors import ApplicationError
from catalog.models import Survey
from labeling.crowd import MAIN, Crowd, features_from_truth
from labeling.models import Project, ProjectSubject, Vote
from labeling.services import ImportedVote, project_create, votes_import


class Command(BaseCommand):
    help = (
        "Vote with a simulated crowd of expert classifiers on mock galaxies (model in labeling/crowd.py). "
        "Each galaxy gets votes from --per-galaxy distinct classifiers; --expected-out writes the crowd's "
        "expected CANDELS main-class fractions per galaxy."
    )

    def add_arguments(self, parser):
        parser.add_argument("--project", help="Project to vote in.")
        parser.add_argument("--scheme", help="With --survey: vote in project <survey>-<scheme>, created if missing.")
        parser.add_argument("--survey")
        parser.add_argument("--truth", required=True, help="The mock galaxies' truth.csv (make_mock galaxies).")
        parser.add_argument("--classifiers", type=int, default=65)
        parser.add_argument("--per-galaxy", type=int, default=5)
        parser.add_argument("--seed", type=int, default=1, help="Fixes the crowd and its votes.")
        parser.add_argument("--limit", type=int, help="Vote on at most this many galaxies.")
        parser.add_argument("--expected-out", help="CSV of expected main-class fractions (CANDELS).")

    def handle(self, *args, **opts):
        project = self._project(opts)
        scheme = project.scheme_version.scheme.slug
        if scheme not in ("candels", "gz2"):
            raise CommandError(f"the simulated crowd knows the candels and gz2 schemes, not {scheme}")
        if not 1 <= opts["per_galaxy"] <= opts["classifiers"]:
            raise CommandError("--per-galaxy must be between 1 and --classifiers")
        truth = Table.read(opts["truth"], format="ascii.csv")
        missing = {"source_id", "true_class", "mag", "size_arcsec", "axis_ratio", "bt"} - set(truth.colnames)
        if missing:
            raise CommandError(f"{opts['truth']}: missing truth columns {', '.join(sorted(missing))} (remake the mock)")
        row_of = {str(s): i for i, s in enumerate(truth["source_id"])}
        subjects = list(
            ProjectSubject.objects.filter(project=project, galaxy__source_id__in=list(row_of))
            .order_by("galaxy_id")
            .values_list("galaxy_id", "galaxy__source_id")
        )
        if opts["limit"]:
            subjects = subjects[: opts["limit"]]
        if not subjects:
            raise CommandError(f"no galaxy of project {project.slug} is in {opts['truth']}")
        rows = [row_of[s] for _, s in subjects]
        features = features_from_truth(truth[rows])
        appearance = features.appearance()
        crowd = Crowd(opts["classifiers"], opts["seed"])
        users = self._classifiers(opts["classifiers"])
        already: dict[int, set[int]] = {}
        for galaxy_id, user_id in Vote.objects.filter(project=project, classifier_id__in=users).values_list(
            "galaxy_id", "classifier_id"
        ):
            already.setdefault(galaxy_id, set()).add(user_id)
        rng = np.random.default_rng([opts["seed"], 1])
        vote = crowd.candels_vote if scheme == "candels" else crowd.gz2_vote
        votes = []
        for g, (galaxy_id, _) in enumerate(subjects):
            free = [i for i in range(crowd.n) if users[i] not in already.get(galaxy_id, set())]
            need = opts["per_galaxy"] - (crowd.n - len(free))
            for i in rng.choice(free, size=max(0, min(need, len(free))), replace=False):
                seconds = float(np.round(rng.lognormal(np.log(6.0), 0.5), 2))
                votes.append(
                    ImportedVote(
                        classifier_id=users[i],
                        galaxy_id=galaxy_id,
                        answers=vote(features, appearance, g, int(i), rng),
                        seconds_spent=seconds,
                    )
                )
        try:
            n = votes_import(project=project, votes=votes)
        except ApplicationError as exc:
            raise CommandError(exc.message) from None
        if opts["expected_out"]:
            expected = crowd.expected_main_fractions(features)
            table = Table(
                {"source_id": [s for _, s in subjects], **{f"expected_{k}": expected[:, j] for j, k in enumerate(MAIN)}}
            )
            table.write(opts["expected_out"], format="ascii.csv", overwrite=True)
        self.stdout.write(
            self.style.SUCCESS(f"{n} simulated votes on {len(subjects)} galaxies of project {project.slug}")
        )

    def _project(self, opts) -> Project:
        if opts["project"]:
            project = Project.objects.filter(slug=opts["project"]).select_related("scheme_version__scheme").first()
            if project is None:
                raise CommandError(f"no project {opts['project']!r}")
            return project
        if not (opts["scheme"] and opts["survey"]):
            raise CommandError("give --project, or --scheme and --survey")
        slug = f"{opts['survey']}-{opts['scheme']}"
        project = Project.objects.filter(slug=slug).first()
        if project:
            return project
        survey = Survey.objects.filter(name=opts["survey"]).first()
        if survey is None:
            raise CommandError(f"no survey {opts['survey']!r}")
        try:
            return project_create(
                slug=slug,
                name=f"{survey.title or survey.name}: {opts['scheme']}",
                scheme_slug=opts["scheme"],
                survey=survey,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from None

    def _classifiers(self, n: int) -> list[int]:
        User = get_user_model()
        ids = []
        for i in range(1, n + 1):
            user, created = User.objects.get_or_create(
                username=f"sim-classifier-{i:03d}", defaults={"affiliation": "simulated crowd"}
            )
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            ids.append(user.pk)
        return ids
