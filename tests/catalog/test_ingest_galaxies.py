"""ingest_galaxies: every catalog format, column mapping, cutouts, bad input and re-runs."""

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from django.core.management import CommandError, call_command

from catalog.models import Band, Cutout, Galaxy, ImageShard, Survey
from catalog.selectors import cutout_arrays
from tests.catalog.factories import truncate, write_catalog, write_image
from tests.conftest import files_under

pytestmark = pytest.mark.django_db


def ingest(*args, **kwargs):
    call_command("ingest_galaxies", *map(str, args), verbosity=0, **kwargs)


def rows(n=3, **override):
    base = [
        {"id": f"G{i}", "ra": 53.0 + i * 0.001, "dec": -27.8, "mag": 22.0 + i * 0.1, "z_phot": 1.0 + i * 0.1}
        for i in range(n)
    ]
    for k, v in override.items():
        base[0][k] = v
    return base


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("cat.csv", "ascii.csv"), ("cat.fits", "fits"), ("cat.vot", "votable"), ("cat.ecsv", "ascii.ecsv")],
)
def test_every_catalog_format(tmp_path, name, fmt):
    path = write_catalog(tmp_path / name, rows(), fmt)
    ingest(path, survey="s1")
    assert Galaxy.objects.filter(survey__name="s1").count() == 3
    g = Galaxy.objects.get(source_id="G2")
    assert g.ra == pytest.approx(53.002) and g.mag == pytest.approx(22.2) and g.z_phot == pytest.approx(1.2)
    assert Survey.objects.get(name="s1").kind == Survey.Kind.IMAGING


def test_column_mapping_units_sexagesimal_and_sentinels(tmp_path):
    table = Table(
        {
            "OBJNAME": ["a", "b"],
            "RA_HMS": ["03:32:28.1", "03:32:30.0"],
            "DEC_DMS": ["-27:48:30", "-27:48:00"],
            "H_MAG": [23.1, -99.0],
            "ZBEST": [1.5, -1.0],
            "MSTAR": [1e10, 3e9],
        }
    )
    table["MSTAR"].unit = "solMass"
    path = tmp_path / "c.ecsv"
    table.write(path)
    ingest(
        path,
        survey="s2",
        map=["source_id=OBJNAME", "ra=RA_HMS", "dec=DEC_DMS", "mag=H_MAG", "z_phot=ZBEST", "log_stellar_mass=MSTAR"],
    )
    a, b = Galaxy.objects.order_by("source_id")
    assert a.ra == pytest.approx(53.117083, abs=1e-5) and a.dec == pytest.approx(-27.808333, abs=1e-5)
    assert a.log_stellar_mass == pytest.approx(10.0)
    assert b.mag is None and b.z_phot is None  # sentinels read as missing


def test_ra_in_radians_is_converted(tmp_path):
    table = Table(rows=rows(2))
    table["ra"] = np.radians(table["ra"])
    table["ra"].unit = "rad"
    path = tmp_path / "c.ecsv"
    table.write(path)
    ingest(path, survey="s3")
    assert Galaxy.objects.get(source_id="G1").ra == pytest.approx(53.001)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"ra": float("nan")}, r"row 1 \(id 'G0'\): ra missing or NaN"),
        ({"ra": 361.0}, r"row 1 \(id 'G0'\): ra 361.0 outside \[0, 360\)"),
        ({"dec": -95.0}, r"row 1 \(id 'G0'\): dec -95.0 outside \[-90, 90\]"),
        ({"id": "G1"}, r"rows 1 and 2: duplicate source id 'G1'|rows 2 and 1"),
        ({"mag": 55.0}, r"row 1 \(id 'G0'\): mag 55.0 outside"),
        ({"z_phot": 20.0}, r"row 1 \(id 'G0'\): z_phot 20.0 outside"),
    ],
)
def test_bad_rows_name_file_and_row_and_write_nothing(tmp_path, override, message):
    path = write_catalog(tmp_path / "bad.csv", rows(**override), "ascii.csv")
    with pytest.raises(CommandError, match=message) as info:
        ingest(path, survey="bad")
    assert "bad.csv" in str(info.value)
    assert not Survey.objects.exists() and not Galaxy.objects.exists()


def test_wrong_units_and_missing_columns(tmp_path):
    table = Table(rows=rows(2))
    table["mag"].unit = "Jy"
    table.write(tmp_path / "u.ecsv")
    with pytest.raises(CommandError, match="unit Jy.*wrong units"):
        ingest(tmp_path / "u.ecsv", survey="u")
    write_catalog(tmp_path / "n.csv", [{"name": "x", "ra": 1.0}], "ascii.csv")
    with pytest.raises(CommandError, match="no column for source_id.*--map source_id=COLUMN"):
        ingest(tmp_path / "n.csv", survey="u")
    with pytest.raises(CommandError, match="unreadable table|file not found"):
        ingest(tmp_path / "nothing.csv", survey="u")
    (tmp_path / "garbage.fits").write_bytes(b"\x00" * 100)
    with pytest.raises(CommandError, match="garbage.fits: unreadable table"):
        ingest(tmp_path / "garbage.fits", survey="u")
    assert not Galaxy.objects.exists()


