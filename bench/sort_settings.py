"""How SORT's xi(s) ratio depends on how a galaxy's assignments are combined and on the
reference (spectroscopic) sample: the diagnosis behind the README's SORT table.

    python bench/sort_settings.py [--seed 11] [--galaxies 200000] [--side-deg 4]
                                  [--only NAME ...] [--random-smoothing MPC]

One mock light cone (the acceptance's size and density); for each setting, SORT's redshifts
from the platform's ``sort_redshifts``, then ``xi_s`` against the truth exactly as the
acceptance measures it. A setting is a SortConfig override and a reference sample: the mock's
own (the brightest 10% by apparent magnitude, as the issue asks), a random fraction of all
galaxies, or a random sample of the brightest part (a magnitude-limited survey observed
sparsely). Prints JSON: per setting, the ratio and its jackknife error per bin, the mean ratio
over 4-30 h^-1 Mpc and whether every bin there is within 2 sigma.
"""

import argparse
import json
import sys
import time

import numpy as np
from _setup import ROOT, commit

SETTINGS = {
    "default": ({}, None),
    "median of 32 repeats": ({"repeats": 32}, None),
    "one realization": ({"repeats": 1}, None),
    "one realization, random 10%": ({"repeats": 1}, (1.0, 0.10)),
    "one realization, random 40%": ({"repeats": 1}, (1.0, 0.40)),
    "default, random quarter of the brightest 40%": ({}, (0.40, 0.10)),
}


def reference(lc, depth_and_fraction, seed: int) -> np.ndarray:
    """z_spec for a random ``fraction`` of all galaxies drawn from the brightest ``depth``."""
    from mlworker.synthetic.lightcone import C_KMS, LightconeConfig

    if depth_and_fraction is None:
        return lc.z_spec
    depth, fraction = depth_and_fraction
    rng = np.random.default_rng([seed, 4])
    chosen = (lc.mag <= np.quantile(lc.mag, depth)) & (rng.random(len(lc)) < fraction / depth)
    error = (1 + lc.z_obs) * rng.normal(0, LightconeConfig().spec_z_error_kms, len(lc)) / C_KMS  # the mock's
    return np.where(chosen, lc.z_obs + error, np.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--galaxies", type=int, default=200_000)
    parser.add_argument("--side-deg", type=float, default=4.0)
    parser.add_argument("--only", nargs="+", choices=list(SETTINGS), help="Run only these settings.")
    parser.add_argument(
        "--random-smoothing",
        type=float,
        help="Smooth the randoms' n(z) over this many h^-1 Mpc instead of the platform's 100 (a diagnostic).",
    )
    args = parser.parse_args()
    if args.random_smoothing:
        import mlworker.ml.environment as environment

        environment.RANDOM_SMOOTHING_MPC = args.random_smoothing

    from mlworker.ml.environment import Catalog, xi_s
    from mlworker.ml.sort import SortConfig, sort_redshifts
    from mlworker.synthetic.lightcone import LightconeConfig, make_lightcone

    started = time.perf_counter()
    lc = make_lightcone(LightconeConfig(n_galaxies=args.galaxies, side_deg=args.side_deg), args.seed)
    report = {
        "commit": commit(),
        "seed": args.seed,
        "n_galaxies": len(lc),
        "random_smoothing_mpc": args.random_smoothing or 100.0,
        "settings": {},
    }
    for name in args.only or SETTINGS:
        overrides, sample = SETTINGS[name]
        z_spec = reference(lc, sample, args.seed)
        catalog = Catalog(lc.ra, lc.dec, lc.z_phot, lc.z_phot_err, z_spec, lc.mag)
        z_sort, _ = sort_redshifts(catalog, SortConfig(**overrides))
        xi = xi_s(lc.ra, lc.dec, {"truth": lc.z_obs, "sort": z_sort})
        report["s"] = [round(s, 2) for s in xi["truth"]["s"]]
        report["settings"][name] = {
            "sort_config": overrides,
            "spectroscopic_fraction": round(float(np.isfinite(z_spec).mean()), 4),
            "xi_ratio": [round(r, 3) for r in xi["sort"]["ratio"]],
            "xi_ratio_err": [round(r, 3) for r in xi["sort"]["ratio_err"]],
            "xi_mean_ratio": round(xi["sort"]["mean_ratio"], 3),
            "xi_every_bin_within_2_sigma": xi["sort"]["within_2_sigma"],
        }
        print(f"{name}: mean {xi['sort']['mean_ratio']:.3f}", file=sys.stderr, flush=True)
    report["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    np.seterr(all="ignore")
    main()
