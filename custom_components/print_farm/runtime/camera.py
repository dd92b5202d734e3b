"""A printer's pictures: its camera (A1/P1 JPEG frames, the others' RTSPS) and its job's thumbnail.

The A1 and P1 send JPEG frames on port 6000; the X1, X1E, H2 and newer serve RTSPS on 322.

A JPEG connection is opened only for a still or while someone watches the stream, one per printer
shared by all of them, and closed once the last leaves. The RTSPS address carries the access code:
it is handed to Home Assistant's stream integration (and through it to go2rtc) and to nothing else
(no log, no attribute, no diagnostics).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
import contextlib
import ipaddress
import time
from typing import Any, Final
from urllib.parse import quote, urlsplit

from homeassistant.exceptions import HomeAssistantError

from ..const import CONF_ACCESS_CODE, CONF_CAMERA_PORT, CONF_FINGERPRINT, DOMAIN, LOGGER
from ..fileinfo import FileInfoError, Thumbnail, read_thumbnail
from ..protocols.bambu import (
    DEFAULT_CAMERA_PORT,
    BambuAuthError,
    BambuCamera,
    BambuCertificateError,
    BambuError,
)
from ..protocols.bambu.client import USERNAME
from ..protocols.bambu.models import canonical_model
from .printer import PrinterCoordinator

# The models whose camera sends JPEG frames on port 6000; every other model streams RTSPS on 322
# once LAN liveview is on (the X1 family, the H2 family, the P2S).
JPEG_MODELS: Final = frozenset({"A1", "A1 mini", "P1P", "P1S"})
RTSP_PORT: Final = 322
LIVEVIEW_OFF: Final = ("", "disable")
# Each step of a connection (connect, first frame) is bounded by CAMERA_TIMEOUT, a still as a whole
# by STILL_DEADLINE: shorter than Home Assistant's 10 s, so that our reason is the one shown.
CAMERA_TIMEOUT: Final = 5.0
STILL_DEADLINE: Final = 8.0
# A frame this young (seconds) serves a still without a new connection.
FRESH: Final = 2.0


class CameraError(HomeAssistantError):
    """The camera could not be read; the message says why, never with the access code."""


def camera_kind(printer: PrinterCoordinator) -> str:
    """Return "jpeg" for the A1 and P1 families, "rtsp" for the others (unknown models included)."""
    return "jpeg" if canonical_model(printer.model) in JPEG_MODELS else "rtsp"


def liveview_state(printer: PrinterCoordinator) -> bool | None:
    """Whether LAN liveview is on (an RTSPS address reported); None while the printer has not said."""
    url = printer.client.fields.get("rtsp_url")
    if not isinstance(url, str):
        return None
    return url.strip().lower() not in LIVEVIEW_OFF


def _is_ip(host: str | None) -> bool:
    try:
        ipaddress.ip_address(host or "")
    except ValueError:
        return False
    return True


def rtsp_source(printer: PrinterCoordinator) -> str | None:
    """rtsps://bblp:<code>@<host>:322/streaming/live/1 when liveview is on, else None.

    The printer reports the address it has on its own network. The host configured here is used
    when it is an IP address (a farm reaching the printer through another address, the simulator
    on loopback); when it is a name, the reported IP is used instead: go2rtc, which hands the
    stream to the browser, checks the certificate against a name (and the printer's names none),
    not against an IP address.
    """
    if not liveview_state(printer):
        return None
    reported = urlsplit(str(printer.client.fields["rtsp_url"]).strip())
    try:
        port = reported.port or RTSP_PORT
    except ValueError:
        port = RTSP_PORT
    path = reported.path or "/streaming/live/1"
    code = quote(str(printer.subentry.data[CONF_ACCESS_CODE]), safe="")
    host = printer.host
    if not _is_ip(host) and _is_ip(reported.hostname):
        host = str(reported.hostname)
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"rtsps://{USERNAME}:{code}@{host}:{port}{path}"


def _open(printer: PrinterCoordinator) -> BambuCamera:
    data = printer.subentry.data
    return BambuCamera(
        printer.host,
        printer.serial,
        str(data[CONF_ACCESS_CODE]),
        port=int(data.get(CONF_CAMERA_PORT) or DEFAULT_CAMERA_PORT),
        fingerprint=data.get(CONF_FINGERPRINT),
        timeout=CAMERA_TIMEOUT,
    )


def _translated(printer: PrinterCoordinator, err: BambuError) -> CameraError:
    if isinstance(err, BambuAuthError):
        key = "camera_refused"
    elif isinstance(err, BambuCertificateError):
        key = "camera_certificate"
    else:
        key = "camera_unavailable"
    # The library's texts name host, port and cause, never the access code.
    LOGGER.debug("Camera of %s: %s", printer.name, err)
    return _error(printer, key, str(err))


def _error(printer: PrinterCoordinator, key: str, error: str = "") -> CameraError:
    return CameraError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"name": printer.name, "error": error},
    )


class CameraFeed:
    """One connection to a printer's JPEG camera, shared by every still and every viewer.

    The A1 and P1 take only about two camera clients at once and send a frame about every two
    seconds (P1), so a printer never gets more than one connection from here: it is opened when
    the first still or viewer asks and closed when the last leaves. A still is served from the
    connection's latest frame while it runs, or from a frame at most FRESH seconds old.
    """

    def __init__(self, printer: PrinterCoordinator) -> None:
        """Prepare the feed; nothing connects until a frame is asked for."""
        self.printer = printer
        self._task: asyncio.Task[None] | None = None
        self._users = 0
        self._frame: bytes | None = None
        self._frame_at = 0.0
        self._number = 0  # frames received, over every connection
        self._first = 1  # the number of the running connection's first frame
        self._error: CameraError | None = None
        self._tick = asyncio.Event()

    @property
    def connected(self) -> bool:
        """Whether the connection to the printer is open (or opening)."""
        return self._task is not None and not self._task.done()

    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    def _ensure_running(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._error = None
            self._first = self._number + 1
            self._task = self.printer.entry.async_create_background_task(
                self.printer.hass, self._run(), f"{DOMAIN} camera {self.printer.name}"
            )
            self._task.add_done_callback(lambda _: self._wake())
        return self._task

    async def _run(self) -> None:
        camera = _open(self.printer)
        try:
            await camera.open()
            while True:
                frame = await camera.read_frame()
                self._frame, self._frame_at = frame, time.monotonic()
                self._number += 1
                self._wake()
        except BambuError as err:
            self._error = _translated(self.printer, err)
        finally:
            await camera.close()

    def _latest(self, fresh: float) -> bytes | None:
        if self._frame is None:
            return None
        live = self.connected and self._number >= self._first
        return self._frame if live or time.monotonic() - self._frame_at <= fresh else None

    async def frames(self, *, fresh: float = 0.0) -> AsyncGenerator[bytes]:
        """Frames as they come, the first possibly the latest one (up to `fresh` s old while idle).

        Raises CameraError when the connection fails or closes; the connection closes when the
        last user stops iterating.
        """
        self._users += 1
        try:
            seen = self._number
            if (latest := self._latest(fresh)) is not None:
                yield latest
            while True:
                task = self._ensure_running()
                while self._number == seen and not task.done():
                    await self._tick.wait()
                if self._number == seen:  # the connection ended without a new frame
                    raise self._error or _error(self.printer, "camera_unavailable", "connection closed")
                seen = self._number
                assert self._frame is not None
                yield self._frame
        finally:
            self._users -= 1
            if self._users == 0 and self._task is not None:
                self._task.cancel()

    async def still(self) -> bytes:
        """One frame within STILL_DEADLINE: the latest while connected, a recent one, or a new one."""
        if not self.printer.client.online and not self.connected:
            raise _error(self.printer, "printer_offline")
        frames = self.frames(fresh=FRESH)
        try:
            async with asyncio.timeout(STILL_DEADLINE):
                return await anext(frames)
        except TimeoutError:
            raise _error(
                self.printer, "camera_unavailable", f"no frame within {STILL_DEADLINE:.0f} s"
            ) from None
        finally:
            await frames.aclose()

    async def async_close(self) -> None:
        """Close the connection now; every viewer's frames end with an error."""
        if (task := self._task) is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


# The thumbnail formats a browser shows (a bgcode's QOI is not one of them).
IMAGE_TYPES: Final = {"png": "image/png", "jpg": "image/jpeg"}


def job_picture_key(printer: PrinterCoordinator) -> tuple[int, int, int, str] | None:
    """(job id, item id, plate, start time) of the printer's job with a picture, or None: the picture follows it."""
    jobs = printer.entry.runtime_data.jobs
    job = jobs.store.active_job(printer.printer_id)
    if job is None or job.print_item_id is None or job.print_item_id not in jobs.store.items:
        return None
    if _thumbnail_of(jobs.store.items[job.print_item_id].info, job.plate) is None:
        return None  # a file without a picture a browser shows: no picture, no time
    return job.id, job.print_item_id, job.plate, job.started_at or job.created_at


def _thumbnail(entry: Any) -> Thumbnail | None:
    """A thumbnail a browser can show, from the file's metadata; None for anything else or incomplete."""
    if not isinstance(entry, dict) or entry.get("format") not in IMAGE_TYPES:
        return None
    width, height, encoding = entry.get("width"), entry.get("height"), entry.get("encoding")
    if type(width) is not int or type(height) is not int or not isinstance(encoding, str):
        return None
    return Thumbnail(
        width=width,
        height=height,
        format=entry["format"],
        size=entry.get("size"),
        offset=entry.get("offset"),
        length=entry.get("length"),
        encoding=encoding,
        member=entry.get("member"),
    )


def _thumbnail_of(info: dict[str, Any], plate: int) -> Thumbnail | None:
    """The plate's own thumbnail (a .gcode.3mf), else the file's largest one a browser can show."""
    plates = [
        entry for entry in info.get("plates") or [] if isinstance(entry, dict) and entry.get("index") == plate
    ]
    candidates = [found for entry in plates[:1] if (found := _thumbnail(entry.get("thumbnail")))]
    others = [found for entry in info.get("thumbnails") or [] if (found := _thumbnail(entry))]
    candidates += sorted(others, key=lambda thumbnail: -thumbnail.width * thumbnail.height)
    return candidates[0] if candidates else None


async def async_job_picture(printer: PrinterCoordinator) -> tuple[bytes, str] | None:
    """(image bytes, content type) of the current job's plate thumbnail; None without a job or one."""
    if (key := job_picture_key(printer)) is None:
        return None
    farm = printer.entry.runtime_data
    item = farm.jobs.store.items[key[1]]
    if (thumbnail := _thumbnail_of(item.info, key[2])) is None:
        return None
    path = farm.jobs.items.path(item)
    try:
        data = await printer.hass.async_add_executor_job(read_thumbnail, path, thumbnail)
    except FileInfoError as err:
        LOGGER.debug("No thumbnail for %s: %s", item.filename, err)
        return None
    return data, IMAGE_TYPES[thumbnail.format]
