"""One view: the request headers Django received, and proof that `request.META` has no MSISDN."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path


def headers(request: HttpRequest) -> JsonResponse:
    scope = getattr(request, "scope", {})  # ASGIRequest keeps the ASGI scope
    return JsonResponse(
        {
            "headers": dict(request.headers),
            "HTTP_X_MSISDN in request.META": "HTTP_X_MSISDN" in request.META,
            "privacy_guard": [f._asdict() for f in scope.get("privacy_guard", ())],
        }
    )


urlpatterns = [path("", headers)]
