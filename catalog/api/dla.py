"""The public DLA catalog: releases, absorbers with filters, cone search and cursor pages,
streamed CSV/VOTable/FITS, sightlines with their absorbers, and IVOA Simple Cone Search."""

import math
from dataclasses import replace
from xml.sax.saxutils import quoteattr

from django.http import Http404, HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer
from rest_framework.settings import api_settings
from rest_framework.views import APIView

from catalog.api.views import TABLE_FORMATS, CSVRenderer, FITSRenderer, VOTableRenderer, _float
from catalog.errors import ApplicationError, NotFound
from catalog.exports import CONTENT_TYPES, EXTENSIONS, Column, snapshot, stream_table
from catalog.models import DLAAbsorber, DLARelease, ModelVersion, QuasarSpectrum
from catalog.selectors import DLA_ORDERINGS, DLA_RANGES, cone_filter, dla_absorber_search, dla_release_get

MAX_PAGE_SIZE = 1000
EXPORT_CHUNK = 5000

# Every table output's columns, with units and UCDs, and the fields they come from.
DLA_COLUMNS = [
    Column("identifier", "str", width=40, ucd="meta.id;meta.main", description="Stable absorber identifier"),
    Column("release", "str", width=32, ucd="meta.dataset", description="Catalog release"),
    Column("plate", "int", ucd="meta.id.part", description="SDSS plate"),
    Column("mjd", "int", unit="d", ucd="time.epoch", description="MJD of the observation"),
    Column("fiber", "int", ucd="meta.id.part", description="SDSS fiber"),
    Column("thing_id", "int", ucd="meta.id.cross", description="SDSS THING_ID (-1: unknown)"),
    Column("ra", "float", unit="deg", ucd="pos.eq.ra;meta.main", description="Quasar right ascension (ICRS)"),
    Column("dec", "float", unit="deg", ucd="pos.eq.dec;meta.main", description="Quasar declination (ICRS)"),
    Column("z_qso", "float", ucd="src.redshift", description="Quasar redshift"),
    Column("snr", "float", ucd="stat.snr", description="Median S/N per pixel, rest 1420-1480 A"),
    Column("z_abs", "float", ucd="src.redshift;phys.absorption", description="Absorber redshift (Lyman alpha)"),
    # Logarithmic: FITS and VOUnit have no unit for them (the description says so).
    Column("log_nhi", "float", ucd="phys.columnDensity", description="log10 of N(HI) in cm-2"),
    Column("log_nhi_err", "float", ucd="stat.error;phys.columnDensity", description="1-sigma error of log_nhi, dex"),
    Column("confidence", "float", ucd="stat.probability", description="Detection confidence in [0, 1]"),
    Column("type", "str", width=8, ucd="meta.code.class", description="dla (log N >= 20.3) or subdla"),
    Column("lyman_beta", "bool", ucd="meta.code", description="Likely another absorber's Lyman-beta line"),
    Column("model_version", "str", width=48, ucd="meta.version", description="DLA finder version"),
]
DLA_FIELDS = (
    "identifier",
    "release__name",
    *DLAAbsorber.SIGHTLINE_FIELDS,
    *DLAAbsorber.MEASURED_FIELDS,
    "kind",
    "lyman_beta",
    "model_version_id",
)


class DLAAbsorberSerializer(serializers.ModelSerializer):
    release = serializers.CharField(source="release.name")
    sightline = serializers.SerializerMethodField()
    type = serializers.CharField(source="kind")
    model_version = serializers.CharField(source="model_version.__str__")

    class Meta:
        model = DLAAbsorber
        fields = [
            "identifier",
            "release",
            "sightline",
            *DLAAbsorber.SIGHTLINE_FIELDS,
            *DLAAbsorber.MEASURED_FIELDS,
            "type",
            "lyman_beta",
            "model_version",
        ]

    def get_sightline(self, obj) -> str:
        return f"{obj.plate}-{obj.mjd}-{obj.fiber}"


class DLAReleaseSerializer(serializers.ModelSerializer):
    model_version = serializers.CharField(source="model_version.__str__")

    class Meta:
        model = DLARelease
        fields = [
            "name",
            "description",
            "model_version",
            "min_confidence",
            "n_sightlines",
            "n_absorbers",
            "published_at",
        ]


