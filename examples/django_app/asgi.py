"""Django over ASGI: wrap what `get_asgi_application()` returns.

Run from examples/:   uvicorn django_app.asgi:application --lifespan off
Try:                  curl -s localhost:8000/ -H 'x-msisdn: 447700900123'

Django's ASGI handler does not speak the lifespan protocol (hence `--lifespan off`); the guard
then does its start-up work on the first request. Django middleware (MIDDLEWARE in settings)
all runs inside the guard.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from guard import PrivacyGuard

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")

application = PrivacyGuard(get_asgi_application())
