"""Voting under load: a real gunicorn server on PostgreSQL, concurrent HTTP clients.

    python bench/voting.py [--galaxies 100000] [--votes-per-galaxy 10] [--rate 100] [--duration 30]

Setup (once; kept in the bench database and var/bench): a survey of 100,000 galaxies with
cutouts (simple synthetic stamps, packed and rendered into the preview cache), a CANDELS
project with retirement set high, and 1,000,000 existing votes from a crowd of classifiers.
Then gunicorn serves the app and client threads (token auth) run "next galaxy + vote" cycles:
as the voting page does them (a vote that returns the next galaxy, then that galaxy's image,
a cache hit), and as three separate requests (next, image, vote).

- open loop at an offered load of --rate votes/s: p50/p95/p99 latency of a cycle, measured
  from its scheduled start (so queueing counts); target p95 < 50 ms at 100 votes/s;
- closed loop with 2-16 concurrent clients: the saturation throughput in votes/s.
"""

import argparse
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
from _setup import ROOT, WORK, commit, setup

PORT = 8799
SURVEY = "bench-voting"
PROJECT = "bench-voting-candels"
ANSWERS = [
    ["main_class:spheroid", "interaction:none", "clumpiness_patchiness:c0_p0"],
    ["main_class:disk", "interaction:none", "structure:spiral_arms", "clumpiness_patchiness:c0_p0"],
    ["main_class:disk", "main_class:irregular", "interaction:merger", "clumpiness_patchiness:c1_p0"],
]


def make_cutouts(directory: Path, n: int) -> None:
    """n small synthetic stamps (a Gaussian blob on noise) as FITS files named by source id."""
    from astropy.io import fits

    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[:64, :64] - 31.5
    header = fits.Header({"FILTER": "F160W", "PIXSCALE": 0.06, "PSF_FWHM": 0.18, "MAGZERO": 25.95})
    for i in range(n):
        path = directory / f"BV{i:06d}.fits"
        if path.exists():
            continue
        sigma = rng.uniform(1.5, 6.0)
        image = (
            np.exp(-(x**2 + (y * rng.uniform(0.4, 1)) ** 2) / (2 * sigma**2)) + rng.normal(0, 0.05, (64, 64))
        ).astype(np.float32)
        fits.PrimaryHDU(image, header=header).writeto(path)


def _render_one(path: str, shape: tuple[int, int, int], row: int, params) -> bytes:
    from catalog import rendering
    from catalog.packstore import read_images
    from catalog.services.files import pack_root

    return rendering.image_to_png(read_images(pack_root(), path, shape, [row])[0], params)


def _render_rows(rows: list[tuple]) -> int:
    from functools import partial

    from catalog import rendering

    params = rendering.RenderParams()
    for checksum, path, n, h, w, row in rows:
        rendering.cached_render("cutouts", checksum, params, partial(_render_one, path, (n, h, w), row, params))
    return len(rows)


def render_previews(survey) -> None:
    """Every cutout's default preview into the render cache, on every core (what the preview
    task does on the workers after an ingest)."""
    from django.db import connection

    from catalog.ingest.parallel import parallel_map
    from catalog.models import Cutout

    rows = list(
        Cutout.objects.filter(galaxy__survey=survey).values_list(
            "checksum", "shard__path", "shard__n_images", "shard__height", "shard__width", "shard_row"
        )
    )
    cache = Path(os.environ["GALAXYLAB_RENDER_CACHE"]) / "cutouts"
    if cache.exists() and sum(1 for _ in cache.rglob("*.png")) >= len(rows):
        return
    print(f"rendering {len(rows):,} previews into the cache ...", flush=True)
    connection.close()  # the forked workers must not share it
    chunks = [rows[i : i + 500] for i in range(0, len(rows), 500)]
    for _ in parallel_map(_render_rows, chunks, chunk=1):
        pass


