"""Dataset exports: the current labels snapshotted into a packed, versioned file."""

import hashlib
import uuid
from pathlib import Path

import numpy as np
from django.db.models import Count

from catalog.errors import ApplicationError
from catalog.models import Band, DatasetExport, ModelTask
from catalog.selectors import cutout_arrays
from catalog.services.files import pack_root
from labeling.models import AnswerCount, GalaxyVoteTotal, Scheme
from labeling.services import version_spec
from mlworker.ml.morphology import MorphologyData

TEST_FRACTION_MODULUS = 5  # galaxy id % 5 == 0: the held-out split, fixed for a galaxy forever


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def morphology_dataset_export(*, variant: str, image_size: int = 64) -> tuple[DatasetExport, Band]:
    """Every galaxy with counted votes under the scheme's current version: its cutout in the
    survey's detection band and the vote counts of the scheme's first question."""
    scheme = Scheme.objects.filter(slug=variant).first()
    if scheme is None:
        raise ApplicationError(f"no scheme {variant!r} to train a morphology model on")
    version = scheme.current_version
    spec = version_spec(version.pk)
    first = spec.first_question
    answers = list(first.answers)  # in question order
    keys = [spec.answer_key[a] for a in answers]
    totals = dict(
        GalaxyVoteTotal.objects.filter(scheme_version=version, n_votes__gt=0).values_list("galaxy_id", "n_votes")
    )
    if len(totals) < 20:
        raise ApplicationError(f"only {len(totals)} galaxies have votes under {version}: too few to train")
    # One band for the whole dataset: the most common detection band with cutouts.
    band = Band.objects.filter(cutouts__galaxy_id__in=list(totals)).annotate(n=Count("cutouts")).order_by("-n").first()
    if band is None:
        raise ApplicationError("the voted galaxies have no cutouts")
    same_band = Band.objects.filter(
        name=band.name, pixel_scale_arcsec=band.pixel_scale_arcsec, psf_fwhm_arcsec=band.psf_fwhm_arcsec
    )
    galaxy_ids, images = [], []
    for b in same_band:
        found, pixels = cutout_arrays(galaxy_ids=sorted(totals), band=b, size=image_size)
        galaxy_ids.append(found)
        images.append(pixels)
    galaxy_ids = np.concatenate(galaxy_ids)
    images = np.concatenate(images)
    counts = np.zeros((len(galaxy_ids), len(answers)), dtype=np.int32)
    index = {g: i for i, g in enumerate(galaxy_ids.tolist())}
    column = {a: j for j, a in enumerate(answers)}
    for galaxy_id, answer_id, count in AnswerCount.objects.filter(
        scheme_version=version, answer_id__in=answers, galaxy_id__in=list(index)
    ).values_list("galaxy_id", "answer_id", "count"):
        counts[index[galaxy_id], column[answer_id]] = count
    n_votes = np.array([totals[g] for g in galaxy_ids.tolist()], dtype=np.int32)
    is_test = galaxy_ids % TEST_FRACTION_MODULUS == 0
    data = MorphologyData(
        images=images, counts=counts, n_votes=n_votes, galaxy_ids=galaxy_ids, is_test=is_test, answers=keys
    )
    relative = f"datasets/morphology/{variant}/{uuid.uuid4().hex}.npz"
    path = pack_root() / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    data.save(path)
    export = DatasetExport.objects.create(
        task=ModelTask.MORPHOLOGY,
        variant=variant,
        path=relative,
        n_train=int((~is_test).sum()),
        n_test=int(is_test.sum()),
        checksum=_sha256(path),
        description={
            "scheme_version": str(version),
            "question": first.key,
            "answers": keys,
            "band": band.name,
            "split": f"galaxy id % {TEST_FRACTION_MODULUS} == 0 held out",
            "image_size": image_size,
        },
    )
    return export, band
