"""The RTSPS camera of a simulated X1, X1E or H2: RTSP 1.0 over TLS, H.264 over RTP interleaved in it.

What real clients (ffmpeg, hence PyAV and Home Assistant's stream) need and no more: OPTIONS,
DESCRIBE (an SDP with the encoder's SPS and PPS), SETUP with RTP over the RTSP connection (UDP is
refused with 461, so clients fall back to TCP), PLAY, GET_PARAMETER (keep-alive) and TEARDOWN.
Every request but OPTIONS needs user bblp and the LAN access code, by Digest or Basic
authentication; a wrong code gets 401. Frames are drawn (the printer's name, state, progress and a
counter) and encoded with PyAV's libx264 only while a client plays: FPS frames a second, each
second a keyframe, packetized per RFC 6184 (single NAL units and FU-A) with 90 kHz timestamps.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
import contextlib
from fractions import Fraction
import hashlib
import re
import secrets
import ssl
import struct
from typing import Any, Final

import av
from PIL import Image

USERNAME: Final = "bblp"
REALM: Final = "Simulated Bambu Lab camera"
FPS: Final = 15
CLOCK: Final = 90000
PAYLOAD_TYPE: Final = 96
MAX_PAYLOAD: Final = 1400  # bytes of one RTP payload; bigger NAL units go as FU-A fragments
METHODS: Final = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"
REQUEST_TIMEOUT: Final = 60.0  # a session without a request (or RTCP) for this long is closed
START_CODE = re.compile(b"\x00\x00\x01")


class Encoder:
    """A libx264 encoder for pictures of one size, with the options every session uses.

    Its SPS and PPS hence are the SDP's; they come before every keyframe (no global header).
    """

    def __init__(self, size: tuple[int, int]) -> None:
        """Open the encoder: no B frames, a keyframe every second, no delay."""
        codec = av.CodecContext.create("libx264", "w")
        assert isinstance(codec, av.VideoCodecContext)
        codec.width, codec.height = size
        codec.pix_fmt = "yuv420p"
        codec.framerate = Fraction(FPS)
        codec.time_base = Fraction(1, FPS)
        codec.gop_size = FPS
        codec.max_b_frames = 0
        codec.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
        codec.open()
        self.codec = codec
        self.number = 0

    def encode(self, picture: Image.Image) -> list[bytes]:
        """The NAL units of one picture."""
        frame = av.VideoFrame.from_image(picture.convert("RGB"))
        frame.pts = self.number
        self.number += 1
        return [nal for packet in self.codec.encode(frame) for nal in split_nal_units(bytes(packet))]


def split_nal_units(data: bytes) -> Iterator[bytes]:
    """The NAL units of an Annex B byte stream (start codes 00 00 01 or 00 00 00 01)."""
    starts = [match.end() for match in START_CODE.finditer(data)]
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        nal = data[start:end].rstrip(b"\x00") if index + 1 < len(starts) else data[start:end]
        if nal:
            yield nal


def packetize(nal: bytes, last: bool) -> Iterator[tuple[bytes, bool]]:
    """RFC 6184 payloads of one NAL unit with their marker bit (set on the access unit's last one)."""
    if len(nal) <= MAX_PAYLOAD:
        yield nal, last
        return
    header, body = nal[0], nal[1:]
    indicator = (header & 0xE0) | 28  # FU-A, with the NAL unit's F and NRI bits
    for offset in range(0, len(body), MAX_PAYLOAD - 2):
        chunk = body[offset : offset + MAX_PAYLOAD - 2]
        first, end = offset == 0, offset + MAX_PAYLOAD - 2 >= len(body)
        fu_header = (0x80 if first else 0) | (0x40 if end else 0) | (header & 0x1F)
        yield bytes((indicator, fu_header)) + chunk, last and end


def parameter_sets(size: tuple[int, int]) -> tuple[bytes, bytes]:
    """The SPS and PPS the encoder writes for pictures of this size (as in every session's stream)."""
    encoder = Encoder(size)
    nals = encoder.encode(Image.new("RGB", size))
    sps = next(nal for nal in nals if nal[0] & 0x1F == 7)
    pps = next(nal for nal in nals if nal[0] & 0x1F == 8)
    return sps, pps


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # RTSP Digest is MD5


class RtspServer:
    """Serve one printer's RTSPS camera on host:port with the printer's certificate."""

    def __init__(
        self,
        host: str,
        port: int,
        context: ssl.SSLContext,
        access_code: Callable[[], str],
        picture: Callable[[int], Image.Image],
        size: tuple[int, int],
    ) -> None:
        """Prepare the server; `access_code` is read at every request, `picture(n)` draws frame n."""
        self.host, self.port, self.context = host, port, context
        self.access_code = access_code
        self.picture = picture
        self.size = size
        self._nonce = secrets.token_hex(16)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._sprop: str | None = None
        self.accepts = 0  # TLS connections since the start
        self.clients = 0  # sessions playing now
        self.plays = 0  # PLAY requests answered since the start
        self.refused = 0  # requests refused for a wrong user or access code (not the first challenge)
        self.frames = 0  # pictures encoded and sent since the start

    async def start(self) -> None:
        """Listen."""
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self.port, ssl=self.context)

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    def info(self) -> dict[str, Any]:
        """The counters the control API shows."""
        return {
            "accepts": self.accepts,
            "clients": self.clients,
            "plays": self.plays,
            "refused": self.refused,
            "frames": self.frames,
        }

    def _authorized(self, method: str, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "")
        scheme, _, rest = value.partition(" ")
        code = self.access_code()
        if scheme.lower() == "basic":
            try:
                return base64.b64decode(rest.strip()).decode() == f"{USERNAME}:{code}"
            except ValueError:
                return False
        if scheme.lower() != "digest":
            return False
        fields = dict(re.findall(r'(\w+)="?([^",]*)"?', rest))
        if fields.get("username") != USERNAME or fields.get("nonce") != self._nonce:
            return False
        ha1 = _md5(f"{USERNAME}:{REALM}:{code}")
        expected = _md5(f"{ha1}:{self._nonce}:{_md5(method + ':' + fields.get('uri', ''))}")
        return secrets.compare_digest(expected, fields.get("response", ""))

    def _sdp(self, url: str) -> str:
        if self._sprop is None:
            sps, pps = parameter_sets(self.size)
            self._sprop = f"{base64.b64encode(sps).decode()},{base64.b64encode(pps).decode()};" + (
                f"profile-level-id={sps[1:4].hex().upper()}"
            )
        return (
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=Simulated camera\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
            f"a=control:*\r\nm=video 0 RTP/AVP {PAYLOAD_TYPE}\r\na=rtpmap:{PAYLOAD_TYPE} H264/{CLOCK}\r\n"
            f"a=fmtp:{PAYLOAD_TYPE} packetization-mode=1;sprop-parameter-sets={self._sprop}\r\n"
            f"a=framerate:{FPS}\r\na=control:trackID=1\r\n"
        )

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepts += 1
        self._writers.add(writer)
        session = secrets.token_hex(8)
        playing: asyncio.Task[None] | None = None
        try:
            while True:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    first = await reader.readexactly(1)
                    if first == b"$":  # interleaved RTCP from the client: read past it
                        _, length = struct.unpack(">BH", await reader.readexactly(3))
                        await reader.readexactly(length)
                        continue
                    head = first + await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, url, _ = [*lines[0].split(" "), "", ""][:3]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in lines[1:] if line)
                }
                if length := int(headers.get("content-length", "0") or 0):
                    await reader.readexactly(length)
                reply: dict[str, str] = {"CSeq": headers.get("cseq", "0")}
                body = ""
                status = "200 OK"
                if method != "OPTIONS" and not self._authorized(method, headers):
                    self.refused += "authorization" in headers  # a challenge is no refusal
                    status = "401 Unauthorized"
                    reply["WWW-Authenticate"] = f'Digest realm="{REALM}", nonce="{self._nonce}"'
                elif method == "OPTIONS":
                    reply["Public"] = METHODS
                elif method == "DESCRIBE":
                    body = self._sdp(url)
                    reply["Content-Base"] = url.rstrip("/") + "/"
                    reply["Content-Type"] = "application/sdp"
                elif method == "SETUP":
                    transport = headers.get("transport", "")
                    if "RTP/AVP/TCP" not in transport.upper():
                        status = "461 Unsupported Transport"
                    else:
                        reply["Transport"] = "RTP/AVP/TCP;unicast;interleaved=0-1"
                        reply["Session"] = f"{session};timeout={int(REQUEST_TIMEOUT)}"
                elif method == "PLAY":
                    reply["Session"] = session
                    if playing is None:
                        self.plays += 1
                        playing = asyncio.ensure_future(self._play(writer))
                elif method in ("GET_PARAMETER", "TEARDOWN"):
                    reply["Session"] = session
                else:
                    status = "405 Method Not Allowed"
                    reply["Allow"] = METHODS
                if body:
                    reply["Content-Length"] = str(len(body.encode()))
                text = f"RTSP/1.0 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in reply.items())
                writer.write((text + "\r\n" + body).encode())
                await writer.drain()
                if method == "TEARDOWN":
                    return
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
            pass  # the client went away (ssl.SSLError is an OSError), went quiet, or sent garbage
        finally:
            if playing is not None:
                playing.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await playing
            self._writers.discard(writer)
            writer.transport.abort()

    async def _play(self, writer: asyncio.StreamWriter) -> None:
        """Draw, encode and send FPS pictures a second until cancelled."""
        self.clients += 1
        encoder = Encoder(self.size)
        loop = asyncio.get_running_loop()
        sequence, ssrc = secrets.randbelow(1 << 16), secrets.randbits(32)
        base, started = secrets.randbits(32), loop.time()
        try:
            for number in range(1 << 62):
                await asyncio.sleep(max(0.0, started + number / FPS - loop.time()))
                nals = encoder.encode(self.picture(self.frames))
                timestamp = (base + number * CLOCK // FPS) & 0xFFFFFFFF
                for index, nal in enumerate(nals):
                    for payload, marker in packetize(nal, index == len(nals) - 1):
                        rtp = struct.pack(
                            ">BBHII", 0x80, (0x80 if marker else 0) | PAYLOAD_TYPE, sequence, timestamp, ssrc
                        )
                        sequence = (sequence + 1) & 0xFFFF
                        writer.write(struct.pack(">cBH", b"$", 0, len(rtp) + len(payload)) + rtp + payload)
                await writer.drain()
                self.frames += 1
        except OSError:
            pass  # the client went away
        finally:
            self.clients -= 1