def prepare(n_galaxies: int, votes_per_galaxy: int) -> None:
    from django.core.management import call_command

    from catalog.models import Survey
    from labeling.models import Project, Vote

    directory = WORK / f"voting-{n_galaxies}"
    existing_survey = Survey.objects.filter(name=SURVEY).first()
    if existing_survey is not None and existing_survey.galaxies.count() != n_galaxies:
        from catalog.services.surveys import survey_delete

        print(f"the bench survey has another size: rebuilding it with {n_galaxies:,} galaxies", flush=True)
        Project.objects.filter(slug=PROJECT).delete()
        survey_delete(survey=existing_survey)
    if not Survey.objects.filter(name=SURVEY).exists():
        from astropy.table import Table

        print(f"making {n_galaxies:,} galaxies with cutouts ...", flush=True)
        rng = np.random.default_rng(1)
        directory.mkdir(parents=True, exist_ok=True)
        catalog = {
            "id": [f"BV{i:06d}" for i in range(n_galaxies)],
            "ra": rng.uniform(150, 151, n_galaxies),
            "dec": rng.uniform(2, 3, n_galaxies),
            "mag": rng.uniform(19.5, 25, n_galaxies),
        }
        Table(catalog).write(directory / "catalog.csv", format="ascii.csv", overwrite=True)
        make_cutouts(directory / "cutouts", n_galaxies)
        call_command(
            "ingest_galaxies",
            str(directory / "catalog.csv"),
            survey=SURVEY,
            cutouts=str(directory / "cutouts"),
            band="F160W",
            verbosity=1,
        )
    survey = Survey.objects.get(name=SURVEY)
    render_previews(survey)
    if not Project.objects.filter(slug=PROJECT).exists():
        call_command("create_project", PROJECT, scheme="candels", survey=SURVEY, retire_after=10_000, verbosity=1)
    project = Project.objects.get(slug=PROJECT)
    existing = Vote.objects.filter(project=project).count()
    target = n_galaxies * votes_per_galaxy
    if existing < target:
        print(f"adding {target - existing:,} existing votes ...", flush=True)
        add_votes(project, votes_per_galaxy)


def add_votes(project, votes_per_galaxy: int) -> None:
    """Votes from crowd classifiers: each galaxy gets votes_per_galaxy of them."""
    from django.contrib.auth import get_user_model

    from labeling.models import ProjectSubject, Vote
    from labeling.services import ImportedVote, votes_import

    User = get_user_model()
    crowd = [
        User.objects.get_or_create(username=f"bench-crowd-{i:03d}")[0].pk for i in range(max(20, votes_per_galaxy * 2))
    ]
    voted = set(Vote.objects.filter(project=project).values_list("galaxy_id", flat=True).distinct())
    todo = [
        g for g in ProjectSubject.objects.filter(project=project).values_list("galaxy_id", flat=True) if g not in voted
    ]
    rng = np.random.default_rng(2)
    for start in range(0, len(todo), 10_000):
        batch = []
        for galaxy_id in todo[start : start + 10_000]:
            for c in rng.choice(len(crowd), votes_per_galaxy, replace=False):
                batch.append(
                    ImportedVote(crowd[c], galaxy_id, ANSWERS[rng.integers(0, len(ANSWERS))], float(rng.uniform(2, 12)))
                )
        votes_import(project=project, votes=batch)
        print(f"  {start + len(batch) // votes_per_galaxy:,} galaxies voted", flush=True)


def tokens(n: int) -> list[str]:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    run = uuid.uuid4().hex[:6]
    User = get_user_model()
    return [Token.objects.create(user=User.objects.create_user(username=f"bench-{run}-{i:02d}")).key for i in range(n)]


