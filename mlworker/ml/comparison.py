"""How a model's vote fractions compare with the humans' (no Django).

Definitions after Huertas-Company et al. (2015): per answer, bias = mean(f_model - f_human),
scatter = std(f_model - f_human), RMSE = sqrt(mean((f_model - f_human)^2)) over held-out
galaxies, each with a bootstrap 95% interval (galaxies resampled with replacement), also in
bins of magnitude. Galaxies are sorted into CANDELS classes by the fraction thresholds of
Kartaltepe et al. (2015) / Huertas-Company et al. (2015) and the classes of model and humans
are cross-tabulated.
"""

import numpy as np

MAG_EDGES = (-np.inf, 21.0, 22.0, 23.0, 24.0, np.inf)

# CANDELS classes from the main-class fractions (Huertas-Company et al. 2015, section 5.1).
CANDELS_CLASSES = ("spheroid", "disk", "disk+spheroid", "irregular disk", "irregular", "compact", "unclassifiable")
OTHER = "ambiguous"


def _stats(diff: np.ndarray) -> tuple[float, float, float]:
    return float(diff.mean()), float(diff.std()), float(np.sqrt((diff**2).mean()))


def bootstrap(diff: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    """Bias, scatter and RMSE of ``diff`` (n,) with bootstrap 95% intervals."""
    diff = np.asarray(diff, dtype=float)
    n = len(diff)
    if n == 0:
        return {"n": 0}
    bias, scatter, rmse = _stats(diff)
    out = {"n": n, "bias": bias, "scatter": scatter, "rmse": rmse}
    if n < 2:
        return out
    rng = np.random.default_rng(seed)
    samples = diff[rng.integers(0, n, size=(n_boot, n))]
    boot = {
        "bias": samples.mean(axis=1),
        "scatter": samples.std(axis=1),
        "rmse": np.sqrt((samples**2).mean(axis=1)),
    }
    for name, values in boot.items():
        lo, hi = np.percentile(values, [2.5, 97.5])
        out[f"{name}_ci"] = [float(lo), float(hi)]
    return out


def mag_bin_labels(edges=MAG_EDGES) -> list[str]:
    labels = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        if np.isinf(lo):
            labels.append(f"< {hi:g}")
        elif np.isinf(hi):
            labels.append(f">= {lo:g}")
        else:
            labels.append(f"{lo:g}-{hi:g}")
    return labels


def compare_fractions(
    pred: np.ndarray,
    human: np.ndarray,
    answers: list[str],
    mags: np.ndarray | None = None,
    columns: list[int] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    edges=MAG_EDGES,
) -> dict:
    """{answer: {"all": stats, "by_mag": {bin label: stats}}} for the answers in ``columns``."""
    columns = list(range(len(answers))) if columns is None else columns
    mags = np.full(len(pred), np.nan) if mags is None else np.asarray(mags, dtype=float)
    labels = mag_bin_labels(edges)
    out = {}
    for j in columns:
        diff = pred[:, j] - human[:, j]
        by_mag = {}
        for label, lo, hi in zip(labels, edges[:-1], edges[1:], strict=True):
            sel = (mags >= lo) & (mags < hi)
            if sel.any():
                by_mag[label] = bootstrap(diff[sel], n_boot, seed)
        out[answers[j]] = {"all": bootstrap(diff, n_boot, seed), "by_mag": by_mag}
    return out


def candels_classes(fractions: np.ndarray, answers: list[str]) -> np.ndarray:
    """Class of each galaxy from its CANDELS main-class fractions:

    compact: f_compact > 2/3; unclassifiable: f_unc > 2/3; else with f_sph, f_disk, f_irr:
    spheroid (f_sph > 2/3, f_disk < 2/3, f_irr < 0.1), disk (f_sph < 2/3, f_disk > 2/3,
    f_irr < 0.1), disk+spheroid (both > 2/3, f_irr < 0.1), irregular disk (f_disk > 2/3,
    f_sph < 2/3, f_irr >= 0.1), irregular (f_sph < 2/3, f_disk < 2/3, f_irr >= 0.1);
    anything else is ambiguous.
    """
    col = {a.split(":")[-1]: j for j, a in enumerate(answers) if a.startswith("main_class:")}
    f = {name: fractions[:, col[name]] for name in ("spheroid", "disk", "irregular", "compact", "unclassifiable")}
    hi = 2 / 3
    sph, disk, irr = f["spheroid"] > hi, f["disk"] > hi, f["irregular"] >= 0.1
    out = np.full(len(fractions), OTHER, dtype=object)
    out[sph & ~disk & ~irr] = "spheroid"
    out[~sph & disk & ~irr] = "disk"
    out[sph & disk & ~irr] = "disk+spheroid"
    out[~sph & disk & irr] = "irregular disk"
    out[~sph & ~disk & irr] = "irregular"
    out[f["unclassifiable"] > hi] = "unclassifiable"
    out[f["compact"] > hi] = "compact"
    return out


def argmax_classes(fractions: np.ndarray, answers: list[str], start: int, stop: int) -> np.ndarray:
    """Class = the most voted answer of the first question (schemes without thresholds)."""
    names = np.array([a.split(":")[-1] for a in answers[start:stop]], dtype=object)
    return names[np.argmax(fractions[:, start:stop], axis=1)]


def classes_for(fractions: np.ndarray, answers: list[str], main: tuple[int, int]) -> tuple[np.ndarray, list[str]]:
    if any(a.startswith("main_class:") for a in answers):
        return candels_classes(fractions, answers), [*CANDELS_CLASSES, OTHER]
    names = [a.split(":")[-1] for a in answers[main[0] : main[1]]]
    return argmax_classes(fractions, answers, *main), names


def confusion(human_classes: np.ndarray, model_classes: np.ndarray, names: list[str]) -> dict:
    """Rows: the humans' class; columns: the model's. Also the agreement (trace / n)."""
    index = {name: i for i, name in enumerate(names)}
    matrix = np.zeros((len(names), len(names)), dtype=int)
    for h, m in zip(human_classes, model_classes, strict=True):
        matrix[index[h], index[m]] += 1
    n = int(matrix.sum())
    return {"classes": names, "matrix": matrix.tolist(), "agreement": float(np.trace(matrix) / n) if n else None}


def comparison_report(evaluation: dict, answers: list[str], main: tuple[int, int], n_boot: int = 1000) -> dict:
    """Model and baselines against the humans on the held-out galaxies of ``evaluation``
    (the arrays a training run stores: human, model, baseline_*, mags)."""
    human = evaluation["human"]
    mags = evaluation.get("mags")
    columns = list(range(main[0], main[1]))
    sources = {"model": evaluation["model"]}
    sources.update({k.removeprefix("baseline_"): v for k, v in evaluation.items() if k.startswith("baseline_")})
    human_classes, names = classes_for(human, answers, main)
    report = {"n": int(len(human)), "answers": [answers[j] for j in columns], "mag_bins": mag_bin_labels(), "by": {}}
    for name, pred in sources.items():
        model_classes, _ = classes_for(pred, answers, main)
        report["by"][name] = {
            "fractions": compare_fractions(pred, human, answers, mags, columns, n_boot=n_boot),
            "confusion": confusion(human_classes, model_classes, names),
            "rmse_main": float(np.sqrt(((pred[:, columns] - human[:, columns]) ** 2).mean())) if len(human) else None,
        }
    return report
