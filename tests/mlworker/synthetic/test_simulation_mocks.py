"""VELA-like mock runs: histories are physical and drive how the images look."""

import numpy as np
from astropy.io import fits
from astropy.table import Table

from mlworker.synthetic.simulation import SCALE_FACTORS, run_history


def _concentration(image: np.ndarray) -> float:
    """Fraction of the light in the central 5x5 pixels (of the noiseless-ish image)."""
    c = image.shape[0] // 2
    return float(image[c - 2 : c + 3, c - 2 : c + 3].sum() / image.sum())


def test_histories_are_physical_and_vary_between_runs():
    histories = [run_history(i, seed=1) for i in range(6)]
    for h in histories:
        assert np.all(np.diff(h.stellar_mass) > 0) and np.all(h.gas_mass > 0) and np.all(h.sfr >= 0)
        phases = list(h.phase)
        first_bn, last_bn = phases.index("blue_nugget"), len(phases) - 1 - phases[::-1].index("blue_nugget")
        assert set(phases[:first_bn]) <= {"pre"} and set(phases[last_bn + 1 :]) <= {"post"}
        assert h.bt[phases.index("post")] > h.bt[0] + 0.3  # the compaction builds a bulge
        assert all(m[2] == ("major" if m[1] >= 0.25 else "minor") for m in h.mergers)
    assert len({round(h.compaction_a, 3) for h in histories}) == 6
    assert np.allclose(histories[0].scale_factor, SCALE_FACTORS)


def test_images_are_more_concentrated_after_compaction(mock_simulation):
    run_dir = mock_simulation / "VMOCK01"
    snapshots = Table.read(run_dir / "snapshots.csv")
    pre = [a for a, p in zip(snapshots["scale_factor"], snapshots["compaction_phase"], strict=True) if p == "pre"][:3]
    bn = [
        a for a, p in zip(snapshots["scale_factor"], snapshots["compaction_phase"], strict=True) if p == "blue_nugget"
    ]

    def mean_concentration(scale_factors):
        values = [
            _concentration(fits.getdata(run_dir / "images" / f"VMOCK01_a{a:.3f}_cam{cam:02d}_F160W_snr30.fits"))
            for a in scale_factors
            for cam in range(3)
        ]
        return np.mean(values)

    assert mean_concentration(bn) > mean_concentration(pre)
    truth = Table.read(run_dir / "images_truth.csv")
    assert len(truth) == 31 * 3 and set(truth["compaction_phase"]) == {"pre", "blue_nugget", "post"}