class Client:
    """One classifier on one keep-alive connection."""

    def __init__(self, token: str):
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=30)
        self.headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body=None) -> tuple[int, bytes]:
        self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def ui_cycle(self, rng) -> None:
        """What the voting page does: vote on the galaxy on screen, getting the next one in the
        same response (POST .../votes/?next=1), then fetch that galaxy's image."""
        if getattr(self, "current", None) is None:
            status, body = self.request("GET", f"/api/projects/{PROJECT}/next/")
            if status != 200:
                raise RuntimeError(f"next: {status} {body[:200]!r}")
            self.current = json.loads(body)
        vote = {"galaxy": self.current["galaxy"], "answers": ANSWERS[rng.integers(0, len(ANSWERS))]}
        status, body = self.request("POST", f"/api/projects/{PROJECT}/votes/?next=1", vote)
        if status != 201:
            raise RuntimeError(f"vote: {status} {body[:200]!r}")
        self.current = json.loads(body)["next"]
        status, _ = self.request("GET", self.current["cutouts"][0]["png"])
        if status != 200:
            raise RuntimeError(f"image: {status}")

    def cycle(self, rng) -> None:
        """next galaxy + its image + a vote, as three separate requests."""
        status, body = self.request("GET", f"/api/projects/{PROJECT}/next/")
        if status != 200:
            raise RuntimeError(f"next: {status} {body[:200]!r}")
        subject = json.loads(body)
        status, _ = self.request("GET", subject["cutouts"][0]["png"])
        if status != 200:
            raise RuntimeError(f"image: {status}")
        vote = {"galaxy": subject["galaxy"], "answers": ANSWERS[rng.integers(0, len(ANSWERS))]}
        status, body = self.request("POST", f"/api/projects/{PROJECT}/votes/", vote)
        if status != 201:
            raise RuntimeError(f"vote: {status} {body[:200]!r}")


def open_loop(tokens_: list[str], rate: float, duration: float, ui: bool = True) -> dict:
    """Cycles scheduled at a fixed rate; latency measured from the scheduled start."""
    work: queue.Queue = queue.Queue()
    latencies, errors = [], []
    lock = threading.Lock()

    def worker(token: str, seed: int) -> None:
        client, rng = Client(token), np.random.default_rng(seed)
        while (scheduled := work.get()) is not None:
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                (client.ui_cycle if ui else client.cycle)(rng)
                with lock:
                    latencies.append(time.perf_counter() - scheduled)
            except Exception as exc:  # noqa: BLE001 - counted and reported
                with lock:
                    errors.append(str(exc))

    threads = [threading.Thread(target=worker, args=(t, i)) for i, t in enumerate(tokens_)]
    for t in threads:
        t.start()
    start = time.perf_counter() + 0.5
    n = int(rate * duration)
    for i in range(n):
        work.put(start + i / rate)
    for _ in threads:
        work.put(None)
    for t in threads:
        t.join()
    ms = np.array(latencies) * 1000
    return {
        "offered_votes_per_s": rate,
        "cycles": n,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
    }


def closed_loop(tokens_: list[str], duration: float) -> float:
    done, stop = [0], time.perf_counter() + duration
    lock = threading.Lock()

    def worker(token: str, seed: int) -> None:
        client, rng = Client(token), np.random.default_rng(seed)
        while time.perf_counter() < stop:
            client.ui_cycle(rng)
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=worker, args=(t, i)) for i, t in enumerate(tokens_)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0] / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galaxies", type=int, default=100_000)
    parser.add_argument("--votes-per-galaxy", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    args = parser.parse_args()
    url = setup(default_db="postgres://postgres@127.0.0.1:5432/galaxylab_bench_voting")
    prepare(args.galaxies, args.votes_per_galaxy)

    from labeling.models import ProjectSubject, Vote

    results = {
        "commit": commit(),
        "galaxies": ProjectSubject.objects.filter(project__slug=PROJECT).count(),
        "existing_votes": Vote.objects.filter(project__slug=PROJECT).count(),
    }
    client_tokens = tokens(72)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "API_ANON_RATE": "100000/min",
        "DATABASE_CONN_MAX_AGE": "600",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-b",
            f"127.0.0.1:{PORT}",
            "-w",
            str(args.workers),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", PORT, timeout=1).request("GET", "/health/")
                break
            except OSError:
                time.sleep(0.2)
        closed_loop(client_tokens[:4], 3.0)  # warm up every worker
        results["open_loop"] = open_loop(client_tokens[4:20], args.rate, args.duration)
        results["open_loop_three_requests"] = open_loop(client_tokens[20:36], args.rate, args.duration, ui=False)
        saturation = {}
        offset = 36
        for concurrency in (2, 4, 8, 16):
            saturation[concurrency] = round(closed_loop(client_tokens[offset : offset + concurrency], 10.0), 1)
            offset += concurrency
        results["closed_loop_votes_per_s_by_clients"] = saturation
        results["saturation_votes_per_s"] = max(saturation.values())
        results["target_met"] = results["open_loop"]["p95_ms"] < 50 and results["open_loop"]["errors"] == 0
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
