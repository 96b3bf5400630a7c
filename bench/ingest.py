"""Ingest throughput through the management commands, validation on, default PostgreSQL settings.

    python bench/ingest.py [--rows 1000000] [--cutouts 3000] [--spectra 2000]

Prints rows/s for a catalog without cutouts (first ingest and an unchanged re-run),
cutouts/s and spectra/s. Targets on a 2-core machine: >= 20,000 rows/s, >= 300 cutouts/s,
>= 200 spectra/s. Data are made with the mock generators under var/bench (kept between runs).
"""

import argparse
import json
import time

from _setup import WORK, commit, setup


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--cutouts", type=int, default=3000)
    parser.add_argument("--spectra", type=int, default=2000)
    args = parser.parse_args()
    url = setup()

    from django.core.management import call_command
    from django.db import connection

    from catalog.models import Survey
    from catalog.services.surveys import survey_delete

    def fresh(name: str) -> None:
        survey = Survey.objects.filter(name=name).first()
        if survey:
            survey_delete(survey=survey)

    results = {"commit": commit(), "database": connection.vendor, "database_url": url.split("@")[-1]}

    catalog_dir = WORK / f"catalog-{args.rows}"
    if not (catalog_dir / "catalog.csv").exists():
        print(f"making a {args.rows:,}-row mock catalog over 10 x 10 degrees ...")
        call_command(
            "make_mock",
            "galaxies",
            str(catalog_dir),
            n=args.rows,
            seed=1,
            no_cutouts=True,
            field_width=10.0,
            verbosity=0,
        )
    fresh("bench-catalog")
    seconds = timed(
        lambda: call_command(
            "ingest_galaxies", str(catalog_dir / "catalog.csv"), survey="bench-catalog", band="F160W", verbosity=1
        )
    )
    results["catalog_rows"] = args.rows
    results["catalog_rows_per_s"] = round(args.rows / seconds)
    seconds = timed(
        lambda: call_command("ingest_galaxies", str(catalog_dir / "catalog.csv"), survey="bench-catalog", verbosity=0)
    )
    results["catalog_rerun_rows_per_s"] = round(args.rows / seconds)

    cutout_dir = WORK / f"cutouts-{args.cutouts}"
    if not (cutout_dir / "catalog.csv").exists():
        print(f"making {args.cutouts:,} mock galaxies with cutouts ...")
        call_command("make_mock", "galaxies", str(cutout_dir), n=args.cutouts, seed=2, verbosity=0)
    fresh("bench-cutouts")
    seconds = timed(
        lambda: call_command(
            "ingest_galaxies",
            str(cutout_dir / "catalog.csv"),
            survey="bench-cutouts",
            cutouts=str(cutout_dir / "cutouts"),
            band="F160W",
            verbosity=1,
        )
    )
    results["cutouts"] = args.cutouts
    results["cutouts_per_s"] = round(args.cutouts / seconds)

    spectra_dir = WORK / f"spectra-{args.spectra}"
    if not (spectra_dir / "sightlines_truth.csv").exists():
        print(f"making {args.spectra:,} mock sightlines ...")
        call_command("make_mock", "spectra", str(spectra_dir), n=args.spectra, seed=3, verbosity=0)
    fresh("bench-spectra")
    seconds = timed(
        lambda: call_command("ingest_spectra", str(spectra_dir / "spectra"), survey="bench-spectra", verbosity=1)
    )
    results["spectra"] = args.spectra
    results["spectra_per_s"] = round(args.spectra / seconds)

    targets = {"catalog_rows_per_s": 20_000, "cutouts_per_s": 300, "spectra_per_s": 200}
    results["targets_met"] = {k: results[k] >= v for k, v in targets.items()}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
