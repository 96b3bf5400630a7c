"""Read-only catalog API: surveys, galaxies and quasar spectra with filters and cone search."""

from django.shortcuts import get_object_or_404
from rest_framework import generics

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


class GalaxyList(generics.ListAPIView):
    """?survey=NAME&mag_min=&mag_max=&z_min=&z_max=&ra=&dec=&radius= (degrees)."""

    serializer_class = GalaxySerializer

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
