"""Speed of the environment estimators at 10^5 and 10^6 galaxies.

    python bench/environment.py [--sizes 100000 1000000]

For each size, a mock light cone at the same comoving density (the patch grows with the
number of galaxies), then galaxies per second for each estimator: photo-z slices (Sigma_5,
Sigma_10, cylinders), SORT (its redshifts and the same measures on them) and the learned
estimator (neighbourhood histograms and the network, an untrained one of the default shape
if the benchmark database has no promoted one: the speed does not depend on the weights),
and how the time grows between the sizes: log(t2 / t1) / log(n2 / n1) is 1 for linear growth,
~1.1 for n log n. Target: n log n or better, 10^6 galaxies in under 10 minutes on this CPU.
"""

import argparse
import json
import math
import sys
import time

from _setup import ROOT, commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()

    import torch

    from mlworker.ml.environment import Catalog, estimate
    from mlworker.ml.environment_learned import EnvironmentNet, LearnedConfig, neighbourhood_features, predict
    from mlworker.synthetic.lightcone import LightconeConfig, make_lightcone

    report = {"commit": commit(), "threads": torch.get_num_threads(), "sizes": {}}
    for n in args.sizes:
        side = 4.0 * math.sqrt(n / 200_000)  # the acceptance's density: 200,000 galaxies on 4 x 4 deg
        t = time.perf_counter()
        lc = make_lightcone(LightconeConfig(n_galaxies=n, side_deg=side), args.seed)
        mock_s = time.perf_counter() - t
        catalog = Catalog(lc.ra, lc.dec, lc.z_phot, lc.z_phot_err, lc.z_spec, lc.mag)
        timings = {}
        for method in ("photoz", "sort"):
            t = time.perf_counter()
            estimate(method, catalog)
            timings[method] = time.perf_counter() - t
        t = time.perf_counter()
        features = neighbourhood_features(catalog)
        cfg = LearnedConfig()
        net = EnvironmentNet(features.shape[1], cfg.hidden)
        checkpoint = {
            "model": net.state_dict(),
            "model_args": {"n_features": features.shape[1], "hidden": cfg.hidden},
            "feature_mean": features.mean(axis=0).tolist(),
            "feature_std": (features.std(axis=0) + 1e-6).tolist(),
            "target_mean": [0.0, 0.0],
            "target_std": [1.0, 0.01],
        }
        predict(checkpoint, features, catalog.z_best, device=torch.device("cpu"))
        timings["learned"] = time.perf_counter() - t
        report["sizes"][str(len(lc))] = {
            "side_deg": round(side, 2),
            "mock_seconds": round(mock_s, 1),
            **{m: {"seconds": round(s, 1), "galaxies_per_s": round(len(lc) / s)} for m, s in timings.items()},
        }
        print(f"{len(lc)} galaxies: {json.dumps(report['sizes'][str(len(lc))])}", file=sys.stderr)
    sizes = sorted(report["sizes"], key=int)
    if len(sizes) >= 2:
        a, b = report["sizes"][sizes[0]], report["sizes"][sizes[-1]]
        ratio = math.log(int(sizes[-1]) / int(sizes[0]))
        report["growth_exponent"] = {
            m: round(math.log(b[m]["seconds"] / a[m]["seconds"]) / ratio, 2) for m in ("photoz", "sort", "learned")
        }
        report["largest_under_10_minutes"] = {m: b[m]["seconds"] < 600 for m in ("photoz", "sort", "learned")}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
