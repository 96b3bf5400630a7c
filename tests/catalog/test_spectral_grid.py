"""The SDSS grid: detection, flux-conserving resampling, S/N."""

import numpy as np

from catalog import spectral_grid


def test_on_grid_detection():
    loglam = (35800 + np.arange(100)) * 1e-4
    assert spectral_grid.is_on_grid(loglam.astype(np.float32))
    assert not spectral_grid.is_on_grid(loglam + 0.5e-4)
    assert not spectral_grid.is_on_grid(np.log10(np.linspace(3800, 4000, 100)))


def test_resampling_conserves_flux_and_propagates_noise():
    rng = np.random.default_rng(2)
    wave = np.linspace(4000.0, 4600.0, 2400)  # linear grid, 0.25 A pixels (finer than SDSS)
    flux = 5.0 + np.sin(wave / 40.0)
    sigma = 0.5
    ivar = np.full(wave.size, 1 / sigma**2)
    start, f, iv = spectral_grid.resample(np.log10(wave), flux, ivar)
    grid_wave = 10 ** spectral_grid.grid_loglam(start, f.size)
    inner = (grid_wave > 4010) & (grid_wave < 4590)
    np.testing.assert_allclose(f[inner], 5.0 + np.sin(grid_wave[inner] / 40.0), atol=0.02)
    # Output pixels (~0.95 A) average ~3.8 input pixels: the noise drops by ~sqrt(3.8).
    n_in = np.median(np.gradient(grid_wave[inner])) / 0.25
    np.testing.assert_allclose(np.median(1 / np.sqrt(iv[inner])), sigma / np.sqrt(n_in), rtol=0.05)
    # Noise realisations: the scatter of resampled noise matches the propagated error.
    noisy = flux + rng.normal(0, sigma, wave.size)
    _, fn, _ = spectral_grid.resample(np.log10(wave), noisy, ivar)
    np.testing.assert_allclose(np.std(fn[inner] - f[inner]), sigma / np.sqrt(n_in), rtol=0.15)


def test_masked_input_pixels_are_excluded():
    wave = np.linspace(4000.0, 4100.0, 400)
    flux = np.full(wave.size, 3.0)
    flux[100:140] = 1e6  # garbage under a mask
    ivar = np.ones(wave.size)
    ivar[100:140] = 0
    start, f, iv = spectral_grid.resample(np.log10(wave), flux, ivar)
    assert np.all(f[iv > 0] < 3.01)
    assert np.any(iv == 0)


def test_median_snr_uses_continuum_window():
    start = 35800
    n = 3000
    wave = 10 ** spectral_grid.grid_loglam(start, n)
    z = 2.0  # 1420-1480 A rest = 4260-4440 A observed
    flux = np.where((wave / 3 > 1420) & (wave / 3 < 1480), 10.0, 1.0)
    ivar = np.ones(n)
    assert spectral_grid.median_snr(start, flux, ivar, z) == 10.0
