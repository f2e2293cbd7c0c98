"""A Channels websocket consumer that echoes the handshake's headers, as the HTTP view does."""

from __future__ import annotations

from channels.generic.websocket import AsyncJsonWebsocketConsumer


class HeadersConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        scope = self.scope
        await self.accept()
        await self.send_json(
            {
                "headers": {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]},
                "privacy_guard": [f._asdict() for f in scope.get("privacy_guard", ())],
            }
        )
        await self.close()
