"""The catalog: surveys and their bands, galaxies and cutouts, quasar spectra, simulations.

Pixels and fluxes live in files: each cutout, spectrum and mock image keeps its original
FITS in Django storage, and a copy of its array in a packed shard (see
``catalog/packstore.py``) that training and prediction read in bulk. Rows here hold the
metadata and point into those shards.
"""

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Now

from catalog.sky import HEALPIX_ORDER


class Survey(models.Model):
    """An imaging field, a spectroscopic survey or a set of simulation runs."""

    class Kind(models.TextChoices):
        IMAGING = "imaging", "imaging"
        SPECTROSCOPIC = "spectroscopic", "spectroscopic"
        SIMULATION = "simulation", "simulation"

    name = models.SlugField(max_length=64, unique=True, help_text="Short unique name used on the command line.")
    title = models.CharField(max_length=200, blank=True, help_text="Human-readable title.")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    field_name = models.CharField(
        max_length=100, blank=True, help_text="Sky field, e.g. GOODS-S; empty for simulations."
    )
    instrument = models.CharField(
        max_length=100, blank=True, help_text="Telescope/instrument, e.g. HST/WFC3-IR or SDSS/BOSS."
    )
    detection_band = models.CharField(
        max_length=32, blank=True, help_text="Band that galaxies' ``mag`` is measured in."
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["imaging", "spectroscopic", "simulation"]), name="survey_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Band(models.Model):
    """Instrument facts of one band of a survey; models are trained for these."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="bands")
    name = models.CharField(max_length=32, help_text="Filter name, e.g. F160W.")
    instrument = models.CharField(max_length=100, blank=True)
    pixel_scale_arcsec = models.FloatField(help_text="Pixel scale, arcsec per pixel.")
    psf_fwhm_arcsec = models.FloatField(help_text="PSF full width at half maximum, arcsec.")
    zero_point_ab = models.FloatField(null=True, blank=True, help_text="AB magnitude of one count per second.")

    class Meta:
        ordering = ["survey", "name"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "name"], name="band_unique_per_survey"),
            models.CheckConstraint(
                condition=Q(pixel_scale_arcsec__gt=0) & Q(pixel_scale_arcsec__lt=60),
                name="band_pixel_scale_range",
            ),
            models.CheckConstraint(
                condition=Q(psf_fwhm_arcsec__gt=0) & Q(psf_fwhm_arcsec__lt=60),
                name="band_psf_fwhm_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.survey.name}/{self.name}"


class SkyPosition(models.Model):
    """ICRS position with the columns that make cone searches fast (``catalog.sky``)."""

    ra = models.FloatField(help_text="ICRS right ascension, degrees, [0, 360).")
    dec = models.FloatField(help_text="ICRS declination, degrees, [-90, 90].")
    healpix = models.BigIntegerField(db_index=True, help_text=f"NESTED HEALPix pixel at order {HEALPIX_ORDER}.")
    cx = models.FloatField(help_text="Unit vector x = cos(dec) cos(ra).")
    cy = models.FloatField(help_text="Unit vector y = cos(dec) sin(ra).")
    cz = models.FloatField(help_text="Unit vector z = sin(dec).")

    class Meta:
        abstract = True
        constraints = [
            models.CheckConstraint(condition=Q(ra__gte=0) & Q(ra__lt=360), name="%(class)s_ra_range"),
            models.CheckConstraint(condition=Q(dec__gte=-90) & Q(dec__lte=90), name="%(class)s_dec_range"),
        ]


class Galaxy(SkyPosition):
    """One source of an imaging survey's catalog."""

    # No separate index: (survey, source_id) and (survey, mag) both start with survey.
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="galaxies", db_index=False)
    source_id = models.CharField(max_length=64, help_text="The survey's own identifier.")
    mag = models.FloatField(null=True, blank=True, help_text="AB magnitude in the survey's detection band.")
    mag_err = models.FloatField(null=True, blank=True)
    z_spec = models.FloatField(null=True, blank=True, help_text="Spectroscopic redshift.")
    z_spec_err = models.FloatField(null=True, blank=True)
    z_phot = models.FloatField(null=True, blank=True, help_text="Photometric redshift.")
    z_phot_err = models.FloatField(null=True, blank=True)
    log_stellar_mass = models.FloatField(null=True, blank=True, help_text="log10 of the stellar mass in solar masses.")
    properties = models.JSONField(
        default=dict,
        db_default=models.Value({}, output_field=models.JSONField()),
        blank=True,
        help_text="Extra catalog columns kept at ingest.",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        verbose_name_plural = "galaxies"
        ordering = ["survey", "source_id"]
        constraints = [
            *SkyPosition.Meta.constraints,
            models.UniqueConstraint(fields=["survey", "source_id"], name="galaxy_source_unique_per_survey"),
            models.CheckConstraint(
                condition=Q(mag__isnull=True) | (Q(mag__gt=-5) & Q(mag__lt=40)),
                name="galaxy_mag_range",
            ),
            models.CheckConstraint(
                condition=Q(mag_err__isnull=True) | Q(mag_err__gte=0), name="galaxy_mag_err_positive"
            ),
            models.CheckConstraint(
                condition=Q(z_spec__isnull=True) | (Q(z_spec__gte=-0.01) & Q(z_spec__lt=15)),
                name="galaxy_z_spec_range",
            ),
            models.CheckConstraint(
                condition=Q(z_phot__isnull=True) | (Q(z_phot__gte=0) & Q(z_phot__lt=15)),
                name="galaxy_z_phot_range",
            ),
            models.CheckConstraint(
                condition=Q(z_spec_err__isnull=True) | Q(z_spec_err__gte=0),
                name="galaxy_z_spec_err_positive",
            ),
            models.CheckConstraint(
                condition=Q(z_phot_err__isnull=True) | Q(z_phot_err__gte=0),
                name="galaxy_z_phot_err_positive",
            ),
            models.CheckConstraint(
                condition=Q(log_stellar_mass__isnull=True) | (Q(log_stellar_mass__gt=0) & Q(log_stellar_mass__lt=14)),
                name="galaxy_log_stellar_mass_range",
            ),
        ]
        indexes = [models.Index(fields=["survey", "mag"], name="galaxy_survey_mag")]

    def __str__(self) -> str:
        return f"{self.survey.name}:{self.source_id}"


class ImageShard(models.Model):
    """A packed file of equally-shaped float32 images (cutouts or mock images)."""

    class Kind(models.TextChoices):
        CUTOUT = "cutout", "galaxy cutouts"
        MOCK_IMAGE = "mock_image", "simulation mock images"

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="image_shards")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    path = models.CharField(max_length=255, unique=True, help_text="Relative to the pack root.")
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    n_images = models.PositiveIntegerField()
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(height__gt=0) & Q(width__gt=0) & Q(n_images__gt=0),
                name="imageshard_shape_positive",
            ),
            models.CheckConstraint(condition=Q(kind__in=["cutout", "mock_image"]), name="imageshard_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.path} ({self.n_images} x {self.height}x{self.width})"


class PackedImage(models.Model):
    """Fields shared by cutouts and mock images: the FITS file and its place in a shard."""

    fits_file = models.FileField(max_length=255, help_text="The original FITS file.")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the FITS file's bytes.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    pixel_scale_arcsec = models.FloatField()
    psf_fwhm_arcsec = models.FloatField()
    shard = models.ForeignKey(ImageShard, on_delete=models.CASCADE, related_name="+")
    shard_row = models.PositiveIntegerField(help_text="Index of this image in its shard.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(fields=["shard", "shard_row"], name="%(class)s_shard_row_unique"),
            models.CheckConstraint(
                condition=Q(pixel_scale_arcsec__gt=0) & Q(psf_fwhm_arcsec__gt=0),
                name="%(class)s_scales_positive",
            ),
        ]


class Cutout(PackedImage):
    """An image of a galaxy in one band."""

    galaxy = models.ForeignKey(Galaxy, on_delete=models.CASCADE, related_name="cutouts")
    band = models.ForeignKey(Band, on_delete=models.CASCADE, related_name="cutouts")
    zero_point_ab = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            *PackedImage.Meta.constraints,
            models.UniqueConstraint(fields=["galaxy", "band"], name="cutout_one_per_band"),
        ]

    def __str__(self) -> str:
        return f"{self.galaxy} [{self.band.name}]"


