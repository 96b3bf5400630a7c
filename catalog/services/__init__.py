"""Writes of the catalog app: one module per kind of data (surveys, galaxies, spectra, simulations)."""
