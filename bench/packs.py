"""Bulk reads from the packed stores, as training and prediction do them.

    python bench/packs.py [--reads 20000] [--batch 512]

Reads cutouts (ids -> arrays, database lookup included) and spectra (ids -> flux/ivar) in
random batches from the surveys bench/ingest.py made, and prints cutouts/s and
sightlines/s. Targets: >= 5,000 cutouts/s and >= 500 sightlines/s. For contrast it also
times opening the FITS files one by one. With the 1,000,000-row bench catalog in place it
also times cone searches (HEALPix ranges + exact unit-vector cut) at three radii.
"""

import argparse
import json
import time

import numpy as np
from _setup import commit, setup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=512)
    args = parser.parse_args()
    setup()

    from astropy.io import fits
    from django.db import connection

    from catalog.models import Band, Cutout, QuasarSpectrum
    from catalog.selectors import cutout_arrays, spectra_arrays

    rng = np.random.default_rng(0)
    band = Band.objects.filter(survey__name="bench-cutouts").first()
    spectra_ids = np.array(QuasarSpectrum.objects.filter(survey__name="bench-spectra").values_list("pk", flat=True))
    if band is None or spectra_ids.size == 0:
        raise SystemExit("run bench/ingest.py first: it makes the bench-cutouts and bench-spectra surveys")
    galaxy_ids = np.array(Cutout.objects.filter(band=band).values_list("galaxy_id", flat=True))
    results = {
        "commit": commit(),
        "database": connection.vendor,
        "cutouts_in_store": int(galaxy_ids.size),
        "spectra_in_store": int(spectra_ids.size),
    }

    cutout_arrays(galaxy_ids=galaxy_ids[: args.batch].tolist(), band=band)  # warm: page cache, memory maps
    n, start = 0, time.perf_counter()
    while n < args.reads:
        ids = rng.choice(galaxy_ids, size=min(args.batch, galaxy_ids.size), replace=False).tolist()
        _, images = cutout_arrays(galaxy_ids=ids, band=band)
        n += images.shape[0]
    results["cutouts_per_s"] = round(n / (time.perf_counter() - start))

    spectra_arrays(spectrum_ids=spectra_ids[:64].tolist())
    n, start = 0, time.perf_counter()
    while n < args.reads // 4:
        ids = rng.choice(spectra_ids, size=min(args.batch, spectra_ids.size), replace=False).tolist()
        n += len(spectra_arrays(spectrum_ids=ids))
    results["sightlines_per_s"] = round(n / (time.perf_counter() - start))

    files = [c.fits_file.path for c in Cutout.objects.filter(band=band)[:500]]
    start = time.perf_counter()
    for path in files:
        fits.getdata(path)
    results["fits_one_by_one_per_s"] = round(len(files) / (time.perf_counter() - start))
    from catalog.models import Galaxy, Survey
    from catalog.selectors import galaxy_cone_search

    catalog = Survey.objects.filter(name="bench-catalog").first()
    if catalog is not None:
        centre = Galaxy.objects.filter(survey=catalog).values_list("ra", "dec").first()
        cones = {}
        for radius_arcmin in (1.0, 6.0, 30.0):
            start = time.perf_counter()
            for _ in range(5):
                found = galaxy_cone_search(
                    ra=centre[0], dec=centre[1], radius_deg=radius_arcmin / 60, survey=catalog
                ).count()
            cones[f"{radius_arcmin:g}arcmin"] = {
                "galaxies": found,
                "ms": round((time.perf_counter() - start) / 5 * 1000, 1),
            }
        results["cone_search_in_1M"] = cones
    results["targets_met"] = {
        "cutouts_per_s": results["cutouts_per_s"] >= 5000,
        "sightlines_per_s": results["sightlines_per_s"] >= 500,
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
