from rest_framework import serializers

from catalog.models import Band, Galaxy, QuasarSpectrum, Survey


class BandSerializer(serializers.ModelSerializer):
    class Meta:
        model = Band
        fields = ["name", "instrument", "pixel_scale_arcsec", "psf_fwhm_arcsec", "zero_point_ab"]


class SurveySerializer(serializers.ModelSerializer):
    bands = BandSerializer(many=True, read_only=True)

    class Meta:
        model = Survey
        fields = ["name", "title", "kind", "field_name", "instrument", "detection_band", "bands", "created_at"]


class GalaxySerializer(serializers.ModelSerializer):
    survey = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = Galaxy
        fields = [
            "id",
            "survey",
            "source_id",
            "ra",
            "dec",
            "mag",
            "mag_err",
            "z_spec",
            "z_spec_err",
            "z_phot",
            "z_phot_err",
            "log_stellar_mass",
        ]


class QuasarSpectrumSerializer(serializers.ModelSerializer):
    survey = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = QuasarSpectrum
        fields = ["id", "survey", "plate", "mjd", "fiber", "thing_id", "ra", "dec", "z_qso", "snr", "n_pixels"]
