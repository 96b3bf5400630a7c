"""REST API of the labeling app (session or token auth): next galaxy, votes, skips, undo,
fractions, and staff views of votes and retirement. Each view calls one service or selector."""

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.errors import ApplicationError
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


def subject_payload(subject_or_galaxy, project: Project) -> dict:
    """What the voting UI needs to show a galaxy (never whether it is a gold-standard check)."""
    galaxy = subject_or_galaxy.galaxy if isinstance(subject_or_galaxy, ProjectSubject) else subject_or_galaxy
    cutouts = sorted(galaxy.cutouts.select_related("band"), key=lambda c: c.band.name)
    return {
        "galaxy": galaxy.pk,
        "source_id": galaxy.source_id,
        "survey": project.survey.name,
        "ra": galaxy.ra,
        "dec": galaxy.dec,
        "mag": galaxy.mag,
        "cutouts": [
            {
                "band": c.band.name,
                "png": reverse("catalog:cutout-png", args=[c.pk]),
                "pixel_scale_arcsec": c.pixel_scale_arcsec,
            }
            for c in cutouts
        ],
    }


def _project(slug: str) -> Project:
    return get_object_or_404(Project.objects.select_related("scheme_version__scheme", "survey"), slug=slug)


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
        project = _project(slug)
        services.check_classifier(project=project, classifier=request.user)
        try:
            exclude = [int(x) for x in request.query_params.get("exclude", "").split(",") if x.strip()]
        except ValueError:
            raise ApplicationError("exclude must be comma-separated galaxy ids") from None
        subject = selectors.subject_next(project=project, classifier=request.user, exclude=exclude)
        if subject is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(subject_payload(ProjectSubject.objects.select_related("galaxy").get(pk=subject.pk), project))


class SubjectDetail(APIView):
    """A project's galaxy as the voting UI shows it (e.g. after an undo)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, slug: str, galaxy_id: int):
        project = _project(slug)
        subject = get_object_or_404(
            ProjectSubject.objects.select_related("galaxy"), project=project, galaxy_id=galaxy_id
        )
        return Response(subject_payload(subject, project))


class VoteCreate(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=VoteInSerializer, responses={201: VoteOutSerializer, 400: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT}
    )
    def post(self, request, slug: str):
        data = VoteInSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        vote = services.vote_cast(
            project=_project(slug),
            classifier=request.user,
            galaxy_id=data.validated_data["galaxy"],
            answers=data.validated_data["answers"],
            seconds_spent=data.validated_data.get("seconds_spent"),
        )
        vote = (
            Vote.objects.prefetch_related("answers__question").select_related("classifier", "project").get(pk=vote.pk)
        )
        return Response(VoteOutSerializer(vote).data, status=status.HTTP_201_CREATED)


class VoteUndo(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={200: GalaxyRefSerializer, 404: OpenApiTypes.OBJECT})
    def post(self, request, slug: str):
        galaxy_id = services.vote_undo(project=_project(slug), classifier=request.user)
        return Response({"galaxy": galaxy_id})


class SkipCreate(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=GalaxyRefSerializer, responses={201: GalaxyRefSerializer})
    def post(self, request, slug: str):
        data = GalaxyRefSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.subject_skip(project=_project(slug), classifier=request.user, galaxy_id=data.validated_data["galaxy"])
        return Response({"galaxy": data.validated_data["galaxy"]}, status=status.HTTP_201_CREATED)


class SubjectsRetire(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=RetireSerializer, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, slug: str):
        data = RetireSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changed = services.subjects_retire(
            project=_project(slug), galaxy_ids=data.validated_data["galaxies"], retired=data.validated_data["retired"]
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
