"""Read-only catalog API: surveys, galaxies and quasar spectra with filters and cone search."""

import json

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics
from rest_framework.renderers import BaseRenderer
from rest_framework.settings import api_settings

from catalog.api.serializers import GalaxySerializer, QuasarSpectrumSerializer, SurveySerializer
from catalog.errors import ApplicationError
from catalog.models import Galaxy, QuasarSpectrum, Survey
from catalog.selectors import cone_filter


def _float(params, name: str) -> float | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        raise ApplicationError(f"{name} must be a number, got {value!r}") from None


def _cone(queryset, params):
    ra, dec, radius = _float(params, "ra"), _float(params, "dec"), _float(params, "radius")
    given = [v is not None for v in (ra, dec, radius)]
    if any(given) and not all(given):
        raise ApplicationError("a cone search needs ra, dec and radius (degrees)")
    if all(given):
        queryset = cone_filter(queryset, ra=ra, dec=dec, radius_deg=radius)
    return queryset


class SurveyList(generics.ListAPIView):
    queryset = Survey.objects.prefetch_related("bands").order_by("name")
    serializer_class = SurveySerializer


class SurveyDetail(generics.RetrieveAPIView):
    queryset = Survey.objects.prefetch_related("bands")
    serializer_class = SurveySerializer
    lookup_field = "name"


