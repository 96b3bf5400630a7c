"""The API's one exception handler: ApplicationError -> 4xx with its message."""

from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from catalog.errors import ApplicationError


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        return Response({"detail": exc.message, **exc.extra}, status=exc.status_code)
    return drf_exception_handler(exc, context)