def test_rerun_changes_nothing_and_changed_rows_update(tmp_path):
    path = write_catalog(tmp_path / "c.csv", rows(3), "ascii.csv")
    ingest(path, survey="s")
    before = list(Galaxy.objects.order_by("pk").values())
    ingest(path, survey="s")
    assert list(Galaxy.objects.order_by("pk").values()) == before
    path = write_catalog(tmp_path / "c.csv", rows(4, mag=19.0), "ascii.csv")
    ingest(path, survey="s")
    assert Galaxy.objects.count() == 4
    assert Galaxy.objects.get(source_id="G0").mag == 19.0
    assert (
        Galaxy.objects.get(source_id="G1").created_at == next(r for r in before if r["source_id"] == "G1")["created_at"]
    )


def test_keep_columns_go_to_properties(tmp_path):
    data = rows(2)
    for r in data:
        r["flag"] = 3
    path = write_catalog(tmp_path / "c.csv", data, "ascii.csv")
    ingest(path, survey="s", keep_columns="flag")
    assert Galaxy.objects.get(source_id="G0").properties == {"flag": 3}


def test_mock_catalog_with_cutouts_is_packed_and_rerun_is_unchanged(mock_galaxies, isolated_files, settings):
    ingest(mock_galaxies / "catalog.csv", survey="mock", cutouts=mock_galaxies / "cutouts", band="F160W")
    assert Galaxy.objects.count() == 40 and Cutout.objects.count() == 40
    band = Band.objects.get(survey__name="mock", name="F160W")
    assert (band.pixel_scale_arcsec, band.psf_fwhm_arcsec, band.zero_point_ab) == (pytest.approx(0.06), 0.18, 25.95)
    ids = list(Galaxy.objects.order_by("?").values_list("pk", flat=True)[:10])
    found, images = cutout_arrays(galaxy_ids=ids, band=band)
    assert list(found) == ids
    for gid, image in zip(found, images, strict=True):
        galaxy = Galaxy.objects.get(pk=gid)
        np.testing.assert_array_equal(image, fits.getdata(mock_galaxies / "cutouts" / f"{galaxy.source_id}.fits"))
    files = files_under(isolated_files)
    ingest(mock_galaxies / "catalog.csv", survey="mock", cutouts=mock_galaxies / "cutouts")
    assert files_under(isolated_files) == files and Cutout.objects.count() == 40
    assert ImageShard.objects.count() == 1


def test_one_bad_cutout_writes_nothing_at_all(mock_galaxies, tmp_path, isolated_files):
    cutouts = tmp_path / "cutouts"
    shutil.copytree(mock_galaxies / "cutouts", cutouts)
    truncate(cutouts / "MOCK-00017.fits")
    with pytest.raises(CommandError, match=r"MOCK-00017.fits: truncated"):
        ingest(mock_galaxies / "catalog.csv", survey="mock", cutouts=cutouts, band="F160W")
    assert not Galaxy.objects.exists() and not Cutout.objects.exists() and not Survey.objects.exists()
    assert files_under(isolated_files / "media") == [] and files_under(isolated_files / "packs") == []


def test_cutout_problems(tmp_path):
    path = write_catalog(tmp_path / "c.csv", rows(2), "ascii.csv")
    write_image(tmp_path / "cut" / "G0.fits")
    write_image(tmp_path / "cut" / "NOPE.fits")
    with pytest.raises(CommandError, match="NOPE.fits: no galaxy in the catalog has source id 'NOPE'"):
        ingest(path, survey="s", cutouts=tmp_path / "cut")
    (tmp_path / "cut" / "NOPE.fits").unlink()
    write_image(tmp_path / "cut" / "G1.fits", PIXSCALE=0.03)
    with pytest.raises(CommandError, match="pixel scale 0.03 differs from band s/F160W's 0.06"):
        ingest(path, survey="s", cutouts=tmp_path / "cut")
    write_image(tmp_path / "cut" / "G1.fits", PSF_FWHM=None)
    write_image(tmp_path / "cut" / "G0.fits", PSF_FWHM=None)
    with pytest.raises(CommandError, match="PSF FWHM|psf_fwhm is unknown"):
        ingest(path, survey="s", cutouts=tmp_path / "cut")
    assert not Cutout.objects.exists()
    ingest(path, survey="s", cutouts=tmp_path / "cut", band="F160W", psf_fwhm=0.2)
    assert Cutout.objects.count() == 2 and Band.objects.get().psf_fwhm_arcsec == 0.2


def test_multiband_cutouts_by_file_name(tmp_path):
    path = write_catalog(tmp_path / "c.csv", rows(1), "ascii.csv")
    write_image(tmp_path / "cut" / "G0_F160W.fits")
    write_image(tmp_path / "cut" / "G0_F125W.fits", FILTER="F125W", PSF_FWHM=0.16)
    ingest(path, survey="s", cutouts=tmp_path / "cut")
    assert sorted(Cutout.objects.values_list("band__name", flat=True)) == ["F125W", "F160W"]


def test_survey_of_another_kind_is_refused(tmp_path):
    Survey.objects.create(name="sdss", kind=Survey.Kind.SPECTROSCOPIC)
    with pytest.raises(CommandError, match="survey 'sdss' is a spectroscopic survey, not imaging"):
        ingest(write_catalog(tmp_path / "c.csv", rows(1), "ascii.csv"), survey="sdss")
