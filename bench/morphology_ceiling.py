"""How close can a CNN that sees only the pixels come to the simulated crowd's expected fractions?

    python bench/morphology_ceiling.py [--n 15000] [--epochs 30] [--votes 5]

The morphology acceptance asks the CNN, trained on ~2,400 galaxies with 5 votes each, to
estimate the crowd's expected main-class fractions (known for mocks) better than 5 fresh
votes do. This script trains the platform's CNN under far kinder conditions: ``--n`` mock
galaxies (80% for training) whose targets are the crowd's noise-free expected fractions
themselves, a wider network and more epochs. It then compares, on the held-out fifth, the
CNN's RMSE against the expected fractions with that of ``--votes`` votes drawn from the
same crowd, per class and per magnitude bin, and prints JSON.

Whatever this CNN misses is information the pixels do not carry (or that this architecture
cannot extract even from 5x the data and noise-free labels): the simulated crowd sees a
galaxy's true class through its visibility term (labeling/crowd.py), also where faint
pixels barely show it.
"""

import argparse
import json
import sys
import time

import numpy as np
from _setup import ROOT, commit

MAIN = ("spheroid", "disk", "irregular", "compact", "unclassifiable")
MAG_BINS = ((19.5, 22.0), (22.0, 23.0), (23.0, 24.0), (24.0, 25.0))


def crowd_votes(crowd, appearance: np.ndarray, votes: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 5) main-class fractions from ``votes`` distinct classifiers per galaxy: classifier
    i chooses class k with probability p_ik + (1 - p_ik) s_ik, independently of the others."""
    chosen = np.stack([rng.choice(crowd.n, size=votes, replace=False) for _ in range(len(appearance))])
    fractions = np.zeros(appearance.shape)
    for i in range(crowd.n):
        p, s = crowd.main_class_probabilities(appearance, i)
        picked = (chosen == i).any(axis=1)
        fractions[picked] += rng.random((picked.sum(), 5)) < (p + (1 - p) * s)[picked]
    return fractions / votes


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a - b) ** 2).mean()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15000, help="Mock galaxies (a fifth held out).")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--channels", default="32,64,96,128")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--votes", type=int, default=5, help="Votes per galaxy of the human comparison.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--crowd-seed", type=int, default=2015, help="The acceptance's crowd.")
    parser.add_argument("--workers", type=int, default=2, help="Processes rendering the mock.")
    args = parser.parse_args()
    code_commit = commit()  # the code this run loaded (HEAD may move while it runs)

    import torch
    import torch.nn.functional as F
    from tqdm import tqdm

    from labeling.crowd import Crowd, features_from_truth
    from mlworker.ml.morphology import MorphologyCNN, MorphologyConfig, augment, normalise
    from mlworker.synthetic.galaxies import GalaxyMockConfig, draw_parameters, render_images, truth_table

    started = time.perf_counter()
    cfg = GalaxyMockConfig()
    params = draw_parameters(cfg, args.n, args.seed)
    images = render_images(cfg, params, args.seed, workers=args.workers)
    render_s = time.perf_counter() - started
    features = features_from_truth(truth_table(params))
    crowd = Crowd(65, args.crowd_seed)
    expected = crowd.expected_main_fractions(features).astype(np.float32)
    held_out = np.arange(args.n) % 5 == 0
    train_idx, test_idx = np.flatnonzero(~held_out), np.flatnonzero(held_out)
    humans = crowd_votes(crowd, features.appearance()[test_idx], args.votes, np.random.default_rng(args.seed))

    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    x = torch.from_numpy(normalise(images))[:, None]
    y = torch.from_numpy(expected)
    model = MorphologyCNN(len(MAIN), tuple(int(c) for c in args.channels.split(",")), args.hidden)
    model = model.to(memory_format=torch.channels_last)
    batch = 64
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = args.epochs * int(np.ceil(len(train_idx) / batch))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=3e-3, total_steps=steps, pct_start=0.2)
    augmentation = MorphologyConfig()
    t = time.perf_counter()
    for _ in tqdm(range(args.epochs), desc="epochs", file=sys.stderr):
        model.train()
        order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
        for start in range(0, len(order) - 1, batch):
            b = order[start : start + batch]
            logits, _ = model(augment(x[b], generator, augmentation))
            loss = F.binary_cross_entropy_with_logits(logits, y[b])  # soft targets: the expected fractions
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
    train_s = time.perf_counter() - t
    model.eval()
    with torch.inference_mode():
        xt = x[test_idx].contiguous(memory_format=torch.channels_last)
        cnn = torch.cat([torch.sigmoid(model(xt[i : i + 256])[0]) for i in range(0, len(xt), 256)]).numpy()
    truth = expected[test_idx]
    mags = params.mag[test_idx]
    report = {
        "commit": code_commit,
        "n_galaxies": args.n,
        "n_train": int(len(train_idx)),
        "n_held_out": int(len(test_idx)),
        "targets": "the crowd's noise-free expected fractions",
        "epochs": args.epochs,
        "channels": args.channels,
        "seconds": {"render": round(render_s, 1), "train": round(train_s, 1)},
        "rmse_vs_expected": {
            "overall": {"cnn": rmse(cnn, truth), f"humans_{args.votes}_votes": rmse(humans, truth)},
            "per_class": {
                c: {"cnn": rmse(cnn[:, j], truth[:, j]), "humans": rmse(humans[:, j], truth[:, j])}
                for j, c in enumerate(MAIN)
            },
            "by_magnitude": {
                f"{lo}-{hi}": {
                    "n": int(sel.sum()),
                    "cnn": rmse(cnn[sel], truth[sel]),
                    "humans": rmse(humans[sel], truth[sel]),
                }
                for lo, hi in MAG_BINS
                if (sel := (mags >= lo) & (mags < hi)).any()
            },
        },
    }
    report["cnn_beats_humans"] = {c: v["cnn"] < v["humans"] for c, v in report["rmse_vs_expected"]["per_class"].items()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
