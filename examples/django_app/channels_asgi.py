"""Django with Channels: HTTP views and websocket consumers behind one guard.

Run from examples/:   daphne django_app.channels_asgi:application
Try:                  curl -s localhost:8000/ -H 'x-msisdn: 447700900123'
                      and a websocket handshake to ws://localhost:8000/ws with the same header

Wrap the `ProtocolTypeRouter`, not each entry in it: one guard in front of both protocols, and
in front of whatever Channels middleware (`AuthMiddlewareStack`, `AllowedHostsOriginValidator`)
you put around the consumers, which read the handshake's headers and cookies.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_app.settings")
http = get_asgi_application()  # first: it sets Django up before consumers are imported

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from guard import PrivacyGuard  # noqa: E402

from .consumers import HeadersConsumer  # noqa: E402

application = PrivacyGuard(
    ProtocolTypeRouter(
        {
            "http": http,
            "websocket": URLRouter([path("ws", HeadersConsumer.as_asgi())]),
        }
    )
)
