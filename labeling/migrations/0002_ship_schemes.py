"""Ships the CANDELS (Kartaltepe et al. 2015) and Galaxy Zoo 2 schemes as data."""

from django.db import migrations

from labeling.schemes import load, validate_definition
from labeling.schemes.build import build_version_rows


def ship(apps, schema_editor):
    for name in ("candels_v1", "gz2_v1"):
        definition = load(name)
        problems = validate_definition(definition)
        if problems:
            raise ValueError(f"{name}: {problems}")
        Scheme = apps.get_model("labeling", "Scheme")
        if Scheme.objects.filter(slug=definition["slug"]).exists():
            continue
        build_version_rows(
            scheme_model=Scheme,
            version_model=apps.get_model("labeling", "SchemeVersion"),
            question_model=apps.get_model("labeling", "Question"),
            answer_model=apps.get_model("labeling", "Answer"),
            definition=definition,
        )


def unship(apps, schema_editor):
    apps.get_model("labeling", "Answer").objects.filter(question__version__scheme__slug__in=["candels", "gz2"]).delete()
    apps.get_model("labeling", "Question").objects.filter(version__scheme__slug__in=["candels", "gz2"]).delete()
    apps.get_model("labeling", "SchemeVersion").objects.filter(scheme__slug__in=["candels", "gz2"]).delete()
    apps.get_model("labeling", "Scheme").objects.filter(slug__in=["candels", "gz2"]).delete()


class Migration(migrations.Migration):
    dependencies = [("labeling", "0001_initial")]
    operations = [migrations.RunPython(ship, unship)]
