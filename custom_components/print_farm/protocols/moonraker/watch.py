"""Moonraker's websocket: Klipper's state pushed as it changes, instead of polled.

One JSON-RPC connection to `/websocket` subscribes to `webhooks` (Klipper ready, shut down, in
error) and `idle_timeout` (`Printing` while a G-code script runs, `Ready` or `Idle` once it has
ended). Every change reaches `on_change` at once; a dropped connection is retried with a growing
pause. Subscriptions are made again whenever Klipper comes back (`notify_klippy_ready`), since
Klipper forgets them when it restarts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import contextlib
import itertools
import json
import logging
from typing import Any, Final

import aiohttp
from yarl import URL

_LOGGER = logging.getLogger(__name__)

WEBSOCKET_PATH: Final = "/websocket"
SUBSCRIPTION: Final = {"webhooks": ["state", "state_message"], "idle_timeout": ["state"]}
RETRY_FIRST_S: Final = 1.0
RETRY_MAX_S: Final = 30.0
HEARTBEAT_S: Final = 20.0


class MoonrakerWatcher:
    """Klipper's `webhooks` and `idle_timeout` objects, kept current over Moonraker's websocket."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        host: str,
        port: int,
        *,
        api_key: str | None = None,
        on_change: Callable[[], None],
    ) -> None:
        """Prepare the watcher; `run` connects and keeps the connection."""
        self._session = session
        self._url = URL.build(scheme="ws", host=host, port=port, path=WEBSOCKET_PATH)
        self._headers: dict[str, str] = {"X-Api-Key": api_key} if api_key else {}
        self._on_change = on_change
        self._ids = itertools.count(1)
        self._subscribe_id: int | None = None
        self.connected = False  # the websocket is open and the subscription answered
        self.objects: dict[str, dict[str, Any]] = {}
        self.changes = 0  # how many updates came in (a macro's end is seen after the send's)

    def __repr__(self) -> str:
        """Name the device, never the API key."""
        return f"MoonrakerWatcher({self._url.host}:{self._url.port})"

    @property
    def klippy_state(self) -> str | None:
        """Klipper's state (ready, startup, shutdown, error), None when not known."""
        if not self.connected:
            return None
        state = self.objects.get("webhooks", {}).get("state")
        return str(state) if state is not None else None

    @property
    def idle_state(self) -> str | None:
        """`Printing` while a script runs, `Ready`/`Idle` when none does, None when not known."""
        if not self.connected or self.klippy_state != "ready":
            return None
        state = self.objects.get("idle_timeout", {}).get("state")
        return str(state) if state is not None else None

    async def run(self) -> None:
        """Keep the connection until cancelled."""
        pause = RETRY_FIRST_S
        while True:
            try:
                await self._session_once()
                pause = RETRY_FIRST_S  # it was up: the next drop is retried soon
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as err:
                _LOGGER.debug("%s: %s", self, err or type(err).__name__)
            self._lost()
            await asyncio.sleep(pause)
            pause = min(RETRY_MAX_S, pause * 2)

    def _lost(self) -> None:
        if self.connected:
            self.connected = False
            self._on_change()

    async def _session_once(self) -> None:
        async with self._session.ws_connect(
            self._url,
            headers=self._headers,
            heartbeat=HEARTBEAT_S,
            timeout=aiohttp.ClientWSTimeout(ws_close=5),
        ) as socket:
            await self._subscribe(socket)
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                with contextlib.suppress(ValueError):
                    await self._handle(socket, json.loads(message.data))

    async def _subscribe(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._subscribe_id = next(self._ids)
        await socket.send_str(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "printer.objects.subscribe",
                    "params": {"objects": SUBSCRIPTION},
                    "id": self._subscribe_id,
                }
            )
        )

    async def _handle(self, socket: aiohttp.ClientWebSocketResponse, message: Any) -> None:
        if not isinstance(message, dict):
            return
        method = message.get("method")
        if message.get("id") is not None and message.get("id") == self._subscribe_id:
            result = message.get("result")
            if isinstance(result, dict) and isinstance(result.get("status"), dict):
                self.objects = {
                    name: dict(values)
                    for name, values in result["status"].items()
                    if isinstance(values, dict)
                }
            else:  # Klipper not connected yet: notify_klippy_ready brings the subscription
                self.objects = {"webhooks": {"state": "disconnected"}}
            self.connected = True
            self._changed()
        elif method == "notify_status_update":
            params = message.get("params")
            status = params[0] if isinstance(params, list) and params else None
            if isinstance(status, dict):
                for name, values in status.items():
                    if isinstance(values, dict):
                        self.objects.setdefault(name, {}).update(values)
                self._changed()
        elif method == "notify_klippy_ready":
            await self._subscribe(socket)
        elif method in ("notify_klippy_shutdown", "notify_klippy_disconnected"):
            state = "shutdown" if method == "notify_klippy_shutdown" else "disconnected"
            self.objects.setdefault("webhooks", {})["state"] = state
            self._changed()

    def _changed(self) -> None:
        self.changes += 1
        self._on_change()