class _FormatAsParameter:
    """An unknown ?format= is a 400 naming the formats (DRF answers it with a 404)."""

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except Http404:
            known = ", ".join(["json", "api", *TABLE_FORMATS])
            raise ApplicationError(
                f"format must be one of {known}, got {request.query_params.get('format')!r}"
            ) from None


class DLACursorPagination(CursorPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_ordering(self, request, queryset, view):
        return view.ordering()


def _page_size(params) -> None:
    value = params.get("page_size")
    if value in (None, ""):
        return
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise ApplicationError(f"page_size must be an integer in [1, {MAX_PAGE_SIZE}], got {value!r}")


def _bool(params, name: str) -> bool | None:
    value = params.get(name)
    if value in (None, ""):
        return None
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ApplicationError(f"{name} must be true or false, got {value!r}")


def _cone_args(params) -> tuple[float, float, float] | None:
    ra, dec, radius = _float(params, "ra"), _float(params, "dec"), _float(params, "radius")
    given = [v is not None for v in (ra, dec, radius)]
    if any(given) and not all(given):
        raise ApplicationError("a cone search needs ra, dec and radius (degrees)")
    return (ra, dec, radius) if all(given) else None


_RANGE_PARAMETERS = [
    OpenApiParameter(f"{prefix}_{end}", OpenApiTypes.FLOAT, description=f"{end} of {field}")
    for prefix, (field, _) in DLA_RANGES.items()
    for end in ("min", "max")
]


@extend_schema(
    parameters=[
        OpenApiParameter("release", OpenApiTypes.STR, description="Release name (default: the latest)."),
        *_RANGE_PARAMETERS,
        OpenApiParameter("type", OpenApiTypes.STR, enum=["dla", "subdla"]),
        OpenApiParameter("lyman_beta", OpenApiTypes.BOOL, description="Only (or no) Lyman-beta-flagged absorbers."),
        OpenApiParameter("ra", OpenApiTypes.FLOAT, description="Cone centre (degrees, ICRS)."),
        OpenApiParameter("dec", OpenApiTypes.FLOAT),
        OpenApiParameter("radius", OpenApiTypes.FLOAT, description="Cone radius (degrees, (0, 180])."),
        OpenApiParameter("ordering", OpenApiTypes.STR, enum=[*DLA_ORDERINGS, *(f"-{o}" for o in DLA_ORDERINGS)]),
        OpenApiParameter("page_size", OpenApiTypes.INT, description=f"1-{MAX_PAGE_SIZE} (default 100)."),
        OpenApiParameter(
            "format",
            OpenApiTypes.STR,
            enum=["json", "csv", "votable", "fits"],
            description="csv/votable/fits stream the whole filtered result.",
        ),
    ]
)
class DLAList(_FormatAsParameter, generics.ListAPIView):
    """Absorbers of the latest (or ?release=) DLA catalog release, filtered, cone-searched and
    ordered, in cursor pages; ?format=csv|votable|fits streams all of them."""

    serializer_class = DLAAbsorberSerializer
    pagination_class = DLACursorPagination
    permission_classes = [AllowAny]
    renderer_classes = [*api_settings.DEFAULT_RENDERER_CLASSES, CSVRenderer, FITSRenderer, VOTableRenderer]

    def ordering(self) -> tuple[str, ...]:
        value = self.request.query_params.get("ordering") or "id"
        if value.lstrip("-") not in DLA_ORDERINGS:
            raise ApplicationError(f"ordering must be one of {', '.join(DLA_ORDERINGS)} (- for descending)")
        return (value,) if value.lstrip("-") == "id" else (value, "-id" if value.startswith("-") else "id")

    def get_queryset(self):
        params = self.request.query_params
        _page_size(params)
        release = dla_release_get(name=params.get("release"))
        ranges = {prefix: (_float(params, f"{prefix}_min"), _float(params, f"{prefix}_max")) for prefix in DLA_RANGES}
        queryset = dla_absorber_search(
            release=release,
            ranges=ranges,
            kind=params.get("type") or None,
            lyman_beta=_bool(params, "lyman_beta"),
            cone=_cone_args(params),
        )
        self.ordering()  # a bad ordering is a 400 in every format
        return queryset.select_related("release", "model_version")

    def list(self, request, *args, **kwargs):
        queryset = self.get_queryset()
        fmt = request.accepted_renderer.format
        if fmt in TABLE_FORMATS:
            return dla_table_response(fmt, queryset, f"dla-{dla_release_get(name=request.query_params.get('release'))}")
        page = self.paginate_queryset(queryset)
        # The serializer's fields, built directly: a page of 1,000 absorbers in a few ms.
        return self.get_paginated_response([absorber_json(a) for a in page])


def absorber_json(a: DLAAbsorber) -> dict:
    """What DLAAbsorberSerializer gives (the API schema), without its per-field overhead."""
    row = {"identifier": a.identifier, "release": a.release.name, "sightline": f"{a.plate}-{a.mjd}-{a.fiber}"}
    row.update({f: getattr(a, f) for f in (*DLAAbsorber.SIGHTLINE_FIELDS, *DLAAbsorber.MEASURED_FIELDS)})
    row.update({"type": a.kind, "lyman_beta": a.lyman_beta, "model_version": str(a.model_version)})
    return row


def dla_table_response(fmt: str, queryset, name: str) -> StreamingHttpResponse:
    """The whole queryset as a streamed table, in constant memory (keyset chunks by id)."""

    def body():
        with snapshot():
            n_rows = queryset.count()
            versions = {}

            def chunks():
                last = 0
                while batch := list(
                    queryset.filter(pk__gt=last).order_by("pk").values_list("pk", *DLA_FIELDS)[:EXPORT_CHUNK]
                ):
                    last = batch[-1][0]
                    missing = {r[-1] for r in batch} - set(versions)
                    versions.update({v.pk: str(v) for v in ModelVersion.objects.filter(pk__in=missing)})
                    yield [(*r[1:-1], versions[r[-1]]) for r in batch]

            yield from stream_table(fmt, DLA_COLUMNS, chunks(), n_rows)

    response = StreamingHttpResponse(body(), content_type=CONTENT_TYPES[fmt])
    response["Content-Disposition"] = f'attachment; filename="{name}.{EXTENSIONS[fmt]}"'
    return response


class DLADetail(_FormatAsParameter, generics.RetrieveAPIView):
    """One absorber, by its stable identifier."""

    serializer_class = DLAAbsorberSerializer
    permission_classes = [AllowAny]
    queryset = DLAAbsorber.objects.select_related("release", "model_version")
    lookup_field = "identifier"


class DLAReleaseList(_FormatAsParameter, generics.ListAPIView):
    """The published releases, newest first."""

    serializer_class = DLAReleaseSerializer
    permission_classes = [AllowAny]
    queryset = DLARelease.objects.select_related("model_version")


@extend_schema(parameters=[OpenApiParameter("release", OpenApiTypes.STR, description="Default: the latest.")])
class SightlineDetail(_FormatAsParameter, APIView):
    """A sightline (plate-mjd-fiber) with its absorbers in a release."""

    permission_classes = [AllowAny]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, plate: int, mjd: int, fiber: int):
        from rest_framework.response import Response

        release = dla_release_get(name=request.query_params.get("release"))
        absorbers = (
            DLAAbsorber.objects.filter(release=release, plate=plate, mjd=mjd, fiber=fiber)
            .select_related("release", "model_version")
            .order_by("z_abs")
        )
        spectrum = QuasarSpectrum.objects.filter(plate=plate, mjd=mjd, fiber=fiber).first()
        if spectrum is None and not absorbers.exists():
            raise NotFound(f"no sightline {plate}-{mjd}-{fiber}")
        facts = (
            {
                "thing_id": spectrum.thing_id,
                "ra": spectrum.ra,
                "dec": spectrum.dec,
                "z_qso": spectrum.z_qso,
                "snr": spectrum.snr,
                "page": f"/spectra/{spectrum.pk}/",
            }
            if spectrum
            else {k: getattr(absorbers[0], k) for k in ("thing_id", "ra", "dec", "z_qso", "snr")}
        )
        return Response(
            {
                "sightline": f"{plate}-{mjd}-{fiber}",
                "plate": plate,
                "mjd": mjd,
                "fiber": fiber,
                **facts,
                "release": release.name,
                "absorbers": DLAAbsorberSerializer(absorbers, many=True).data,
            }
        )


