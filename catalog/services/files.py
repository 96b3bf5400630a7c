"""Files written during an ingest: removed again if its transaction rolls back.

Database rows and files cannot share a transaction, so an ingest stages its files here:
new FITS files and pack shards are deleted if the transaction fails, and files that the
ingest replaced are deleted only once it has committed.
"""

import logging
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from catalog import packstore
from catalog.models import ImageShard, Survey

logger = logging.getLogger(__name__)


def pack_root() -> Path:
    return Path(settings.GALAXYLAB_PACK_ROOT)


class StagedFiles:
    def __init__(self) -> None:
        self.written: list[str] = []
        self.superseded: list[str] = []
        self.shards: list[packstore.ImageShardWriter | packstore.SpectrumShardWriter] = []

    def save(self, name: str, content: bytes) -> str:
        """Saves to default storage; returns the stored name (unique if ``name`` is taken)."""
        stored = default_storage.save(name, ContentFile(content))
        self.written.append(stored)
        return stored

    def supersede(self, name: str) -> None:
        if name:
            self.superseded.append(name)

    def image_shard(self, prefix: str, height: int, width: int) -> packstore.ImageShardWriter:
        writer = packstore.ImageShardWriter(pack_root(), packstore.new_shard_path(prefix, ".f32"), height, width)
        self.shards.append(writer)
        return writer

    def spectrum_shard(self, prefix: str) -> packstore.SpectrumShardWriter:
        writer = packstore.SpectrumShardWriter(pack_root(), packstore.new_shard_path(prefix))
        self.shards.append(writer)
        return writer

    def publish_shards(self) -> None:
        """Gives every shard still open its final name (call before the transaction commits)."""
        for writer in self.shards:
            writer.close()

    def commit_on_success(self) -> None:
        """Call inside the transaction: superseded files go once it commits."""
        superseded = list(self.superseded)
        transaction.on_commit(lambda: delete_stored_files(superseded))

    def rollback(self) -> None:
        """Call when the transaction failed: every file this ingest wrote is removed."""
        for writer in self.shards:
            writer.discard()
        delete_stored_files(self.written)


def delete_stored_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s", name)


def delete_shard_files(image_paths: list[str], spectrum_paths: list[str]) -> None:
    root = pack_root()
    packstore.release_maps()
    for path in image_paths:
        for p in packstore.image_shard_files(root, path):
            p.unlink(missing_ok=True)
    for path in spectrum_paths:
        for p in packstore.spectrum_shard_files(root, path):
            p.unlink(missing_ok=True)


class ImageShardSet:
    """Open image shards keyed by (band, shape); a full shard is closed and its rows created.

    Rows (cutouts or mock images) wait in memory until their shard is complete, because
    they point at the shard row, which is created with the shard's final size."""

    def __init__(self, survey: Survey, staged: StagedFiles, kind: str, prefix: str, model):
        self.survey, self.staged, self.kind, self.prefix, self.model = survey, staged, kind, prefix, model
        self.open: dict[tuple, tuple] = {}

    def add(self, key: tuple, image: np.ndarray, row_obj) -> None:
        entry = self.open.get(key + image.shape)
        if entry is None:
            entry = (self.staged.image_shard(self.prefix, *image.shape), [])
            self.open[key + image.shape] = entry
        writer, pending = entry
        row_obj.shard_row = writer.append(image)
        pending.append(row_obj)
        if writer.full:
            self.flush(key + image.shape)

    def flush(self, full_key: tuple) -> None:
        writer, pending = self.open.pop(full_key)
        writer.close()
        shard = ImageShard.objects.create(
            survey=self.survey,
            kind=self.kind,
            path=writer.path,
            height=writer.height,
            width=writer.width,
            n_images=writer.n_images,
        )
        new = [obj for obj in pending if obj.pk is None]
        old = [obj for obj in pending if obj.pk is not None]
        for obj in pending:
            obj.shard = shard
        self.model.objects.bulk_create(new, batch_size=2000)
        if old:
            self.model.objects.bulk_update(
                old,
                [
                    "fits_file",
                    "checksum",
                    "width",
                    "height",
                    "pixel_scale_arcsec",
                    "psf_fwhm_arcsec",
                    "shard",
                    "shard_row",
                ]
                + (["zero_point_ab"] if hasattr(old[0], "zero_point_ab") else []),
                batch_size=2000,
            )

    def flush_all(self) -> None:
        for key in list(self.open):
            self.flush(key)
