"""REST API of the labeling app (session or token auth): next galaxy, votes, skips, undo,
fractions, and staff views of votes and retirement. Each view calls one service or selector."""

import copy
import time

from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.errors import ApplicationError, NotFound
from catalog.models import Galaxy
from labeling import selectors, services
from labeling.models import Project, ProjectSubject, Vote


class AnswerListField(serializers.ListField):
    child = serializers.CharField()

    def to_internal_value(self, data):
        values = super().to_internal_value(data)
        return [int(v) if v.isdigit() else v for v in values]


class VoteInSerializer(serializers.Serializer):
    galaxy = serializers.IntegerField(help_text="Galaxy id.")
    answers = AnswerListField(allow_empty=False, help_text="'question:answer' keys (or answer ids).")
    seconds_spent = serializers.FloatField(required=False, allow_null=True, min_value=0)


class VoteOutSerializer(serializers.ModelSerializer):
    answers = serializers.SerializerMethodField()
    classifier = serializers.SlugRelatedField(slug_field="username", read_only=True)
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Vote
        fields = ["id", "project", "galaxy", "classifier", "answers", "is_gold", "seconds_spent", "created_at"]

    def get_answers(self, vote) -> list[str]:
        return [f"{a.question.key}:{a.key}" for a in vote.answers.all()]


class GalaxyRefSerializer(serializers.Serializer):
    galaxy = serializers.IntegerField()


class RetireSerializer(serializers.Serializer):
    galaxies = serializers.ListField(child=serializers.IntegerField(), allow_empty=False)
    retired = serializers.BooleanField()


class ProjectSerializer(serializers.ModelSerializer):
    scheme = serializers.CharField(source="scheme_version.scheme.slug")
    scheme_version = serializers.IntegerField(source="scheme_version.number")
    survey = serializers.CharField(source="survey.name")

    class Meta:
        model = Project
        fields = ["slug", "name", "scheme", "scheme_version", "survey", "strategy", "retire_after", "undo_seconds"]


def subject_payload(subject: selectors.NextSubject, project: Project) -> dict:
    """What the voting UI needs to show a galaxy (never whether it is a gold-standard check)."""
    return {
        "galaxy": subject.galaxy_id,
        "source_id": subject.source_id,
        "survey": project.survey.name,
        "ra": subject.ra,
        "dec": subject.dec,
        "mag": subject.mag,
        "cutouts": [
            {
                "band": c.band,
                "png": f"{reverse('catalog:cutout-png', args=[c.id])}?v={c.checksum}",
                "pixel_scale_arcsec": c.pixel_scale_arcsec,
            }
            for c in subject.cutouts
        ],
    }


def _exclude(request) -> list[int]:
    try:
        return [int(x) for x in request.query_params.get("exclude", "").split(",") if x.strip()]
    except ValueError:
        raise ApplicationError("exclude must be comma-separated galaxy ids") from None


PROJECT_TTL_SECONDS = 10
_PROJECTS: dict[str, tuple[float, Project]] = {}


def forget_cached_projects() -> None:
    _PROJECTS.clear()


def _project(request, slug: str) -> Project:
    """The project, with whether the user may classify in it.

    Projects are remembered for PROJECT_TTL_SECONDS per server process (a change by staff
    applies within that time): the voting client asks several times a second. Membership of
    a restricted project is checked on every request.
    """
    now = time.monotonic()
    hit = _PROJECTS.get(slug)
    if hit is None or hit[0] < now:
        through = Project.classifiers.through
        project = get_object_or_404(
            Project.objects.select_related("scheme_version__scheme", "survey")
            .defer("scheme_version__definition")
            .annotate(restricted=Exists(through.objects.filter(project_id=OuterRef("pk")))),
            slug=slug,
        )
        hit = _PROJECTS[slug] = (now + PROJECT_TTL_SECONDS, project)
    project = copy.copy(hit[1])  # per request: is_member below is this user's
    project.is_member = not project.restricted or (
        request.user.is_authenticated
        and Project.classifiers.through.objects.filter(project_id=project.pk, user_id=request.user.pk).exists()
    )
    return project


class ProjectList(generics.ListAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = ProjectSerializer

    def get_queryset(self):
        return selectors.projects_for(self.request.user).distinct().order_by("slug")


class NextSubject(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("exclude", OpenApiTypes.STR, description="Comma-separated galaxy ids already queued.")
        ],
        responses={200: OpenApiTypes.OBJECT, 204: None},
    )
    def get(self, request, slug: str):
        project = _project(request, slug)
        services.check_classifier(project=project, classifier=request.user)
        subject = selectors.subject_next(project=project, classifier=request.user, exclude=_exclude(request))
        if subject is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(subject_payload(subject, project))


