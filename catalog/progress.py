"""Progress reporting for long services: a CLI progress bar, or nothing.

Services call ``progress.stage(label, total)`` and ``progress.advance(n)``; management
commands pass a ``TqdmProgress``, tasks pass their own implementation.
"""

import sys
from typing import Protocol


class Progress(Protocol):
    def stage(self, label: str, total: int | None) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


class NullProgress:
    def stage(self, label: str, total: int | None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


class TqdmProgress:
    """One tqdm bar per stage, on stderr; silent when ``enabled`` is false."""

    def __init__(self, enabled: bool = True, unit: str = "it"):
        self.enabled = enabled
        self.unit = unit
        self._bar = None

    def stage(self, label: str, total: int | None) -> None:
        from tqdm import tqdm

        self.close()
        if self.enabled:
            self._bar = tqdm(
                total=total,
                desc=label,
                unit=self.unit,
                file=sys.stderr,
                dynamic_ncols=True,
                unit_scale=True,
                mininterval=0.5,
            )

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
