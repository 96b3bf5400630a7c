"""The one family of domain errors: each carries a message a user can act on.

Views, the API's exception handler and management commands turn them into a 4xx
response or a non-zero exit with that message; bad input never becomes a 500.
"""


class ApplicationError(Exception):
    """A failure caused by the request or input, explained in ``message``."""

    status_code = 400

    def __init__(self, message: str, *, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}


class NotFound(ApplicationError):
    status_code = 404


class Forbidden(ApplicationError):
    status_code = 403


class Conflict(ApplicationError):
    status_code = 409


class IngestError(ApplicationError):
    """Input that cannot be ingested; lists every problem found (file and row)."""

    MAX_LISTED = 20

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        shown = self.problems[: self.MAX_LISTED]
        more = len(self.problems) - len(shown)
        text = "\n".join(f"  - {p}" for p in shown)
        if more:
            text += f"\n  ... and {more} more problem(s)"
        super().__init__(f"ingest refused, nothing was written:\n{text}")