class SpectrumShard(models.Model):
    """Packed flux and inverse variance of many spectra, concatenated (float32)."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="spectrum_shards")
    path = models.CharField(max_length=255, unique=True, help_text="Stem relative to the pack root (.flux/.ivar).")
    n_spectra = models.PositiveIntegerField()
    n_pixels = models.BigIntegerField()
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    def __str__(self) -> str:
        return f"{self.path} ({self.n_spectra} spectra)"


class QuasarSpectrum(SkyPosition):
    """One quasar sightline, on the SDSS log-lambda grid (step 1e-4 in log10 Angstrom)."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="spectra")
    plate = models.PositiveIntegerField()
    mjd = models.PositiveIntegerField()
    fiber = models.PositiveIntegerField()
    thing_id = models.BigIntegerField(null=True, blank=True, help_text="SDSS THING_ID if known.")
    object_class = models.CharField(max_length=16, blank=True, help_text="Pipeline CLASS.")
    z_qso = models.FloatField(help_text="Quasar redshift.")
    z_qso_err = models.FloatField(null=True, blank=True)
    snr = models.FloatField(help_text="Median S/N per pixel at rest-frame 1420-1480 A (all good pixels if uncovered).")
    loglam_start_index = models.IntegerField(help_text="First pixel's log10(lambda/A) = index * 1e-4 (the SDSS grid).")
    n_pixels = models.PositiveIntegerField()
    resampled = models.BooleanField(
        default=False, help_text="True if the file was not on the SDSS grid and was resampled."
    )
    fits_file = models.FileField(max_length=255, help_text="The original spec-lite FITS file.")
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the FITS file's bytes.")
    dla_free = models.BooleanField(
        default=False,
        help_text="Marked free of DLAs by a user: the DLA finder trains on it with Voigt-profile DLAs inserted.",
    )
    shard = models.ForeignKey(SpectrumShard, on_delete=models.CASCADE, related_name="+")
    shard_offset = models.BigIntegerField(help_text="Index of the first pixel in the shard.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        verbose_name_plural = "quasar spectra"
        ordering = ["plate", "mjd", "fiber"]
        constraints = [
            *SkyPosition.Meta.constraints,
            models.UniqueConstraint(fields=["plate", "mjd", "fiber"], name="spectrum_plate_mjd_fiber"),
            models.CheckConstraint(condition=Q(z_qso__gte=0) & Q(z_qso__lt=8), name="spectrum_z_qso_range"),
            models.CheckConstraint(condition=Q(fiber__gte=1), name="spectrum_fiber_positive"),
            models.CheckConstraint(condition=Q(n_pixels__gt=0), name="spectrum_n_pixels_positive"),
        ]
        indexes = [models.Index(fields=["z_qso"], name="spectrum_z_qso")]

    def __str__(self) -> str:
        return f"spec-{self.plate:04d}-{self.mjd:05d}-{self.fiber:04d}"

    @property
    def sdss_name(self) -> str:
        return f"{self.plate}-{self.mjd}-{self.fiber}"


class SimulationRun(models.Model):
    """One zoom-in simulated galaxy followed through time (e.g. VELA07)."""

    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="simulation_runs")
    name = models.CharField(max_length=64)
    code = models.CharField(max_length=64, blank=True, help_text="Simulation code, e.g. ART.")
    description = models.TextField(blank=True)
    properties = models.JSONField(default=dict, blank=True, help_text="Run-level metadata.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["survey", "name"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "name"], name="simrun_unique_per_survey"),
        ]

    def __str__(self) -> str:
        return self.name