class SubjectDetail(APIView):
    """A project's galaxy as the voting UI shows it (e.g. after an undo)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, slug: str, galaxy_id: int):
        project = _project(request, slug)
        if not ProjectSubject.objects.filter(project=project, galaxy_id=galaxy_id).exists():
            raise NotFound(f"galaxy {galaxy_id} is not a subject of project {project.slug}")
        return Response(subject_payload(selectors.subject_view(galaxy_id=galaxy_id), project))


class VoteCreate(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=VoteInSerializer,
        parameters=[
            OpenApiParameter(
                "next", OpenApiTypes.BOOL, description="Also return the next galaxy to show (field 'next')."
            ),
            OpenApiParameter("exclude", OpenApiTypes.STR, description="With next: galaxy ids already queued."),
        ],
        responses={201: VoteOutSerializer, 400: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT},
    )
    def post(self, request, slug: str):
        data = VoteInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = _project(request, slug)
        vote = services.vote_cast(
            project=project,
            classifier=request.user,
            galaxy_id=data.validated_data["galaxy"],
            answers=data.validated_data["answers"],
            seconds_spent=data.validated_data.get("seconds_spent"),
        )
        # The answer keys come from the cached scheme structure: no query to describe the vote.
        keys = services.version_spec(project.scheme_version_id).answer_key
        body = {
            "id": vote.pk,
            "project": project.slug,
            "galaxy": vote.galaxy_id,
            "classifier": request.user.username,
            "answers": [keys[a] for a in vote.answer_ids],
            "is_gold": vote.is_gold,
            "seconds_spent": vote.seconds_spent,
            "created_at": vote.created_at,
        }
        if request.query_params.get("next") in ("1", "true"):
            # Vote and the next galaxy in one round trip: what a fast voting client wants.
            subject = selectors.subject_next(project=project, classifier=request.user, exclude=_exclude(request))
            body["next"] = subject_payload(subject, project) if subject else None
        return Response(body, status=status.HTTP_201_CREATED)


class VoteUndo(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: GalaxyRefSerializer, 404: OpenApiTypes.OBJECT})
    def post(self, request, slug: str):
        galaxy_id = services.vote_undo(project=_project(request, slug), classifier=request.user)
        return Response({"galaxy": galaxy_id})


class SkipCreate(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=GalaxyRefSerializer, responses={201: GalaxyRefSerializer})
    def post(self, request, slug: str):
        data = GalaxyRefSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.subject_skip(
            project=_project(request, slug), classifier=request.user, galaxy_id=data.validated_data["galaxy"]
        )
        return Response({"galaxy": data.validated_data["galaxy"]}, status=status.HTTP_201_CREATED)


class SubjectsRetire(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=RetireSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, slug: str):
        data = RetireSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changed = services.subjects_retire(
            project=_project(request, slug),
            galaxy_ids=data.validated_data["galaxies"],
            retired=data.validated_data["retired"],
        )
        return Response({"changed": changed})


class VoteList(generics.ListAPIView):
    """Staff: votes, filtered by ?project=SLUG&classifier=USERNAME&galaxy=ID."""

    permission_classes = [IsAdminUser]
    serializer_class = VoteOutSerializer

    def get_queryset(self):
        votes = (
            Vote.objects.select_related("classifier", "project").prefetch_related("answers__question").order_by("-id")
        )
        params = self.request.query_params
        if slug := params.get("project"):
            votes = votes.filter(project__slug=slug)
        if username := params.get("classifier"):
            votes = votes.filter(classifier__username=username)
        if galaxy := params.get("galaxy"):
            if not galaxy.isdigit():
                raise ApplicationError("galaxy must be an id")
            votes = votes.filter(galaxy_id=int(galaxy))
        return votes


class GalaxyFractions(APIView):
    """A galaxy with its vote counts and fractions per scheme version."""

    permission_classes = [AllowAny]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, galaxy_id: int):
        galaxy = get_object_or_404(Galaxy.objects.select_related("survey"), pk=galaxy_id)
        return Response(
            {
                "galaxy": galaxy.pk,
                "survey": galaxy.survey.name,
                "source_id": galaxy.source_id,
                "ra": galaxy.ra,
                "dec": galaxy.dec,
                "mag": galaxy.mag,
                "schemes": selectors.galaxy_fractions(galaxy_id=galaxy.pk),
            }
        )
