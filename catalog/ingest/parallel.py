"""Parsing input files on every core while the main process writes (no Django).

Workers are forked: they inherit the imported modules and any read-only state the caller
prepared, and leave with os._exit, so the parent's database connection is never touched.
"""

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor

PARALLEL_THRESHOLD = 64  # fewer items than this are handled in-process


def _run_chunk(func: Callable, items: Sequence) -> list:
    return [func(item) for item in items]


def parallel_map(func: Callable, items: Sequence, workers: int | None = None, chunk: int = 32) -> Iterator:
    """``func(item)`` for every item, in order, streamed as chunks complete.

    At most a few chunks per worker are in flight, so memory stays bounded however many
    items there are and however slowly the caller consumes the results.
    """
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(items) < PARALLEL_THRESHOLD:
        for item in items:
            yield func(item)
        return
    chunks = [items[i : i + chunk] for i in range(0, len(items), chunk)]
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
        pending: deque = deque()
        for c in chunks:
            pending.append(pool.submit(_run_chunk, func, c))
            if len(pending) >= 4 * workers:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
