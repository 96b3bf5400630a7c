"""Turning a validated scheme definition into rows (used by the service and the data migration).

The model classes are passed in, so that a migration can give its historical models and the
service the current ones: one way to build a version, not two.
"""


def build_version_rows(*, scheme_model, version_model, question_model, answer_model, definition: dict):
    """Creates the scheme if new and the next version of it with its questions and answers."""
    scheme, _ = scheme_model.objects.get_or_create(
        slug=definition["slug"],
        defaults={
            "name": definition["name"],
            "kind": definition["kind"],
            "description": definition.get("description", ""),
            "default_retire_after": definition.get("retire_after", 5),
        },
    )
    last = version_model.objects.filter(scheme=scheme).order_by("-number").first()
    version = version_model.objects.create(
        scheme=scheme, number=(last.number + 1) if last else 1, definition=definition
    )
    questions = {}
    for position, q in enumerate(definition["questions"]):
        questions[q["key"]] = question_model.objects.create(
            version=version,
            key=q["key"],
            text=q["text"],
            kind=q["kind"],
            position=position,
            required=q.get("required", True),
            default_key=q.get("default") or "",
        )
    answers = []
    for q in definition["questions"]:
        for position, a in enumerate(q["answers"]):
            answers.append(
                answer_model(
                    question=questions[q["key"]],
                    key=a["key"],
                    label=a["label"],
                    shortcut=a["shortcut"],
                    position=position,
                    next_question=questions.get(a["next"]) if a.get("next") else None,
                    grid_row=a.get("row"),
                    grid_column=a.get("column"),
                )
            )
    answer_model.objects.bulk_create(answers)
    if definition.get("root"):
        version.root = questions[definition["root"]]
        version.save(update_fields=["root"])
    return version
