"""Django admin for the catalog: every model searchable and filterable; images shown inline."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from catalog.models import (
    Band,
    Cutout,
    DLAAbsorber,
    DLARelease,
    Galaxy,
    ImageShard,
    MergerEvent,
    MockImage,
    QuasarSpectrum,
    SimulationRun,
    Snapshot,
    SpectrumShard,
    Survey,
)
from catalog.rendering import png_url
from catalog.services.surveys import survey_delete


def _thumb(image, size: int = 96) -> str:
    url = png_url(image)
    return format_html(
        '<img src="{}" width="{}" height="{}" style="image-rendering:pixelated;background:#000">', url, size, size
    )


class BandInline(admin.TabularInline):
    model = Band
    extra = 0


@admin.register(Survey)
class SurveyAdmin(admin.ModelAdmin):
    list_display = ("name", "title", "kind", "field_name", "instrument", "detection_band", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "title", "field_name", "instrument")
    inlines = [BandInline]
    actions = ["delete_with_everything"]

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # Django's would load every galaxy to list it
        return actions

    def get_deleted_objects(self, objs, request):
        summary = [
            f"{obj}: the survey with all its galaxies, cutouts, spectra, simulation runs and files" for obj in objs
        ]
        return summary, {}, set(), []

    def delete_model(self, request, obj):
        survey_delete(survey=obj)

    @admin.action(description="Delete selected surveys with everything hanging off them", permissions=["delete"])
    def delete_with_everything(self, request, queryset):
        for survey in queryset:
            report = survey_delete(survey=survey)
            rows = ", ".join(f"{n} {label.split('.')[-1]}" for label, n in report.rows.items() if n)
            self.message_user(request, f"deleted {report.survey}: {rows}", messages.SUCCESS)


@admin.register(Band)
class BandAdmin(admin.ModelAdmin):
    list_display = ("survey", "name", "instrument", "pixel_scale_arcsec", "psf_fwhm_arcsec", "zero_point_ab")
    list_filter = ("survey",)
    search_fields = ("name", "survey__name", "instrument")


class CutoutInline(admin.TabularInline):
    model = Cutout
    extra = 0
    fields = ("preview", "band", "width", "height", "pixel_scale_arcsec", "psf_fwhm_arcsec", "fits_file")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="image")
    def preview(self, obj):
        return _thumb(obj, 128)


@admin.register(Galaxy)
class GalaxyAdmin(admin.ModelAdmin):
    list_display = ("source_id", "survey", "ra", "dec", "mag", "z_phot", "z_spec", "log_stellar_mass")
    list_filter = ("survey",)
    search_fields = ("source_id",)
    list_select_related = ("survey",)
    readonly_fields = ("healpix", "cx", "cy", "cz", "created_at", "cutout_image")
    inlines = [CutoutInline]
    show_full_result_count = False  # counting a million rows per page view is wasted work

    @admin.display(description="cutout")
    def cutout_image(self, obj):
        cutout = obj.cutouts.order_by("band__name").first()
        return _thumb(cutout, 256) if cutout else "—"


@admin.register(Cutout)
class CutoutAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "galaxy", "band", "width", "height", "pixel_scale_arcsec", "psf_fwhm_arcsec")
    list_filter = ("band__survey", "band")
    search_fields = ("galaxy__source_id",)
    raw_id_fields = ("galaxy", "shard")
    readonly_fields = ("thumbnail", "checksum", "shard", "shard_row", "created_at")
    list_select_related = ("galaxy", "band")
    show_full_result_count = False

    @admin.display(description="image")
    def thumbnail(self, obj):
        return _thumb(obj)


@admin.register(QuasarSpectrum)
class QuasarSpectrumAdmin(admin.ModelAdmin):
    list_display = ("__str__", "survey", "thing_id", "ra", "dec", "z_qso", "snr", "resampled", "dla_free")
    list_filter = ("survey", "resampled", "object_class", "dla_free")
    search_fields = ("plate", "thing_id", "fiber")
    readonly_fields = ("plot", "healpix", "cx", "cy", "cz", "shard", "shard_offset", "checksum", "created_at")
    show_full_result_count = False

    @admin.display(description="spectrum")
    def plot(self, obj):
        return format_html('<img src="{}" style="max-width:100%">', reverse("catalog:spectrum-png", args=[obj.pk]))


class SnapshotInline(admin.TabularInline):
    model = Snapshot
    extra = 0
    fields = (
        "scale_factor",
        "redshift",
        "stellar_mass_msun",
        "sfr_msun_per_yr",
        "compaction_phase",
        "counter_rotating_stream",
    )
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class MergerInline(admin.TabularInline):
    model = MergerEvent
    extra = 0


@admin.register(SimulationRun)
class SimulationRunAdmin(admin.ModelAdmin):
    list_display = ("name", "survey", "code", "created_at")
    list_filter = ("survey", "code")
    search_fields = ("name", "description")
    inlines = [MergerInline, SnapshotInline]


@admin.register(Snapshot)
class SnapshotAdmin(admin.ModelAdmin):
    list_display = ("run", "scale_factor", "redshift", "stellar_mass_msun", "sfr_msun_per_yr", "compaction_phase")
    list_filter = ("run__survey", "run", "compaction_phase", "counter_rotating_stream")
    search_fields = ("run__name",)


@admin.register(MergerEvent)
class MergerEventAdmin(admin.ModelAdmin):
    list_display = ("run", "scale_factor", "mass_ratio", "kind")
    list_filter = ("kind", "run")
    search_fields = ("run__name",)


@admin.register(MockImage)
class MockImageAdmin(admin.ModelAdmin):
    list_display = ("thumbnail", "snapshot", "camera", "filter_name", "signal_to_noise", "instrument")
    list_filter = ("snapshot__run", "filter_name", "camera")
    search_fields = ("snapshot__run__name",)
    raw_id_fields = ("snapshot", "shard")
    readonly_fields = ("thumbnail", "checksum", "shard", "shard_row", "created_at")
    list_select_related = ("snapshot__run",)
    show_full_result_count = False

    @admin.display(description="image")
    def thumbnail(self, obj):
        return _thumb(obj)


@admin.register(ImageShard)
class ImageShardAdmin(admin.ModelAdmin):
    list_display = ("path", "survey", "kind", "n_images", "height", "width", "created_at")
    list_filter = ("survey", "kind")
    search_fields = ("path",)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SpectrumShard)
class SpectrumShardAdmin(admin.ModelAdmin):
    list_display = ("path", "survey", "n_spectra", "n_pixels", "created_at")
    list_filter = ("survey",)
    search_fields = ("path",)

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DLARelease)
class DLAReleaseAdmin(admin.ModelAdmin):
    """Published releases are frozen: listed and browsable, never edited (publish with
    ``manage.py publish_dla NAME``)."""

    list_display = ("name", "model_version", "n_sightlines", "n_absorbers", "min_confidence", "published_at")
    readonly_fields = ("name", "model_version", "description", "min_confidence", "n_sightlines", "n_absorbers")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(DLAAbsorber)
class DLAAbsorberAdmin(admin.ModelAdmin):
    list_display = ("identifier", "release", "z_abs", "log_nhi", "confidence", "kind", "lyman_beta")
    list_filter = ("release", "kind", "lyman_beta")
    search_fields = ("identifier",)
    list_select_related = ("release",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
