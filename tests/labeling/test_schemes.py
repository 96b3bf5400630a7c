"""The shipped schemes, their validation and versioning."""

import copy

import pytest

from catalog.errors import ApplicationError
from labeling.models import Answer, Question, Scheme
from labeling.schemes import load, validate_definition
from labeling.services import scheme_version_create

pytestmark = pytest.mark.django_db


def test_shipped_candels_and_gz2():
    candels = Scheme.objects.get(slug="candels").current_version
    main = Question.objects.get(version=candels, key="main_class")
    assert main.kind == "multiple"
    assert list(main.answers.values_list("key", flat=True)) == [
        "spheroid",
        "disk",
        "irregular",
        "compact",
        "unclassifiable",
    ]
    assert Question.objects.get(version=candels, key="interaction").answers.count() == 5
    assert Question.objects.get(version=candels, key="structure").answers.count() == 9
    grid = Question.objects.get(version=candels, key="clumpiness_patchiness")
    assert grid.kind == "grid" and grid.answers.count() == 9
    gz2 = Scheme.objects.get(slug="gz2").current_version
    assert gz2.questions.count() == 11 and Answer.objects.filter(question__version=gz2).count() == 37
    assert gz2.root.key == "t01"
    assert Answer.objects.get(question__version=gz2, question__key="t01", key="smooth").next_question.key == "t07"
    assert Answer.objects.get(question__version=gz2, question__key="t01", key="star").next_question is None
    assert (
        Scheme.objects.get(slug="candels").default_retire_after,
        Scheme.objects.get(slug="gz2").default_retire_after,
    ) == (5, 40)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["questions"][0]["answers"].append(dict(d["questions"][0]["answers"][0])),
            "answer keys must be present and unique",
        ),
        (lambda d: d["questions"][1]["answers"][0].update(shortcut="1"), "shortcut '1' also used by question"),
        (lambda d: d["questions"][1].update(default="nope"), "default 'nope' is not one of its answers"),
        (lambda d: d["questions"][3]["answers"].pop(), "grid answers must cover every"),
        (lambda d: d["questions"][0]["answers"][0].update(shortcut="Enter"), "one-character shortcut"),
    ],
)
def test_candels_definition_checks(edit, message):
    definition = copy.deepcopy(load("candels_v1"))
    edit(definition)
    assert any(message in p for p in validate_definition(definition)), validate_definition(definition)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["questions"][5]["answers"][1].update(next="t01"), "cycle"),
        (lambda d: d["questions"][0]["answers"][2].update(next="t99"), "unknown question 't99'"),
        (lambda d: [a.update(next=None) for a in d["questions"][1]["answers"]], "not reachable"),
    ],
)
def test_tree_definition_checks(edit, message):
    definition = copy.deepcopy(load("gz2_v1"))
    edit(definition)
    assert any(message in p for p in validate_definition(definition)), validate_definition(definition)


def test_changing_questions_makes_a_new_version():
    definition = copy.deepcopy(load("candels_v1"))
    definition["questions"][2]["answers"].append({"key": "ring", "label": "Ring", "shortcut": "y"})
    version = scheme_version_create(definition=definition)
    assert version.number == 2 and Scheme.objects.get(slug="candels").current_version == version
    assert Answer.objects.filter(question__version=version, question__key="structure").count() == 10
    assert (
        Answer.objects.filter(
            question__version__number=1, question__version__scheme__slug="candels", question__key="structure"
        ).count()
        == 9
    )
    with pytest.raises(ApplicationError, match="invalid scheme definition"):
        scheme_version_create(definition={"slug": "x", "name": "x", "kind": "flat", "questions": []})
