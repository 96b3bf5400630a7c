"""Turns an ApplicationError escaping a page view into a 4xx with its message (never a 500)."""

from django.http import HttpResponse
from django.template.loader import render_to_string

from catalog.errors import ApplicationError


class ApplicationErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, ApplicationError):
            return None
        if request.path.endswith(".png") or "application/json" in request.headers.get("Accept", ""):
            return HttpResponse(exception.message, status=exception.status_code, content_type="text/plain")
        body = render_to_string("catalog/error.html", {"message": exception.message}, request=request)
        return HttpResponse(body, status=exception.status_code)
