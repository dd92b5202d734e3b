"""SSDP NOTIFY announcements shaped like a Bambu Lab printer's, sent to loopback only."""

from __future__ import annotations

import socket


def notify_message(*, host: str, serial: str, model_code: str, name: str, firmware: str) -> bytes:
    """Return the NOTIFY datagram a printer at host sends on the LAN."""
    lines = [
        "NOTIFY * HTTP/1.1",
        "HOST: 239.255.255.250:1990",
        "Server: UPnP/1.0",
        f"Location: {host}",
        "NT: urn:bambulab-com:device:3dprinter:1",
        f"USN: {serial}",
        "Cache-Control: max-age=1800",
        f"DevModel.bambu.com: {model_code}",
        f"DevName.bambu.com: {name}",
        "DevSignal.bambu.com: -44",
        "DevConnect.bambu.com: lan",
        "DevBind.bambu.com: free",
        "Devseclink.bambu.com: secure",
        f"DevVersion.bambu.com: {firmware}",
        "DevCap.bambu.com: 1",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def announce(message: bytes, source_host: str, port: int) -> None:
    """Send one datagram from source_host to 127.0.0.1:port (never multicast); errors are ignored."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            # Sent from the printer's own loopback address, as a real printer sends from its IP.
            sock.bind((source_host, 0))
            sock.sendto(message, ("127.0.0.1", port))
        except OSError:
            pass  # nobody listening, or the address is gone: announcements are best effort