class _TableRenderer(BaseRenderer):
    """Lets ?format=csv|fits|votable through content negotiation: the view streams the table."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):  # errors only
        return json.dumps(data).encode() if data is not None else b""


class CSVRenderer(_TableRenderer):
    media_type, format = "text/csv", "csv"


class FITSRenderer(_TableRenderer):
    media_type, format = "application/fits", "fits"


class VOTableRenderer(_TableRenderer):
    media_type, format = "application/x-votable+xml", "votable"


TABLE_FORMATS = ("csv", "fits", "votable")


@extend_schema(
    parameters=[
        OpenApiParameter("survey", OpenApiTypes.STR, description="Survey name."),
        OpenApiParameter("mag_min", OpenApiTypes.FLOAT),
        OpenApiParameter("mag_max", OpenApiTypes.FLOAT),
        OpenApiParameter("z_min", OpenApiTypes.FLOAT, description="Photometric redshift range."),
        OpenApiParameter("z_max", OpenApiTypes.FLOAT),
        OpenApiParameter("ra", OpenApiTypes.FLOAT, description="Cone centre (degrees, ICRS)."),
        OpenApiParameter("dec", OpenApiTypes.FLOAT),
        OpenApiParameter("radius", OpenApiTypes.FLOAT, description="Cone radius (degrees)."),
        OpenApiParameter(
            "scheme",
            OpenApiTypes.STR,
            description="Add the humans' vote fractions under this scheme (candels, gz2) and the model's predictions.",
        ),
        OpenApiParameter("version", OpenApiTypes.INT, description="With scheme: this model version, not the promoted."),
        OpenApiParameter("voted", OpenApiTypes.BOOL, description="With scheme: only galaxies with votes."),
        OpenApiParameter(
            "format",
            OpenApiTypes.STR,
            enum=["json", "csv", "fits", "votable"],
            description="csv/fits/votable stream the whole result.",
        ),
    ]
)
class GalaxyList(generics.ListAPIView):
    """Galaxies, filtered and cone-searched; with ?scheme= their vote fractions and the promoted
    (or ?version=) morphology model's predictions; ?format=csv|fits|votable streams them all."""

    serializer_class = GalaxySerializer
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer, FITSRenderer, VOTableRenderer]

    def get_queryset(self):
        params = self.request.query_params
        queryset = Galaxy.objects.select_related("survey").order_by("id")
        if name := params.get("survey"):
            queryset = queryset.filter(survey=get_object_or_404(Survey, name=name))
        for name, lookup in (
            ("mag_min", "mag__gte"),
            ("mag_max", "mag__lte"),
            ("z_min", "z_phot__gte"),
            ("z_max", "z_phot__lte"),
        ):
            if (value := _float(params, name)) is not None:
                queryset = queryset.filter(**{lookup: value})
        return _cone(queryset, params)

    def _classification_sources(self):
        from mlworker.catalog_export import catalog_sources

        params = self.request.query_params
        scheme = params.get("scheme")
        version = params.get("version")
        if version and not scheme:
            raise ApplicationError("version needs a scheme (e.g. scheme=candels)")
        if not scheme:
            return None, None
        if version and not version.isdigit():
            raise ApplicationError(f"version must be a version number, got {version!r}")
        return catalog_sources(scheme_slug=scheme, version_number=int(version) if version else None)

    def list(self, request, *args, **kwargs):
        from labeling.models import GalaxyVoteTotal

        scheme_version, model_version = self._classification_sources()
        queryset = self.filter_queryset(self.get_queryset())
        if request.query_params.get("voted") in ("1", "true"):
            if scheme_version is None:
                raise ApplicationError("voted needs a scheme (e.g. scheme=candels)")
            voted = GalaxyVoteTotal.objects.filter(scheme_version=scheme_version, n_votes__gt=0).values("galaxy_id")
            queryset = queryset.filter(pk__in=voted)
        fmt = request.accepted_renderer.format
        if fmt in TABLE_FORMATS:
            return self._stream(fmt, queryset, scheme_version, model_version)
        page = self.paginate_queryset(queryset)
        data = self.get_serializer(page, many=True).data
        if scheme_version is not None:
            from mlworker.catalog_export import catalog_json_rows

            data = catalog_json_rows([dict(g) for g in data], scheme_version, model_version)
        return self.get_paginated_response(data)

    def _stream(self, fmt, queryset, scheme_version, model_version):
        from catalog.exports import CONTENT_TYPES, EXTENSIONS, snapshot, stream_table

        if scheme_version is None:
            from mlworker.catalog_export import GALAXY_COLUMNS as columns
            from mlworker.catalog_export import GALAXY_FIELDS as fields

            def table():
                n_rows = queryset.count()

                def chunks():
                    last = 0
                    while batch := list(queryset.filter(pk__gt=last).order_by("pk").values_list(*fields)[:5000]):
                        yield batch
                        last = batch[-1][0]

                return columns, n_rows, chunks()
        else:
            from mlworker.catalog_export import catalog_table

            def table():
                return catalog_table(queryset, scheme_version, model_version)

        def body():
            with snapshot():
                columns, n_rows, chunks = table()
                yield from stream_table(fmt, columns, chunks, n_rows)

        response = StreamingHttpResponse(body(), content_type=CONTENT_TYPES[fmt])
        name = f"galaxies-{scheme_version.scheme.slug}" if scheme_version else "galaxies"
        response["Content-Disposition"] = f'attachment; filename="{name}.{EXTENSIONS[fmt]}"'
        return response


class GalaxyDetail(generics.RetrieveAPIView):
    queryset = Galaxy.objects.select_related("survey")
    serializer_class = GalaxySerializer


class SpectrumList(generics.ListAPIView):
    """?survey=NAME&z_min=&z_max=&snr_min=&ra=&dec=&radius= (degrees)."""

    serializer_class = QuasarSpectrumSerializer

    def get_queryset(self):
        params = self.request.query_params
        queryset = QuasarSpectrum.objects.select_related("survey").order_by("id")
        if name := params.get("survey"):
            queryset = queryset.filter(survey=get_object_or_404(Survey, name=name))
        for name, lookup in (("z_min", "z_qso__gte"), ("z_max", "z_qso__lte"), ("snr_min", "snr__gte")):
            if (value := _float(params, name)) is not None:
                queryset = queryset.filter(**{lookup: value})
        return _cone(queryset, params)
