"""Classification schemes as data (no Django): the shipped definitions and their validation.

A definition is a JSON document: ``slug``, ``name``, ``kind`` ("flat": all questions at once,
as CANDELS; "tree": one question at a time, as Galaxy Zoo, from ``root`` following each
answer's ``next``), ``retire_after`` and ``questions``. A question has ``key``, ``text``,
``kind`` ("single", "multiple" or "grid"), ``required``, an optional ``default`` answer key,
and ``answers`` with ``key``, ``label``, ``shortcut`` (one key on the keyboard) and, for
trees, ``next`` (a question key or null), for grids ``row`` and ``column``. The files here
are frozen: a changed scheme is a new file and a new version, never an edited one.
"""

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUESTION_KINDS = ("single", "multiple", "grid")
RESERVED_KEYS = {"Enter", "/", "Backspace"}  # submit, skip, undo in the voting UI


def load(name: str) -> dict:
    """A shipped definition, e.g. ``load("candels_v1")``."""
    return json.loads((HERE / f"{name}.json").read_text())


def validate_definition(definition: dict) -> list[str]:
    """Every problem with a definition, as messages; an empty list means it is valid."""
    problems: list[str] = []
    if not isinstance(definition, dict):
        return ["a scheme definition must be a JSON object"]
    for field in ("slug", "name", "kind", "questions"):
        if field not in definition:
            problems.append(f"missing {field!r}")
    if problems:
        return problems
    kind = definition["kind"]
    if kind not in ("flat", "tree"):
        problems.append(f"kind must be 'flat' or 'tree', not {kind!r}")
    questions = definition["questions"]
    if not isinstance(questions, list) or not questions:
        return problems + ["questions must be a non-empty list"]
    keys = [q.get("key") for q in questions]
    if len(set(keys)) != len(keys) or not all(keys):
        problems.append("question keys must be present and unique")
    shortcuts_seen: dict[str, str] = {}
    for q in questions:
        where = f"question {q.get('key')!r}"
        if q.get("kind") not in QUESTION_KINDS:
            problems.append(f"{where}: kind must be one of {', '.join(QUESTION_KINDS)}")
        answers = q.get("answers") or []
        if not answers:
            problems.append(f"{where}: has no answers")
            continue
        answer_keys = [a.get("key") for a in answers]
        if len(set(answer_keys)) != len(answer_keys) or not all(answer_keys):
            problems.append(f"{where}: answer keys must be present and unique")
        if q.get("default") is not None and q["default"] not in answer_keys:
            problems.append(f"{where}: default {q['default']!r} is not one of its answers")
        if kind == "tree" and q.get("kind") != "single":
            problems.append(f"{where}: tree questions are single choice")
        if q.get("kind") == "grid":
            cells = {(a.get("row"), a.get("column")) for a in answers}
            rows, cols = len(q.get("rows", [])), len(q.get("columns", []))
            if cells != {(r, c) for r in range(rows) for c in range(cols)}:
                problems.append(f"{where}: grid answers must cover every row x column cell once")
        own: set[str] = set()
        for a in answers:
            shortcut = a.get("shortcut")
            if not isinstance(shortcut, str) or len(shortcut) != 1 or shortcut in RESERVED_KEYS:
                problems.append(
                    f"{where}: answer {a.get('key')!r} needs a one-character shortcut (not Enter, / or Backspace)"
                )
                continue
            if shortcut in own:
                problems.append(f"{where}: shortcut {shortcut!r} used twice")
            own.add(shortcut)
            # A flat scheme shows every question at once, so shortcuts must be unique across it.
            if kind == "flat":
                if shortcut in shortcuts_seen and shortcuts_seen[shortcut] != q.get("key"):
                    problems.append(
                        f"{where}: shortcut {shortcut!r} also used by question {shortcuts_seen[shortcut]!r}"
                    )
                shortcuts_seen[shortcut] = q.get("key")
            if kind == "tree" and a.get("next") is not None and a["next"] not in keys:
                problems.append(f"{where}: answer {a.get('key')!r} leads to unknown question {a['next']!r}")
    if kind == "tree" and not problems:
        problems += _tree_problems(definition)
    return problems


def _tree_problems(definition: dict) -> list[str]:
    root = definition.get("root")
    by_key = {q["key"]: q for q in definition["questions"]}
    if root not in by_key:
        return [f"root {root!r} is not a question"]
    # Every path must end (no cycles) and every question must be reachable from the root.
    problems, reached = [], set()

    def walk(key: str, path: tuple[str, ...]) -> None:
        if key in path:
            problems.append(f"cycle: {' -> '.join((*path, key))}")
            return
        reached.add(key)
        for a in by_key[key]["answers"]:
            if a.get("next"):
                walk(a["next"], (*path, key))

    walk(root, ())
    unreachable = set(by_key) - reached
    if unreachable:
        problems.append(f"questions not reachable from the root: {', '.join(sorted(unreachable))}")
    return problems
