"""export_votes and export_fractions: CSV, FITS and VOTable that astropy reads back."""

import numpy as np
import pytest
from astropy.table import Table
from django.core.management import CommandError, call_command

from catalog.exports import Column, stream_table
from labeling.models import AnswerCount, Vote

pytestmark = pytest.mark.django_db


@pytest.fixture
def voted(candels, mock_galaxies):
    call_command(
        "simulate_votes",
        project="g-candels",
        truth=str(mock_galaxies / "truth.csv"),
        classifiers=10,
        per_galaxy=4,
        verbosity=0,
    )


@pytest.mark.parametrize(("fmt", "name"), [("csv", "v.csv"), ("fits", "v.fits"), ("votable", "v.vot")])
def test_export_votes_every_format(voted, tmp_path, fmt, name):
    call_command("export_votes", scheme="candels", format=fmt, output=str(tmp_path / name), verbosity=0)
    table = Table.read(tmp_path / name, format={"csv": "ascii.csv", "fits": "fits", "votable": "votable"}[fmt])
    assert len(table) == Vote.objects.count() == 160
    vote = Vote.objects.order_by("pk").first()
    row = table[table["vote_id"] == vote.pk][0]
    chosen = {f"{a.question.key}__{a.key}" for a in vote.answers.all()}
    flags = {c for c in table.colnames if "__" in c and bool(row[c]) and str(row[c]) not in ("False", "F")}
    assert flags == chosen


@pytest.mark.parametrize(("fmt", "name"), [("csv", "f.csv"), ("fits", "f.fits"), ("votable", "f.vot")])
def test_export_fractions_every_format(voted, tmp_path, fmt, name):
    call_command("export_fractions", scheme="candels", survey="g", format=fmt, output=str(tmp_path / name), verbosity=0)
    table = Table.read(tmp_path / name, format={"csv": "ascii.csv", "fits": "fits", "votable": "votable"}[fmt])
    assert len(table) == 40 and np.all(table["n_votes"] == 4)
    count = AnswerCount.objects.filter(answer__key="spheroid").select_related("galaxy").first()
    row = table[table["galaxy_id"] == count.galaxy_id][0]
    assert row["main_class__spheroid_count"] == count.count
    assert row["main_class__spheroid_fraction"] == pytest.approx(count.fraction)
    if fmt != "csv":
        assert str(table["ra"].unit) == "deg"


def test_export_errors():
    with pytest.raises(CommandError, match="no scheme 'nope'"):
        call_command("export_votes", scheme="nope", verbosity=0)
    with pytest.raises(CommandError, match="no survey"):
        call_command("export_fractions", scheme="candels", survey="nope", verbosity=0)


def test_streaming_writers_hold_one_chunk_at_a_time():
    """The writers pull chunks lazily: after the first block only the first chunk was read."""
    pulled = []

    def chunks():
        for i in range(1000):
            pulled.append(i)
            yield [(i, float(i), f"s{i}")]

    columns = [Column("i", "int"), Column("x", "float", unit="deg"), Column("s", "str", width=8)]
    for fmt in ("csv", "fits", "votable"):
        pulled.clear()
        stream = stream_table(fmt, columns, chunks(), n_rows=1000)
        next(stream)
        next(stream)
        assert len(pulled) <= 1, fmt
        list(stream)
        assert len(pulled) == 1000