# ---- IVOA Simple Cone Search 1.03 ---------------------------------------------------------------
class _VOTableXML(BaseRenderer):
    media_type, format, charset = "text/xml", "xml", "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else str(data).encode()


SCS_UCDS = {"identifier": "ID_MAIN", "ra": "POS_EQ_RA_MAIN", "dec": "POS_EQ_DEC_MAIN"}
SCS_MAXREC_DEFAULT = 10_000
SCS_MAXREC_LIMIT = 100_000


def _scs_error(message: str) -> HttpResponse:
    body = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">\n'
        f'<RESOURCE type="results">\n<INFO name="Error" value={quoteattr(message)}/>\n</RESOURCE>\n</VOTABLE>\n'
    )
    return HttpResponse(body.encode(), content_type="text/xml; charset=utf-8")


def _scs_number(params, name: str, required: bool = True) -> float | None:
    value = params.get(name)
    if value in (None, ""):
        if required:
            raise ApplicationError(f"{name} is required (decimal degrees)")
        return None
    try:
        number = float(value)
    except ValueError:
        raise ApplicationError(f"{name} must be a number of degrees, got {value!r}") from None
    if not math.isfinite(number):
        raise ApplicationError(f"{name} must be finite, got {value!r}")
    return number


class ConeSearch(APIView):
    """IVOA Simple Cone Search 1.03 over the latest (or RELEASE=) DLA release:
    ?RA=&DEC=&SR= in ICRS degrees; SR=0 returns the metadata; MAXREC caps the rows (with
    QUERY_STATUS OVERFLOW); errors come back as a VOTable INFO name="Error"."""

    permission_classes = [AllowAny]
    renderer_classes = [_VOTableXML]

    def perform_content_negotiation(self, request, force=False):
        return self.renderer_classes[0](), self.renderer_classes[0].media_type

    @extend_schema(
        parameters=[
            OpenApiParameter("RA", OpenApiTypes.FLOAT, required=True),
            OpenApiParameter("DEC", OpenApiTypes.FLOAT, required=True),
            OpenApiParameter("SR", OpenApiTypes.FLOAT, required=True, description="Radius, degrees; 0: metadata."),
            OpenApiParameter("MAXREC", OpenApiTypes.INT),
            OpenApiParameter("VERB", OpenApiTypes.INT),
            OpenApiParameter("RELEASE", OpenApiTypes.STR),
        ],
        responses={(200, "text/xml"): OpenApiTypes.STR},
    )
    def get(self, request):
        params = {k.upper(): v for k, v in request.query_params.items()}
        try:
            release = dla_release_get(name=params.get("RELEASE"))
            sr = _scs_number(params, "SR")
            if sr is not None and sr == 0 and "RA" not in params and "DEC" not in params:
                ra = dec = 0.0
            else:
                ra, dec = _scs_number(params, "RA"), _scs_number(params, "DEC")
            if not 0.0 <= sr <= 180.0:
                raise ApplicationError(f"SR {sr} outside [0, 180] degrees")
            if not -90.0 <= dec <= 90.0:
                raise ApplicationError(f"DEC {dec} outside [-90, 90] degrees")
            if not -360.0 <= ra <= 720.0:
                raise ApplicationError(f"RA {ra} outside [0, 360) degrees")
            ra = ra % 360.0
            maxrec = params.get("MAXREC")
            if maxrec not in (None, "") and not maxrec.isdigit():
                raise ApplicationError(f"MAXREC must be a non-negative integer, got {maxrec!r}")
            limit = min(int(maxrec), SCS_MAXREC_LIMIT) if maxrec not in (None, "") else SCS_MAXREC_DEFAULT
        except (ApplicationError, NotFound) as exc:
            return _scs_error(exc.message)
        description = f"galaxylab DLA catalog, release {release.name}"
        columns = [replace(c, ucd=SCS_UCDS.get(c.name, c.ucd)) for c in DLA_COLUMNS]
        if sr == 0:  # metadata: the fields, no rows
            body = stream_table("votable", columns, [], infos=[("QUERY_STATUS", "OK")], description=description)
            return HttpResponse(b"".join(body), content_type="text/xml; charset=utf-8")
        queryset = cone_filter(DLAAbsorber.objects.filter(release=release), ra=ra, dec=dec, radius_deg=sr)
        rows = list(queryset.order_by("id").values_list(*DLA_FIELDS)[: limit + 1])
        status = "OVERFLOW" if len(rows) > limit else "OK"
        versions = {v.pk: str(v) for v in ModelVersion.objects.filter(pk__in={r[-1] for r in rows})}
        chunks = [[(*r[:-1], versions[r[-1]]) for r in rows[:limit]]]
        body = stream_table("votable", columns, chunks, infos=[("QUERY_STATUS", status)], description=description)
        return HttpResponse(b"".join(body), content_type="text/xml; charset=utf-8")
