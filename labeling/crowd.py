"""A simulated crowd of expert classifiers for mock galaxies (no Django).

The crowd model is fixed once the morphology work starts (README, "The simulated crowd"):

1. What the image shows. From the mock truth, each galaxy gets an intrinsic appearance over
   the five CANDELS main classes (a spheroid looks like a spheroid, a bulge+disk system like
   both in proportion to B/T, a merger mostly peculiar, ...). Two image properties degrade it:
   visibility v = logistic((log10 S/N - log10 8) / 0.15), where S/N is the galaxy's total S/N
   in the mock (from its magnitude and size), and resolution rho = logistic((r_e / FWHM_PSF - 0.8)
   / 0.25). The image-level appearance is rho v (intrinsic) + (1 - rho) v (compact)
   + (1 - v) (0.6 unclassifiable + 0.2 compact + 0.2 spheroid).
2. Each classifier (fixed by the crowd's seed) has a bias per class (log-normal, 0.3 dex), a
   decisiveness T in [0.5, 1.2] and a multi-select propensity m in [0.1, 0.6]. Their primary
   class is drawn from p_k ~ (appearance_k bias_k)^(1/T); every other class is added with
   probability 0.8 m appearance_k / max(appearance). So for each classifier
   P(class k chosen) = p_k + (1 - p_k) s_k exactly, and the crowd's expected vote fraction of k
   is the mean of that over the crowd's classifiers: known for every mock galaxy.
3. Interaction class, structure flags and the clumpiness x patchiness grid follow the true
   class, inclination and visibility, scaled by each classifier's flag propensity in [0.5, 1.5].
4. Galaxy Zoo 2: the tree is walked answer by answer with probabilities from the same
   appearance, axis ratio and B/T, perturbed per classifier.
"""

from dataclasses import dataclass

import numpy as np

MAIN = ("spheroid", "disk", "irregular", "compact", "unclassifiable")
INTRINSIC = {
    "spheroid": (1.0, 0.08, 0.0, 0.05, 0.0),
    "disk": (0.08, 1.0, 0.05, 0.0, 0.0),
    "irregular": (0.0, 0.3, 1.0, 0.0, 0.05),
    "merger": (0.25, 0.15, 0.9, 0.0, 0.05),
    "compact": (0.15, 0.0, 0.0, 1.0, 0.05),
    "unclassifiable": (0.1, 0.05, 0.25, 0.15, 0.8),
}
PSF_FWHM_ARCSEC = 0.18


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class GalaxyFeatures:
    """What the crowd model needs to know about each galaxy (arrays of equal length)."""

    true_class: np.ndarray
    snr: np.ndarray
    size_arcsec: np.ndarray
    axis_ratio: np.ndarray
    bt: np.ndarray  # NaN unless bulge+disk

    def appearance(self) -> np.ndarray:
        """(n, 5) image-level appearance over the CANDELS main classes, rows sum to 1."""
        intrinsic = np.array([INTRINSIC.get(c, (0.0,) * 5) for c in self.true_class], dtype=float)  # bulge+disk below
        bd = self.true_class == "bulge_disk"
        intrinsic[bd] = np.stack(
            [self.bt[bd], 1 - self.bt[bd] + 0.05, np.zeros(bd.sum()), np.zeros(bd.sum()), np.zeros(bd.sum())], axis=1
        )
        face_on_disk = (self.true_class == "disk") & (self.axis_ratio > 0.8)
        intrinsic[face_on_disk, 0] += 0.15  # a face-on smooth disk can pass for a spheroid
        intrinsic /= intrinsic.sum(axis=1, keepdims=True)
        v = _logistic((np.log10(np.clip(self.snr, 1e-3, None)) - np.log10(8.0)) / 0.15)[:, None]
        rho = _logistic((self.size_arcsec / PSF_FWHM_ARCSEC - 0.8) / 0.25)[:, None]
        compact = np.array([0, 0, 0, 1.0, 0])
        faint = np.array([0.2, 0, 0, 0.2, 0.6])
        look = rho * v * intrinsic + (1 - rho) * v * compact + (1 - v) * faint
        return look / look.sum(axis=1, keepdims=True)

    def visibility(self) -> np.ndarray:
        return _logistic((np.log10(np.clip(self.snr, 1e-3, None)) - np.log10(8.0)) / 0.15)


