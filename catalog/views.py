"""Catalog pages (server-rendered), image renders and the health endpoint."""

import logging

from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from catalog import rendering
from catalog.errors import ApplicationError
from catalog.models import Cutout, Galaxy, MockImage, ModelTask, Prediction, QuasarSpectrum, SimulationRun, Survey
from catalog.selectors import galaxy_cone_search, survey_summaries

logger = logging.getLogger(__name__)


def _float_param(request, name: str) -> float | None:
    value = request.GET.get(name, "").strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ApplicationError(f"{name} must be a number, got {value!r}") from None


@require_GET
def home(request):
    return render(request, "catalog/home.html", {"surveys": survey_summaries()})


@require_GET
def survey_detail(request, name: str):
    survey = get_object_or_404(Survey.objects.prefetch_related("bands"), name=name)
    context = {"survey": survey, "error": None}
    if survey.kind == Survey.Kind.IMAGING:
        galaxies = Galaxy.objects.filter(survey=survey).order_by("source_id")
        try:
            mag_max, mag_min = _float_param(request, "mag_max"), _float_param(request, "mag_min")
            ra, dec, radius = _float_param(request, "ra"), _float_param(request, "dec"), _float_param(request, "radius")
            if mag_min is not None:
                galaxies = galaxies.filter(mag__gte=mag_min)
            if mag_max is not None:
                galaxies = galaxies.filter(mag__lte=mag_max)
            if any(v is not None for v in (ra, dec, radius)):
                galaxies = galaxy_cone_search(ra=ra, dec=dec, radius_deg=radius, survey=survey).order_by("source_id")
        except ApplicationError as exc:
            context["error"] = exc.message
            galaxies = galaxies.none()
        if q := request.GET.get("q", "").strip():
            galaxies = galaxies.filter(source_id__icontains=q)
        context["page"] = Paginator(galaxies.prefetch_related("cutouts"), 48).get_page(request.GET.get("page"))
    elif survey.kind == Survey.Kind.SPECTROSCOPIC:
        spectra = QuasarSpectrum.objects.filter(survey=survey).order_by("plate", "mjd", "fiber")
        context["page"] = Paginator(spectra, 50).get_page(request.GET.get("page"))
    else:
        context["runs"] = SimulationRun.objects.filter(survey=survey).order_by("name")
    return render(request, "catalog/survey_detail.html", context)


@require_GET
def galaxy_detail(request, pk: int):
    galaxy = get_object_or_404(Galaxy.objects.select_related("survey"), pk=pk)
    from mlworker.comparison import galaxy_comparison
    from mlworker.emulator_comparison import galaxy_structure
    from mlworker.environment import galaxy_environment

    cutouts = galaxy.cutouts.select_related("band").order_by("band__name")
    return render(
        request,
        "catalog/galaxy_detail.html",
        {
            "galaxy": galaxy,
            "cutouts": cutouts,
            "classifications": galaxy_comparison(galaxy_id=galaxy.pk),
            "structure": galaxy_structure(galaxy_id=galaxy.pk),
            "environment": galaxy_environment(galaxy_id=galaxy.pk),
        },
    )


@require_GET
def spectrum_detail(request, pk: int):
    spectrum = get_object_or_404(QuasarSpectrum.objects.select_related("survey"), pk=pk)
    from mlworker.dla_catalog import sightline_dla

    return render(
        request, "catalog/spectrum_detail.html", {"spectrum": spectrum, "dla": sightline_dla(spectrum=spectrum)}
    )


@require_GET
def spectrum_dla_png(request, pk: int):
    spectrum = get_object_or_404(QuasarSpectrum, pk=pk)
    from mlworker.dla_catalog import sightline_dla, sightline_dla_png

    found = sightline_dla(spectrum=spectrum)
    if found is None or found["version"] is None:
        raise Http404("the DLA finder has not scanned this sightline")
    params = rendering.RenderParams(stretch="linear")
    return _png(
        rendering.cached_render(
            f"dla-v{found['version'].pk}",
            spectrum.checksum,
            params,
            lambda: sightline_dla_png(spectrum=spectrum, absorbers=found["absorbers"]),
        )
    )


