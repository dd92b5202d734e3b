"""The camera of each printer: JPEG stills and an MJPEG stream (A1, P1), or RTSPS (X1, H2 and newer)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from homeassistant.components.camera import Camera, CameraEntityFeature
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import PrinterEntity, PrinterEntityDescription, async_setup_printer_platform
from .protocols.bambu import FIELD_VERSION
from .runtime.camera import CameraError, CameraFeed, camera_kind, liveview_state, rtsp_source
from .runtime.farm import PrintFarmConfigEntry
from .runtime.printer import PrinterCoordinator

PARALLEL_UPDATES = 0
BOUNDARY = "frameboundary"
LIVEVIEW = {True: "on", False: "off", None: "unknown"}

# The version says the model, hence the camera type, when the subentry did not know it.
CAMERA = PrinterEntityDescription(
    key="camera", translation_key="camera", fields=frozenset({"rtsp_url", FIELD_VERSION})
)


async def async_setup_entry(
    hass: HomeAssistant, entry: PrintFarmConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """One camera per printer."""
    async_setup_printer_platform(hass, entry, async_add_entities, lambda printer: [PrinterCamera(printer)])


class PrinterCamera(PrinterEntity, Camera):
    """A printer's camera, opened only while someone looks at it.

    A1 and P1: one connection to the printer's JPEG port (its feed), shared by stills and MJPEG
    viewers and held while any of them stays. X1, X1E, H2 and newer: the RTSPS address for Home
    Assistant's stream integration, while the printer reports LAN liveview on (the attribute
    `liveview` says when it is off); stills then come from that stream too.
    """

    def __init__(self, printer: PrinterCoordinator) -> None:
        """Bind the camera to its printer."""
        Camera.__init__(self)
        self.kind = camera_kind(printer)
        self.feed = CameraFeed(printer)
        self._viewers = 0  # MJPEG responses being written
        self._removed = False
        PrinterEntity.__init__(self, printer, CAMERA)

    def read(self) -> tuple[Any, ...]:
        """Availability, the camera type (the model may be known only later), liveview and the RTSPS address."""
        kind = camera_kind(self.printer)
        if kind != "rtsp":
            return (*super().read(), kind, None, None)
        return (*super().read(), kind, liveview_state(self.printer), rtsp_source(self.printer))

    def apply(self, shown: tuple[Any, ...]) -> None:
        """Set availability, the liveview attribute, the stream feature, and the stream's address."""
        super().apply(shown)
        self.kind, liveview, source = shown[1:]
        self._attr_extra_state_attributes = {"liveview": LIVEVIEW[liveview]} if self.kind == "rtsp" else {}
        self._attr_supported_features = CameraEntityFeature.STREAM if source else CameraEntityFeature(0)
        # Home Assistant keeps the address a stream was created with; the printer is changed in place.
        # A printer that has not reported yet (reconnecting with a new access code) keeps its stream.
        if (stream := self.stream) is not None and stream.source != source:
            if source:
                stream.update_source(source)
            elif liveview is False:
                self.stream = None
                self.hass.async_create_task(stream.stop())

    @property
    def use_stream_for_stills(self) -> bool:
        """Stills of an X1, X1E, H2 or newer come from its RTSPS stream (only while liveview is on)."""
        return CameraEntityFeature.STREAM in self.supported_features

    async def stream_source(self) -> str | None:
        """The RTSPS address with the access code, only while liveview is on (X1, H2 and newer)."""
        return rtsp_source(self.printer) if self.kind == "rtsp" else None

    async def async_camera_image(self, width: int | None = None, height: int | None = None) -> bytes | None:
        """A frame from the A1's or P1's camera: the feed's latest, or one read for it."""
        if self.kind != "jpeg":
            return None
        return await self.feed.still()

    async def async_will_remove_from_hass(self) -> None:
        """Close the printer's camera connection: no live view outlives its entity."""
        await super().async_will_remove_from_hass()
        self._removed = True
        await self.feed.async_close()  # every viewer's frames end

    def _viewer(self, change: int) -> None:
        """Count a viewer in or out; the state changes only with the first and the last."""
        self._viewers += change
        if (streaming := self._viewers > 0) != self._attr_is_streaming:
            self._attr_is_streaming = streaming
            if not self._removed and self.hass is not None:
                self.async_write_ha_state()

    async def handle_async_mjpeg_stream(self, request: web.Request) -> web.StreamResponse | None:
        """Frames as they come, from the printer's one connection, while the viewer stays."""
        if self.kind != "jpeg":
            return None
        frames = self.feed.frames()
        try:
            frame = await anext(frames)
        except CameraError:
            await frames.aclose()
            return None
        response = web.StreamResponse()
        response.content_type = f"multipart/x-mixed-replace;boundary={BOUNDARY}"
        self._viewer(+1)
        try:
            await response.prepare(request)
            while True:
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame)}\r\n\r\n"
                await response.write(head.encode() + frame + b"\r\n")
                frame = await anext(frames)
        except (CameraError, ConnectionResetError):
            pass  # the printer stopped sending, or the viewer left
        finally:
            await frames.aclose()
            self._viewer(-1)
        return response
