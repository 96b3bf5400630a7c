"""Packed shards: streaming writes, atomic publication, bulk reads equal to what was written."""

import numpy as np
import pytest

from catalog import packstore


def test_image_shard_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(10, 16, 12)).astype(np.float32)
    writer = packstore.ImageShardWriter(tmp_path, "cutouts/x/a.f32", 16, 12)
    rows = [writer.append(img) for img in images]
    assert rows == list(range(10))
    assert not (tmp_path / "cutouts/x/a.f32").exists(), "an unfinished shard must not be visible"
    writer.close()
    writer.close()  # idempotent
    got = packstore.read_images(tmp_path, "cutouts/x/a.f32", (10, 16, 12), [7, 2, 2, 9])
    np.testing.assert_array_equal(got, images[[7, 2, 2, 9]])


def test_image_shard_refuses_wrong_shape_and_discards(tmp_path):
    writer = packstore.ImageShardWriter(tmp_path, "s.f32", 8, 8)
    writer.append(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="shape"):
        writer.append(np.zeros((8, 9)))
    writer.close()
    writer.discard()
    assert list(tmp_path.rglob("*.f32*")) == []


def test_spectrum_shard_round_trip_and_grid(tmp_path):
    writer = packstore.SpectrumShardWriter(tmp_path, "spectra/s")
    a = (np.arange(5, dtype=np.float32), np.ones(5, dtype=np.float32))
    b = (np.arange(3, dtype=np.float32) + 10, np.full(3, 2.0, dtype=np.float32))
    offsets = [writer.append(*a), writer.append(*b)]
    writer.close()
    assert offsets == [0, 5]
    (fa, ia), (fb, ib) = packstore.read_spectra(tmp_path, "spectra/s", 8, offsets, [5, 3])
    np.testing.assert_array_equal(fa, a[0])
    np.testing.assert_array_equal(ib, b[1])
    flux, ivar = packstore.place_on_grid([(fa, ia), (fb, ib)], [100, 103], grid_start=101, grid_length=6)
    np.testing.assert_array_equal(flux[0], [1, 2, 3, 4, 0, 0])
    np.testing.assert_array_equal(flux[1], [0, 0, 10, 11, 12, 0])
    np.testing.assert_array_equal(ivar[1], [0, 0, 2, 2, 2, 0])