def features_from_truth(
    truth, background_sigma: float = 0.0152, pixel_scale: float = 0.06, zero_point: float = 25.95
) -> GalaxyFeatures:
    """Features of mock galaxies from their truth table (mlworker.synthetic.galaxies)."""
    mag = np.asarray(truth["mag"], dtype=float)
    size = np.asarray(truth["size_arcsec"], dtype=float)
    flux = 10 ** (-0.4 * (mag - zero_point))
    area = np.pi * (size / pixel_scale + 2.0) ** 2
    snr = flux / (background_sigma * np.sqrt(area))
    return GalaxyFeatures(
        true_class=np.asarray(truth["true_class"]).astype(str),
        snr=snr,
        size_arcsec=size,
        axis_ratio=np.asarray(truth["axis_ratio"], dtype=float),
        bt=np.asarray(truth["bt"], dtype=float),
    )


class Crowd:
    """The classifiers of one simulated crowd (fixed by ``seed``)."""

    def __init__(self, n_classifiers: int, seed: int):
        rng = np.random.default_rng([seed, 7919])
        self.n = n_classifiers
        self.bias = 10 ** rng.normal(0, 0.3, (n_classifiers, len(MAIN)))
        self.temperature = rng.uniform(0.5, 1.2, n_classifiers)
        self.multi = rng.uniform(0.1, 0.6, n_classifiers)
        self.flag_propensity = rng.uniform(0.5, 1.5, n_classifiers)
        self.gz_noise = rng.uniform(0.05, 0.25, n_classifiers)

    # ---- CANDELS main class ------------------------------------------------------------
    def main_class_probabilities(self, appearance: np.ndarray, classifier: int) -> tuple[np.ndarray, np.ndarray]:
        """(primary-choice probabilities p, secondary-addition probabilities s), each (n, 5)."""
        weighted = np.clip(appearance * self.bias[classifier], 1e-9, None) ** (1.0 / self.temperature[classifier])
        p = weighted / weighted.sum(axis=1, keepdims=True)
        s = 0.8 * self.multi[classifier] * appearance / appearance.max(axis=1, keepdims=True)
        return p, s

    def expected_main_fractions(self, features: GalaxyFeatures) -> np.ndarray:
        """(n, 5): the crowd's expected fraction of classifiers choosing each main class."""
        appearance = features.appearance()
        total = np.zeros_like(appearance)
        for i in range(self.n):
            p, s = self.main_class_probabilities(appearance, i)
            total += p + (1 - p) * s
        return total / self.n

    # ---- one vote ----------------------------------------------------------------------
    def candels_vote(
        self, features: GalaxyFeatures, appearance: np.ndarray, g: int, classifier: int, rng: np.random.Generator
    ) -> list[str]:
        """A whole CANDELS vote ("question:answer" keys) of one classifier on galaxy g."""
        p, s = self.main_class_probabilities(appearance[g : g + 1], classifier)
        primary = rng.choice(len(MAIN), p=p[0])
        chosen = [MAIN[primary]] + [MAIN[k] for k in range(len(MAIN)) if k != primary and rng.random() < s[0, k]]
        keys = [f"main_class:{c}" for c in chosen]
        cls = features.true_class[g]
        v = float(features.visibility()[g])
        q = float(features.axis_ratio[g])
        f = self.flag_propensity[classifier]
        interaction = {"merger": [0.7, 0.2, 0.05, 0.0, 0.05], "irregular": [0.02, 0.1, 0.03, 0.1, 0.75]}.get(
            cls, [0.0, 0.01, 0.01, 0.05, 0.93]
        )
        interaction = v * np.array(interaction) + (1 - v) * np.array([0, 0, 0, 0.03, 0.97])
        answer = ("merger", "interaction_within", "interaction_beyond", "companion", "none")[
            rng.choice(5, p=interaction / interaction.sum())
        ]
        keys.append(f"interaction:{answer}")
        disky = appearance[g, 1]
        flags = {
            "spiral_arms": 0.5 * disky * v,
            "edge_on": 0.85 * (q < 0.3) * disky,
            "bar": 0.08 * disky * v,
            "tidal_arms": 0.5 * (cls == "merger") * v,
            "double_nuclei": 0.45 * (cls == "merger") * v,
            "asymmetric": (0.5 * (cls == "irregular") + 0.6 * (cls == "merger")) * v + 0.03,
            "point_source": 0.3 * (cls == "compact"),
            "chain": 0.3 * (cls == "irregular") * (q < 0.45) * v,
            "tadpole": 0.08 * (cls == "irregular") * v,
        }
        keys += [f"structure:{flag}" for flag, prob in flags.items() if rng.random() < min(0.95, prob * f)]
        clumpy = {"irregular": [0.15, 0.45, 0.4], "merger": [0.5, 0.35, 0.15]}.get(cls, [0.9, 0.08, 0.02])
        patchy = {"irregular": [0.4, 0.4, 0.2], "merger": [0.6, 0.3, 0.1]}.get(cls, [0.92, 0.06, 0.02])
        c = rng.choice(3, p=v * np.array(clumpy) + (1 - v) * np.array([1.0, 0, 0]))
        pt = rng.choice(3, p=v * np.array(patchy) + (1 - v) * np.array([1.0, 0, 0]))
        keys.append(f"clumpiness_patchiness:c{c}_p{pt}")
        return keys

    def gz2_vote(
        self, features: GalaxyFeatures, appearance: np.ndarray, g: int, classifier: int, rng: np.random.Generator
    ) -> list[str]:
        """A Galaxy Zoo 2 path ("question:answer" keys) of one classifier on galaxy g."""
        sph, disk, irr, compact, unc = appearance[g]
        noise = self.gz_noise[classifier]
        q = float(features.axis_ratio[g])
        bt = features.bt[g]
        cls = features.true_class[g]

        def pick(question: str, options: list[str], weights) -> str:
            w = np.clip(np.asarray(weights, dtype=float), 0, None) + noise / len(options)
            choice = options[rng.choice(len(options), p=w / w.sum())]
            path.append(f"{question}:{choice}")
            return choice

        path: list[str] = []
        first = pick(
            "t01",
            ["smooth", "features", "star"],
            [sph + 0.5 * unc + 0.3 * compact, disk + irr + 0.3 * unc, 0.6 * compact],
        )
        if first == "star":
            return path
        if first == "smooth":
            pick("t07", ["completely_round", "in_between", "cigar"], [q > 0.8, 0.5 < q <= 0.8, q <= 0.5])
        elif pick("t02", ["yes", "no"], [disk * (q < 0.35), 1 - disk * (q < 0.35)]) == "yes":
            pick("t09", ["rounded", "boxy", "no_bulge"], [0.6, 0.1, 0.3])
        else:
            pick("t03", ["bar", "no_bar"], [0.1, 0.9])
            if pick("t04", ["spiral", "no_spiral"], [0.6 * disk, 1 - 0.6 * disk]) == "spiral":
                pick("t10", ["tight", "medium", "loose"], [0.3, 0.4, 0.3])
                pick("t11", ["one", "two", "three", "four", "more", "cant_tell"], [0.05, 0.5, 0.1, 0.05, 0.05, 0.25])
            b = 0.3 if np.isnan(bt) else bt
            pick(
                "t05",
                ["no_bulge", "just_noticeable", "obvious", "dominant"],
                [b < 0.2, 0.2 <= b < 0.4, 0.4 <= b < 0.6, b >= 0.6],
            )
        odd = 0.7 if cls in ("merger", "irregular") else 0.08
        if pick("t06", ["yes", "no"], [odd, 1 - odd]) == "yes":
            pick(
                "t08",
                ["ring", "lens", "disturbed", "irregular", "other", "merger", "dust_lane"],
                [
                    0.05,
                    0.05,
                    0.3 * (cls == "merger") + 0.1,
                    0.5 * (cls == "irregular") + 0.05,
                    0.1,
                    0.6 * (cls == "merger"),
                    0.03,
                ],
            )
        return path
