"""Packed stores: many images or spectra per file, memory-mapped for bulk reads (no Django).

Opening one FITS file per galaxy costs about a millisecond, far too slow for training and
prediction over a survey. At ingest every array is therefore also appended to a shard:

- image shards: raw little-endian float32, shape (n_images, height, width), one shape
  per shard, ``<path>`` under the pack root;
- spectrum shards: two raw float32 files ``<stem>.flux`` and ``<stem>.ivar`` holding the
  spectra one after another; each spectrum is (offset, n_pixels) into both.

The database holds the index (which shard, which row or offset). Shards are written to a
``.partial`` name and renamed when complete, so a reader never sees half a shard; the
ingest deletes the shard again if its transaction rolls back.
"""

import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DTYPE = np.dtype("<f4")
MAX_IMAGES_PER_SHARD = 65_536


def new_shard_path(prefix: str, suffix: str = "") -> str:
    """A fresh relative path such as ``cutouts/candels/3f2a....f32``."""
    return f"{prefix}/{uuid.uuid4().hex}{suffix}"


class ImageShardWriter:
    """Writes equally-shaped images to a new shard, streaming (constant memory)."""

    def __init__(self, root: Path, path: str, height: int, width: int):
        self.root = Path(root)
        self.path = path
        self.height = height
        self.width = width
        self.n_images = 0
        self._final = self.root / path
        self._final.parent.mkdir(parents=True, exist_ok=True)
        self._partial = self._final.with_name(self._final.name + ".partial")
        self._fh = open(self._partial, "wb")  # noqa: SIM115 - stays open while images stream in

    @property
    def full(self) -> bool:
        return self.n_images >= MAX_IMAGES_PER_SHARD

    def append(self, image: np.ndarray) -> int:
        """Appends one (height, width) image; returns its row in the shard."""
        if image.shape != (self.height, self.width):
            raise ValueError(f"image shape {image.shape} != shard shape {(self.height, self.width)}")
        self._fh.write(np.ascontiguousarray(image, dtype=DTYPE).tobytes())
        self.n_images += 1
        return self.n_images - 1

    def close(self) -> None:
        """Flushes and publishes the shard under its final name (once)."""
        if not self._fh.closed:
            self._fh.close()
            os.replace(self._partial, self._final)

    def discard(self) -> None:
        """Removes whatever was written (after a failed ingest)."""
        if not self._fh.closed:
            self._fh.close()
        for p in (self._partial, self._final):
            p.unlink(missing_ok=True)


class SpectrumShardWriter:
    """Writes spectra (flux, ivar) one after another into a new pair of shard files."""

    def __init__(self, root: Path, path: str):
        self.root = Path(root)
        self.path = path
        self.n_spectra = 0
        self.n_pixels = 0
        base = self.root / path
        base.parent.mkdir(parents=True, exist_ok=True)
        self._final = [base.with_name(base.name + ext) for ext in (".flux", ".ivar")]
        self._partial = [p.with_name(p.name + ".partial") for p in self._final]
        self._fh = [open(p, "wb") for p in self._partial]  # noqa: SIM115 - open while spectra stream in

    def append(self, flux: np.ndarray, ivar: np.ndarray) -> int:
        """Appends one spectrum; returns the offset of its first pixel."""
        if flux.shape != ivar.shape or flux.ndim != 1:
            raise ValueError("flux and ivar must be 1-D arrays of the same length")
        offset = self.n_pixels
        self._fh[0].write(np.ascontiguousarray(flux, dtype=DTYPE).tobytes())
        self._fh[1].write(np.ascontiguousarray(ivar, dtype=DTYPE).tobytes())
        self.n_pixels += flux.size
        self.n_spectra += 1
        return offset

    def close(self) -> None:
        for fh, partial, final in zip(self._fh, self._partial, self._final, strict=True):
            if not fh.closed:
                fh.close()
                os.replace(partial, final)

    def discard(self) -> None:
        for fh in self._fh:
            if not fh.closed:
                fh.close()
        for p in (*self._partial, *self._final):
            p.unlink(missing_ok=True)


def spectrum_shard_files(root: Path, path: str) -> tuple[Path, Path]:
    base = Path(root) / path
    return base.with_name(base.name + ".flux"), base.with_name(base.name + ".ivar")


def image_shard_files(root: Path, path: str) -> tuple[Path]:
    return (Path(root) / path,)


class _MemmapCache:
    """A small LRU of open memory maps, so repeated reads do not reopen files."""

    def __init__(self, size: int = 64):
        self.size = size
        self._maps: OrderedDict[tuple, np.memmap] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, shape: tuple[int, ...]) -> np.memmap:
        key = (str(path), shape)
        with self._lock:
            mm = self._maps.get(key)
            if mm is not None:
                self._maps.move_to_end(key)
                return mm
        mm = np.memmap(path, dtype=DTYPE, mode="r", shape=shape)
        with self._lock:
            self._maps[key] = mm
            while len(self._maps) > self.size:
                self._maps.popitem(last=False)
        return mm

    def clear(self) -> None:
        with self._lock:
            self._maps.clear()


_MAPS = _MemmapCache()


def read_images(root: Path, path: str, shape: tuple[int, int, int], rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """Images at ``rows`` of one shard of ``shape`` (n, height, width), as a new array."""
    mm = _MAPS.get(Path(root) / path, tuple(shape))
    rows = np.asarray(rows, dtype=np.int64)
    order = np.argsort(rows, kind="stable")
    out = np.empty((rows.size, shape[1], shape[2]), dtype=np.float32)
    out[order] = mm[rows[order]]  # sorted rows read the file sequentially
    return out


def read_spectra(
    root: Path,
    path: str,
    n_pixels_total: int,
    offsets: Sequence[int] | np.ndarray,
    lengths: Sequence[int] | np.ndarray,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(flux, ivar) arrays of the spectra at ``offsets`` of one spectrum shard."""
    flux_path, ivar_path = spectrum_shard_files(root, path)
    flux = _MAPS.get(flux_path, (int(n_pixels_total),))
    ivar = _MAPS.get(ivar_path, (int(n_pixels_total),))
    return [
        (np.array(flux[o : o + n]), np.array(ivar[o : o + n]))
        for o, n in zip(np.asarray(offsets).tolist(), np.asarray(lengths).tolist(), strict=True)
    ]


def place_on_grid(
    spectra: Sequence[tuple[np.ndarray, np.ndarray]],
    start_indices: Sequence[int],
    grid_start: int,
    grid_length: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Stacks spectra onto one common log-lambda grid; pixels outside a spectrum get ivar 0."""
    flux = np.zeros((len(spectra), grid_length), dtype=np.float32)
    ivar = np.zeros_like(flux)
    for i, ((f, iv), start) in enumerate(zip(spectra, start_indices, strict=True)):
        lo = start - grid_start
        a, b = max(lo, 0), min(lo + f.size, grid_length)
        if a < b:
            flux[i, a:b] = f[a - lo : b - lo]
            ivar[i, a:b] = iv[a - lo : b - lo]
    return flux, ivar


def release_maps() -> None:
    """Closes cached memory maps (after shards are deleted)."""
    _MAPS.clear()