@require_GET
def simulation_run_detail(request, pk: int):
    run = get_object_or_404(SimulationRun.objects.select_related("survey"), pk=pk)
    snapshots = list(run.snapshots.order_by("scale_factor"))
    camera = int(request.GET.get("camera", 0)) if request.GET.get("camera", "0").isdigit() else 0
    images = {
        img.snapshot_id: img
        for img in MockImage.objects.filter(snapshot__run=run, camera=camera).order_by("filter_name")
    }
    cameras = sorted(set(MockImage.objects.filter(snapshot__run=run).values_list("camera", flat=True)))
    rows = [(s, images.get(s.pk)) for s in snapshots]
    from mlworker.simulation_timeline import promoted

    return render(
        request,
        "catalog/simulation_run_detail.html",
        {
            "run": run,
            "rows": rows,
            "mergers": run.mergers.all(),
            "camera": camera,
            "cameras": cameras,
            "emulator": promoted(ModelTask.EMULATOR),
            "phenomena": promoted(ModelTask.PHENOMENA),
        },
    )


def _timeline(run: SimulationRun) -> dict:
    from mlworker.simulation_timeline import run_timeline

    return run_timeline(run=run)


def _timeline_key(run: SimulationRun) -> str:
    """Changes when a promoted model, or the number of its predictions for the run, changes."""
    from mlworker.simulation_timeline import promoted

    parts = [str(run.pk)]
    for task in (ModelTask.EMULATOR, ModelTask.PHENOMENA):
        version = promoted(task)
        if version is not None:
            n = Prediction.objects.filter(model_version=version, mock_image__snapshot__run=run).count()
            parts.append(f"{version.pk}x{n}")
    return "-".join(parts)


@require_GET
def simulation_timeline_png(request, pk: int):
    """P(bulge), P(disk), P(bulge+disk), n and r_e per camera (thin) and their median (heavy)
    against redshift, the phenomena model's median with the truth, then the run's metadata."""
    run = get_object_or_404(SimulationRun, pk=pk)
    from mlworker.simulation_timeline import timeline_png

    params = rendering.RenderParams(stretch="linear")
    body = rendering.cached_render("timeline", _timeline_key(run), params, lambda: timeline_png(_timeline(run)))
    response = _png(body)
    response["Cache-Control"] = "no-cache"
    return response


@require_GET
def simulation_timeline_csv(request, pk: int):
    """The plotted numbers: a row per snapshot and camera, and a median row per snapshot."""
    run = get_object_or_404(SimulationRun, pk=pk)
    from mlworker.simulation_timeline import timeline_csv

    response = HttpResponse(timeline_csv(_timeline(run)), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{run.name}_timeline.csv"'
    return response


def _png(body: bytes) -> HttpResponse:
    return HttpResponse(body, content_type="image/png")


def _cached_png(request, kind: str) -> HttpResponse | None:
    """Fast path: ?v=<checksum> names the image, so a cached render needs no database."""
    params = rendering.RenderParams.from_query(request.GET)
    cached = rendering.read_cached(kind, request.GET.get("v", ""), params)
    if cached is None:
        return None
    response = _png(cached)
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


@require_GET
@cache_control(max_age=3600)
def cutout_png(request, pk: int):
    if cached := _cached_png(request, "cutouts"):
        return cached
    cutout = get_object_or_404(Cutout, pk=pk)
    return _png(rendering.cutout_png(cutout, rendering.RenderParams.from_query(request.GET)))


@require_GET
@cache_control(max_age=3600)
def mock_image_png(request, pk: int):
    if cached := _cached_png(request, "mock_images"):
        return cached
    image = get_object_or_404(MockImage, pk=pk)
    return _png(rendering.mock_image_png(image, rendering.RenderParams.from_query(request.GET)))


@require_GET
@cache_control(max_age=3600)
def spectrum_png(request, pk: int):
    spectrum = get_object_or_404(QuasarSpectrum, pk=pk)
    return _png(rendering.quasar_spectrum_png(spectrum))


def _fits(field_file, download_name: str) -> FileResponse:
    """The original FITS file from storage (works with any storage backend, DEBUG or not)."""
    try:
        handle = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("the FITS file is missing from storage") from None
    return FileResponse(handle, as_attachment=True, filename=download_name, content_type="application/fits")


@require_GET
def cutout_fits(request, pk: int):
    cutout = get_object_or_404(Cutout.objects.select_related("galaxy", "band"), pk=pk)
    return _fits(cutout.fits_file, f"{cutout.galaxy.source_id}_{cutout.band.name}.fits")


@require_GET
def mock_image_fits(request, pk: int):
    image = get_object_or_404(MockImage, pk=pk)
    return _fits(image.fits_file, image.fits_file.name.rsplit("/", 1)[-1])


@require_GET
def spectrum_fits(request, pk: int):
    spectrum = get_object_or_404(QuasarSpectrum, pk=pk)
    return _fits(spectrum.fits_file, f"{spectrum}.fits")
