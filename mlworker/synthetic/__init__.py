"""Mock data generators that write the same real formats the ingest reads (no Django)."""

import multiprocessing


def usable_workers(workers: int) -> int:
    """How many processes a generator may start: ``workers``, except inside a daemonic process
    (a Celery prefork child, where a worker trains on mocks it makes), which may not have
    children: there it renders in its own process."""
    return 1 if multiprocessing.current_process().daemon else max(1, int(workers))
