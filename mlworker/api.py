"""REST API of the ML platform: training runs (staff), model versions and predictions."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import AllowAny, IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.errors import ApplicationError
from catalog.models import ModelTask, ModelVersion, Prediction
from mlworker import selectors
from mlworker.models import TrainingRun
from mlworker.services.training import model_version_promote, model_version_rollback, training_cancel, training_start


class TrainingRunIn(serializers.Serializer):
    task = serializers.ChoiceField(choices=ModelTask.choices)
    variant = serializers.CharField(required=False, allow_blank=True, default="")
    config = serializers.DictField(required=False, default=dict, help_text='Training options, e.g. {"epochs": 4}.')


class TaskVariantIn(serializers.Serializer):
    task = serializers.ChoiceField(choices=ModelTask.choices)
    variant = serializers.CharField(required=False, allow_blank=True, default="")


class ModelVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "task",
            "variant",
            "number",
            "status",
            "is_promoted",
            "primary_metric",
            "primary_value",
            "metrics",
            "config",
            "dataset",
            "band",
            "pixel_scale_arcsec",
            "psf_fwhm_arcsec",
            "predictions_complete",
            "device",
            "created_at",
        ]


class PredictionSerializer(serializers.ModelSerializer):
    version = serializers.StringRelatedField(source="model_version")

    class Meta:
        model = Prediction
        fields = [
            "id",
            "version",
            "galaxy",
            "spectrum",
            "mock_image",
            "values",
            "uncertainty",
            "out_of_distribution",
            "created_at",
        ]


class TrainingRuns(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=TrainingRunIn, responses={201: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 409: OpenApiTypes.OBJECT}
    )
    def post(self, request):
        data = TrainingRunIn(data=request.data)
        data.is_valid(raise_exception=True)
        run = training_start(trigger=TrainingRun.Trigger.API, user=request.user, **data.validated_data)
        return Response(selectors.training_run_progress(run=run), status=status.HTTP_201_CREATED)

    @extend_schema(operation_id="training_runs_list", responses={200: OpenApiTypes.OBJECT})
    def get(self, request):
        return Response([selectors.training_run_progress(run=r) for r in TrainingRun.objects.all()[:50]])


class TrainingRunDetail(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        return Response(selectors.training_run_progress(run=get_object_or_404(TrainingRun, pk=pk)))


class TrainingRunCancel(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses={200: OpenApiTypes.OBJECT})
    def post(self, request, pk: int):
        run = training_cancel(run=get_object_or_404(TrainingRun, pk=pk))
        return Response(selectors.training_run_progress(run=run))


class ModelVersions(generics.ListAPIView):
    """?task=&variant=&promoted=true"""

    permission_classes = [AllowAny]
    serializer_class = ModelVersionSerializer

    def get_queryset(self):
        versions = ModelVersion.objects.all()
        params = self.request.query_params
        for name in ("task", "variant"):
            if name in params:
                versions = versions.filter(**{name: params[name]})
        if params.get("promoted") in ("1", "true"):
            versions = versions.filter(is_promoted=True)
        return versions


class PromoteVersion(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=None, responses={200: ModelVersionSerializer})
    def post(self, request, pk: int):
        return Response(
            ModelVersionSerializer(model_version_promote(version=get_object_or_404(ModelVersion, pk=pk))).data
        )


class RollbackVersion(APIView):
    permission_classes = [IsAdminUser]

    @extend_schema(request=TaskVariantIn, responses={200: ModelVersionSerializer})
    def post(self, request):
        data = TaskVariantIn(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(ModelVersionSerializer(model_version_rollback(**data.validated_data)).data)


class Predictions(generics.ListAPIView):
    """Predictions of one version (?version=ID) or of the promoted one (?task=&variant=);
    only versions whose every chunk is in, unless ?partial=true."""

    permission_classes = [AllowAny]
    serializer_class = PredictionSerializer

    @extend_schema(
        parameters=[OpenApiParameter(n, OpenApiTypes.STR) for n in ("version", "task", "variant", "galaxy", "partial")]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        params = self.request.query_params
        if params.get("version", "").isdigit():
            version = get_object_or_404(ModelVersion, pk=int(params["version"]))
        elif "task" in params:
            version = ModelVersion.objects.filter(
                task=params["task"], variant=params.get("variant", ""), is_promoted=True
            ).first()
            if version is None:
                raise ApplicationError(f"no promoted version of {params['task']}/{params.get('variant', '') or '-'}")
        else:
            raise ApplicationError("give ?version=ID or ?task=TASK[&variant=VARIANT]")
        if not version.predictions_complete and params.get("partial") not in ("1", "true"):
            raise ApplicationError(f"{version}: predictions are still coming in (add ?partial=true to see them so far)")
        predictions = Prediction.objects.filter(model_version=version).select_related("model_version").order_by("id")
        if params.get("galaxy", "").isdigit():
            predictions = predictions.filter(galaxy_id=int(params["galaxy"]))
        return predictions
