"""A Celery worker whose morphology model is trivial (constant output, no pixels read), so
that a prediction run measures the platform alone. Used by bench/predict_platform.py."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import django

django.setup()

from mlworker import registry  # noqa: E402


def _load(self, version, device):
    return None


def _predict(self, version, loaded, subject_ids, device):
    return [
        registry.PredictionRow(i, {"main_class:spheroid": 0.5, "main_class:disk": 0.5}, 0.1, False) for i in subject_ids
    ]


registry.MorphologyTask.load = _load
registry.MorphologyTask.predict = _predict

if __name__ == "__main__":
    from celery.__main__ import main

    sys.exit(main())
