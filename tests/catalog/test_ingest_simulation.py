"""ingest_simulation: run layout, metadata checks, images per snapshot and camera, re-runs."""

import json
import shutil

import numpy as np
import pytest
from astropy.io import fits
from django.core.management import CommandError, call_command

from catalog.models import MergerEvent, MockImage, SimulationRun, Snapshot, Survey
from catalog.selectors import mock_image_pixels
from tests.conftest import files_under

pytestmark = pytest.mark.django_db


def ingest(path, **kwargs):
    call_command("ingest_simulation", str(path), verbosity=0, **kwargs)


def test_mock_run_is_ingested_whole(mock_simulation, isolated_files):
    run_dir = mock_simulation / "VMOCK01"
    ingest(run_dir, survey="vela")
    run = SimulationRun.objects.get(name="VMOCK01")
    assert run.survey.kind == Survey.Kind.SIMULATION
    assert run.snapshots.count() == 31
    assert MockImage.objects.filter(snapshot__run=run).count() == 31 * 3
    assert run.mergers.count() == len((run_dir / "mergers.csv").read_text().strip().splitlines()) - 1
    phases = list(run.snapshots.order_by("scale_factor").values_list("compaction_phase", flat=True))
    assert phases[0] == "pre" and phases[-1] == "post" and "blue_nugget" in phases
    image = MockImage.objects.filter(snapshot__run=run, camera=2).order_by("snapshot__scale_factor").last()
    assert image.signal_to_noise == 30 and image.filter_name == "F160W"
    np.testing.assert_array_equal(
        mock_image_pixels(image), fits.getdata(run_dir / "images" / image.fits_file.name.split("/")[-1])
    )
    files = files_under(isolated_files)
    ingest(run_dir, survey="vela")
    assert files_under(isolated_files) == files and MockImage.objects.count() == 93


def _copy_run(mock_simulation, tmp_path):
    run_dir = tmp_path / "VMOCK02"
    shutil.copytree(mock_simulation / "VMOCK02", run_dir)
    return run_dir


def _edit_csv(path, line_index, column, value):
    lines = path.read_text().splitlines()
    header = lines[0].split(",")
    cells = lines[line_index].split(",")
    cells[header.index(column)] = value
    lines[line_index] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: _edit_csv(d / "snapshots.csv", 3, "redshift", "9.0"),
            r"snapshots.csv row 3: redshift 9.0 inconsistent",
        ),
        (
            lambda d: _edit_csv(d / "snapshots.csv", 2, "compaction_phase", "sideways"),
            r"row 2: compaction_phase 'sideways' not one of",
        ),
        (
            lambda d: _edit_csv(d / "snapshots.csv", 1, "sfr_msun_per_yr", "-4"),
            r"row 1: sfr_msun_per_yr -4.0 must be a non-negative",
        ),
        (lambda d: _edit_csv(d / "mergers.csv", 1, "mass_ratio", "3.0"), r"mergers.csv row 1: mass_ratio 3.0 outside"),
        (lambda d: (d / "run.json").write_text("{not json"), r"run.json: not valid JSON"),
        (lambda d: (d / "run.json").write_text(json.dumps({"code": "x"})), r"run.json: needs a non-empty \"name\""),
        (lambda d: (d / "snapshots.csv").unlink(), r"missing snapshots.csv"),
        (
            lambda d: shutil.copy(
                next((d / "images").iterdir()), d / "images" / "VMOCK02_a0.999_cam00_F160W_snr30.fits"
            ),
            r"no snapshot at a = 0.999",
        ),
        (lambda d: (d / "images" / "badname.fits").write_bytes(b"x"), r"badname.fits: name does not follow"),
        (
            lambda d: (d / "images" / "VMOCK02_a0.300_cam01_F160W_snr30.fits").write_bytes(b"SIMPLE  =" + b" " * 3000),
            r"cam01_F160W_snr30.fits: unreadable FITS|no 2-D",
        ),
    ],
)
def test_bad_runs_write_nothing(mock_simulation, tmp_path, isolated_files, edit, message):
    run_dir = _copy_run(mock_simulation, tmp_path)
    if (run_dir / "mergers.csv").read_text().count("\n") < 2:
        (run_dir / "mergers.csv").write_text("scale_factor,mass_ratio,kind\n0.3,0.5,major\n")
    edit(run_dir)
    with pytest.raises(CommandError, match=message):
        ingest(run_dir)
    assert not SimulationRun.objects.exists() and not Snapshot.objects.exists() and not MergerEvent.objects.exists()
    assert files_under(isolated_files / "media") == [] and files_under(isolated_files / "packs") == []


def test_changed_metadata_updates_on_rerun(mock_simulation, tmp_path):
    run_dir = _copy_run(mock_simulation, tmp_path)
    ingest(run_dir)
    _edit_csv(run_dir / "snapshots.csv", 1, "stellar_mass_msun", "123456789.0")
    (run_dir / "mergers.csv").write_text("scale_factor,mass_ratio\n0.31,0.1\n0.4,0.5\n")
    ingest(run_dir)
    assert Snapshot.objects.get(scale_factor=0.2).stellar_mass_msun == 123456789.0
    assert sorted(MergerEvent.objects.values_list("kind", flat=True)) == ["major", "minor"]