class Snapshot(models.Model):
    """The simulated galaxy at one time step, with its physical state."""

    class CompactionPhase(models.TextChoices):
        PRE = "pre", "pre-compaction"
        BLUE_NUGGET = "blue_nugget", "blue nugget"
        POST = "post", "post-compaction"

    run = models.ForeignKey(SimulationRun, on_delete=models.CASCADE, related_name="snapshots")
    scale_factor = models.FloatField(help_text="Expansion factor a = 1/(1+z).")
    redshift = models.FloatField()
    stellar_mass_msun = models.FloatField(help_text="Stellar mass, solar masses.")
    gas_mass_msun = models.FloatField(help_text="Cold gas mass, solar masses.")
    halo_mass_msun = models.FloatField(null=True, blank=True, help_text="Virial mass, solar masses.")
    sfr_msun_per_yr = models.FloatField(help_text="Star formation rate, solar masses per year.")
    gas_inflow_rate_msun_per_yr = models.FloatField()
    gas_outflow_rate_msun_per_yr = models.FloatField()
    half_mass_radius_kpc = models.FloatField(null=True, blank=True)
    compaction_phase = models.CharField(max_length=16, choices=CompactionPhase.choices)
    counter_rotating_stream = models.BooleanField(default=False)

    class Meta:
        ordering = ["run", "scale_factor"]
        constraints = [
            models.UniqueConstraint(fields=["run", "scale_factor"], name="snapshot_unique_per_run"),
            models.CheckConstraint(
                condition=Q(scale_factor__gt=0) & Q(scale_factor__lte=1),
                name="snapshot_scale_factor_range",
            ),
            models.CheckConstraint(condition=Q(redshift__gte=0), name="snapshot_redshift_positive"),
            models.CheckConstraint(
                condition=Q(compaction_phase__in=["pre", "blue_nugget", "post"]), name="snapshot_phase_valid"
            ),
            models.CheckConstraint(
                condition=Q(stellar_mass_msun__gte=0)
                & Q(gas_mass_msun__gte=0)
                & Q(sfr_msun_per_yr__gte=0)
                & Q(gas_inflow_rate_msun_per_yr__gte=0)
                & Q(gas_outflow_rate_msun_per_yr__gte=0),
                name="snapshot_physical_quantities_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.run.name} a={self.scale_factor:.3f}"


class MergerEvent(models.Model):
    """A merger in a run's history."""

    class Kind(models.TextChoices):
        MAJOR = "major", "major (mass ratio >= 1:4)"
        MINOR = "minor", "minor"

    run = models.ForeignKey(SimulationRun, on_delete=models.CASCADE, related_name="mergers")
    scale_factor = models.FloatField(help_text="Expansion factor at coalescence.")
    mass_ratio = models.FloatField(help_text="Secondary / primary stellar mass, (0, 1].")
    kind = models.CharField(max_length=8, choices=Kind.choices)

    class Meta:
        ordering = ["run", "scale_factor"]
        constraints = [
            models.CheckConstraint(
                condition=Q(mass_ratio__gt=0) & Q(mass_ratio__lte=1), name="merger_mass_ratio_range"
            ),
            models.CheckConstraint(condition=Q(kind__in=["major", "minor"]), name="merger_kind_valid"),
            models.CheckConstraint(
                condition=Q(scale_factor__gt=0) & Q(scale_factor__lte=1),
                name="merger_scale_factor_range",
            ),
            models.UniqueConstraint(fields=["run", "scale_factor", "mass_ratio"], name="merger_unique_per_run"),
        ]

    def __str__(self) -> str:
        return f"{self.run.name} {self.kind} merger a={self.scale_factor:.3f}"


class MockImage(PackedImage):
    """A mock observation of a snapshot from one camera orientation."""

    snapshot = models.ForeignKey(Snapshot, on_delete=models.CASCADE, related_name="mock_images")
    camera = models.PositiveSmallIntegerField(help_text="Camera (viewing direction) number.")
    instrument = models.CharField(max_length=64, help_text="e.g. HST/WFC3-IR.")
    filter_name = models.CharField(max_length=32, help_text="e.g. F160W.")
    signal_to_noise = models.FloatField(
        null=True, blank=True, help_text="S/N setting of the mock; empty for noiseless images."
    )

    class Meta:
        ordering = ["snapshot", "camera"]
        constraints = [
            *PackedImage.Meta.constraints,
            models.UniqueConstraint(
                "snapshot",
                "camera",
                "filter_name",
                models.functions.Coalesce("signal_to_noise", models.Value(-1.0)),
                name="mockimage_unique_view",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.snapshot} cam{self.camera:02d} {self.filter_name}"


class ModelTask(models.TextChoices):
    MORPHOLOGY = "morphology", "morphology (vote fractions)"
    EMULATOR = "emulator", "GALFIT emulator"
    DLA = "dla", "DLA finder"
    ENVIRONMENT = "environment", "galaxy environment"
    PHENOMENA = "phenomena", "simulation phenomena (compaction, mergers) from images"


class DatasetExport(models.Model):
    """A frozen, packed snapshot of the labels a model was trained on (training never queries
    the database row by row)."""

    task = models.CharField(max_length=16, choices=ModelTask.choices)
    variant = models.CharField(max_length=50, blank=True, help_text="e.g. the scheme for morphology.")
    path = models.CharField(max_length=255, unique=True, help_text="Packed file, relative to the pack root.")
    n_train = models.PositiveIntegerField()
    n_test = models.PositiveIntegerField()
    checksum = models.CharField(max_length=64, help_text="SHA-256 of the packed file.")
    description = models.JSONField(default=dict, blank=True, help_text="What was selected and how it was split.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.task}/{self.variant} dataset {self.pk} ({self.n_train}+{self.n_test})"


class ModelVersion(models.Model):
    """A trained model: its metrics on the held-out split, its config, data and weights.

    Exactly one version per (task, variant) is promoted (a partial unique index); the promoted
    version is the one predictions come from by default.
    """

    class Status(models.TextChoices):
        TRAINING = "training", "training"
        READY = "ready", "ready"
        FAILED = "failed", "failed"
        ARCHIVED = "archived", "archived"

    task = models.CharField(max_length=16, choices=ModelTask.choices)
    variant = models.CharField(max_length=50, blank=True, help_text="e.g. the scheme for morphology.")
    number = models.PositiveIntegerField(help_text="Version number within (task, variant).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRAINING)
    is_promoted = models.BooleanField(default=False)
    primary_metric = models.CharField(max_length=50, help_text="Name of the metric that decides promotion.")
    primary_value = models.FloatField(null=True, blank=True)
    higher_is_better = models.BooleanField(default=False)
    metrics = models.JSONField(default=dict, blank=True, help_text="Held-out metrics.")
    config = models.JSONField(default=dict, blank=True, help_text="Training configuration.")
    dataset = models.ForeignKey(DatasetExport, null=True, blank=True, on_delete=models.PROTECT, related_name="versions")
    band = models.CharField(max_length=32, blank=True, help_text="Band the model was trained for.")
    pixel_scale_arcsec = models.FloatField(null=True, blank=True)
    psf_fwhm_arcsec = models.FloatField(null=True, blank=True)
    input_ranges = models.JSONField(
        default=dict, blank=True, help_text="Training range of input statistics (OOD check)."
    )
    weights = models.FileField(max_length=255, blank=True, help_text="Checkpoint (torch.save of a dict).")
    evaluation = models.FileField(
        max_length=255,
        blank=True,
        help_text="Held-out arrays (npz): human counts and fractions, the model's and the baselines' predictions.",
    )
    device = models.CharField(max_length=32, blank=True, help_text="Where it was trained (cpu, cuda).")
    predictions_complete = models.BooleanField(default=False, help_text="Every prediction chunk is in.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["task", "variant", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["task", "variant", "number"], name="modelversion_unique_number"),
            models.UniqueConstraint(
                fields=["task", "variant"], condition=Q(is_promoted=True), name="modelversion_one_promoted"
            ),
            models.CheckConstraint(
                condition=Q(is_promoted=False) | Q(status="ready"), name="modelversion_promoted_is_ready"
            ),
            models.CheckConstraint(
                condition=Q(task__in=["morphology", "emulator", "dla", "environment", "phenomena"]),
                name="modelversion_task_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task}/{self.variant or '-'} v{self.number}"


class Prediction(models.Model):
    """One model version's output for one subject (a galaxy, a spectrum or a mock image)."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    galaxy = models.ForeignKey(Galaxy, null=True, blank=True, on_delete=models.CASCADE, related_name="predictions")
    spectrum = models.ForeignKey(
        QuasarSpectrum, null=True, blank=True, on_delete=models.CASCADE, related_name="predictions"
    )
    mock_image = models.ForeignKey(
        MockImage, null=True, blank=True, on_delete=models.CASCADE, related_name="predictions"
    )
    values = models.JSONField(help_text="The model's outputs, named.")
    uncertainty = models.FloatField(help_text="Predictive uncertainty (task-specific scale).")
    out_of_distribution = models.BooleanField(default=False, help_text="Input statistics outside the training range.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(galaxy__isnull=False, spectrum__isnull=True, mock_image__isnull=True)
                    | Q(galaxy__isnull=True, spectrum__isnull=False, mock_image__isnull=True)
                    | Q(galaxy__isnull=True, spectrum__isnull=True, mock_image__isnull=False)
                ),
                name="prediction_exactly_one_subject",
            ),
            models.UniqueConstraint(
                fields=["model_version", "galaxy"], condition=Q(galaxy__isnull=False), name="prediction_unique_galaxy"
            ),
            models.UniqueConstraint(
                fields=["model_version", "spectrum"],
                condition=Q(spectrum__isnull=False),
                name="prediction_unique_spectrum",
            ),
            models.UniqueConstraint(
                fields=["model_version", "mock_image"],
                condition=Q(mock_image__isnull=False),
                name="prediction_unique_mock_image",
            ),
            models.CheckConstraint(condition=Q(uncertainty__gte=0), name="prediction_uncertainty_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.model_version} on {self.galaxy_id or self.spectrum_id or self.mock_image_id}"


class DLARelease(models.Model):
    """A named, frozen release of the DLA catalog (e.g. DR1): the absorbers a model version
    found, copied at publication so that later retraining never changes them."""

    name = models.CharField(
        max_length=32,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z][A-Za-z0-9_.]*$", "letters, digits, _ and . (e.g. DR1)")],
        help_text="Release name, e.g. DR1.",
    )
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="dla_releases")
    description = models.TextField(blank=True)
    min_confidence = models.FloatField(default=0.0, help_text="Absorbers below this confidence were left out.")
    n_sightlines = models.PositiveIntegerField(help_text="Sightlines scanned.")
    n_absorbers = models.PositiveIntegerField()
    published_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        ordering = ["-published_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(min_confidence__gte=0) & Q(min_confidence__lte=1), name="dla_release_confidence_range"
            )
        ]

    def __str__(self) -> str:
        return self.name


class DLAAbsorber(SkyPosition):
    """One absorber of a published DLA release, with its sightline's facts copied in."""

    class Kind(models.TextChoices):
        DLA = "dla", "DLA (log N >= 20.3)"
        SUBDLA = "subdla", "sub-DLA"

    # The public columns, in catalog order: the sightline's facts, then the measurement.
    SIGHTLINE_FIELDS = ("plate", "mjd", "fiber", "thing_id", "ra", "dec", "z_qso", "snr")
    MEASURED_FIELDS = ("z_abs", "log_nhi", "log_nhi_err", "confidence")

    release = models.ForeignKey(DLARelease, on_delete=models.CASCADE, related_name="absorbers")
    identifier = models.CharField(
        max_length=64, unique=True, help_text="Stable public id: RELEASE-PLATE-MJD-FIBER-N (N-th absorber by z)."
    )
    spectrum = models.ForeignKey(
        QuasarSpectrum, null=True, blank=True, on_delete=models.SET_NULL, related_name="dla_absorbers"
    )
    plate = models.PositiveIntegerField()
    mjd = models.PositiveIntegerField()
    fiber = models.PositiveIntegerField()
    thing_id = models.BigIntegerField(null=True, blank=True)
    z_qso = models.FloatField(help_text="Quasar redshift.")
    snr = models.FloatField(help_text="Sightline's median S/N per pixel (rest 1420-1480 A).")
    z_abs = models.FloatField(help_text="Absorber redshift (Lyman alpha).")
    log_nhi = models.FloatField(help_text="log10 N(HI) / cm^-2.")
    log_nhi_err = models.FloatField(help_text="1-sigma uncertainty of log N(HI), dex.")
    confidence = models.FloatField(help_text="Share of the expected window votes, in [0, 1].")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    lyman_beta = models.BooleanField(default=False, help_text="Likely another absorber's Lyman-beta line.")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["id"]
        constraints = [
            *SkyPosition.Meta.constraints,
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1), name="dla_absorber_confidence_range"
            ),
            models.CheckConstraint(condition=Q(log_nhi_err__gte=0), name="dla_absorber_log_nhi_err_positive"),
            models.CheckConstraint(condition=Q(z_abs__gte=0) & Q(z_abs__lt=8), name="dla_absorber_z_range"),
        ]
        indexes = [
            models.Index(fields=["release", "healpix"], name="dla_release_healpix"),
            models.Index(fields=["release", "z_abs"], name="dla_release_z_abs"),
            models.Index(fields=["release", "log_nhi"], name="dla_release_log_nhi"),
            models.Index(fields=["release", "plate", "mjd", "fiber"], name="dla_release_sightline"),
        ]

    def __str__(self) -> str:
        return self.identifier
