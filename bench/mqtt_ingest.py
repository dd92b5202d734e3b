"""How much one printer report costs: in the client, and end to end in a real Home Assistant core.

    .venv/bin/python bench/mqtt_ingest.py [--reports 20000]

Client: JSON parse, merge into the printer's state and change detection, per report, for a P1
delta (a few keys), an X1-size full report (~14 kB, a few values changed each time) and an X1C
with four AMS units whose humidity, temperatures, remaining percent and loaded tray move.
End to end: the same reports through the integration's entities in a Home Assistant core
(2025.4.4), with the state writes per report counted and checked against the number of entities
whose shown value really changed. Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import pathlib
import statistics
import sys
import tempfile
import time
from typing import Any
from unittest.mock import patch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from orjson import dumps, loads

from custom_components.print_farm.protocols.bambu import BambuClient, ConnectionState

SERIAL = "01P00A000000001"


def full_report() -> dict[str, Any]:
    """An X1-size full report (about 14 kB), written for this benchmark."""
    tray = {
        "id": "0",
        "remain": 80,
        "k": 0.02,
        "n": 1,
        "cali_idx": -1,
        "tag_uid": "0000000000000000",
        "tray_id_name": "A00-W1",
        "tray_info_idx": "GFA00",
        "tray_type": "PLA",
        "tray_sub_brands": "PLA Basic",
        "tray_color": "FFFFFFFF",
        "tray_weight": "1000",
        "tray_diameter": "1.75",
        "tray_temp": "55",
        "tray_time": "8",
        "bed_temp_type": "1",
        "bed_temp": "35",
        "nozzle_temp_max": "230",
        "nozzle_temp_min": "190",
        "xcam_info": "000000000000000000000000",
        "tray_uuid": "00000000000000000000000000000000",
        "ctype": 0,
        "cols": ["FFFFFFFF"],
    }
    units = [
        {
            "id": str(unit),
            "humidity": "4",
            "humidity_raw": "20",
            "temp": "25.1",
            "dry_time": 0,
            "info": "1001",
            "tray": [{**tray, "id": str(slot)} for slot in range(4)],
        }
        for unit in range(4)
    ]
    report: dict[str, Any] = {
        "command": "push_status",
        "msg": 0,
        "sequence_id": "1",
        "gcode_state": "RUNNING",
        "stg": [2, 14, 1, 8, 0],
        "stg_cur": 0,
        "mc_print_stage": "2",
        "mc_percent": 10,
        "mc_remaining_time": 90,
        "mc_print_line_number": "1000",
        "mc_print_sub_stage": 0,
        "layer_num": 5,
        "total_layer_num": 200,
        "gcode_file": "/data/Metadata/plate_1.gcode",
        "subtask_name": "Bench part",
        "gcode_start_time": "1763800000",
        "print_type": "local",
        "nozzle_temper": 219.9,
        "nozzle_target_temper": 220,
        "bed_temper": 54.9,
        "bed_target_temper": 55,
        "chamber_temper": 31,
        "wifi_signal": "-48dBm",
        "print_error": 0,
        "hms": [],
        "spd_lvl": 2,
        "spd_mag": 100,
        "fan_gear": 0,
        "heatbreak_fan_speed": "15",
        "cooling_fan_speed": "15",
        "big_fan1_speed": "0",
        "big_fan2_speed": "0",
        "nozzle_diameter": "0.4",
        "nozzle_type": "hardened_steel",
        "lights_report": [
            {"node": "chamber_light", "mode": "on"},
            {"node": "work_light", "mode": "flashing"},
        ],
        "ipcam": {"ipcam_dev": "1", "ipcam_record": "enable", "timelapse": "disable", "resolution": "1080p"},
        "upload": {"status": "idle", "progress": 0, "message": ""},
        "net": {"conf": 16, "info": [{"ip": 1359612426, "mask": 16777215}, {"ip": 0, "mask": 0}]},
        "xcam": {
            "allow_skip_parts": False,
            "buildplate_marker_detector": True,
            "first_layer_inspector": True,
        },
        "online": {"ahb": False, "rfid": True, "version": 7},
        "upgrade_state": {"sequence_id": 0, "progress": "", "status": "IDLE", "new_ver_list": []},
        "ams": {
            "ams": units,
            "ams_exist_bits": "f",
            "tray_exist_bits": "ffff",
            "tray_is_bbl_bits": "ffff",
            "tray_now": "1",
            "tray_pre": "1",
            "tray_tar": "1",
            "version": 12,
            "insert_flag": True,
            "power_on_flag": False,
        },
        "vt_tray": {**tray, "id": "254", "tray_type": "PETG"},
        "s_obj": [],
        "queue_number": 0,
        "sdcard": True,
    }
    return report


def p1_deltas(count: int) -> list[bytes]:
    """Delta reports like a P1S sends while printing: temperatures, line numbers, now and then progress."""
    messages = []
    for index in range(count):
        delta: dict[str, Any] = {
            "nozzle_temper": 219.5 + (index % 7) * 0.25,
            "bed_temper": 54.8 + (index % 5) * 0.05,
            "mc_print_line_number": str(1000 + index),
            "command": "push_status",
            "msg": 1,
            "sequence_id": str(index),
        }
        if index % 10 == 0:
            delta["mc_percent"] = 10 + index // 10 % 90
            delta["mc_remaining_time"] = 90 - index // 10 % 90
        if index % 25 == 0:
            delta["layer_num"] = 5 + index // 25 % 195
        if index % 3 == 0:
            delta["wifi_signal"] = f"-{45 + index % 4}dBm"
        messages.append(dumps({"print": delta}))
    return messages


def x1_fulls(count: int) -> list[bytes]:
    """Full reports like an X1 sends: the whole object, with a few values moving."""
    base = full_report()
    messages = []
    for index in range(count):
        report = copy.deepcopy(base)
        report["sequence_id"] = str(index)
        report["mc_print_line_number"] = str(1000 + index)
        report["nozzle_temper"] = 219.5 + (index % 7) * 0.25
        report["bed_temper"] = 54.8 + (index % 5) * 0.05
        report["mc_percent"] = 10 + index // 10 % 90
        report["mc_remaining_time"] = 90 - index // 10 % 90
        messages.append(dumps({"print": report}))
    return messages


def x1_ams_fulls(count: int) -> list[bytes]:
    """Full reports of an X1C with four AMS units whose values move, as while printing from them.

    Each report moves the temperatures; every 10th an AMS temperature or humidity, every 50th a
    tray's remaining percent, every 200th the loaded tray (ams.tray_now and device.extruder).
    """
    base = full_report()
    base["device"] = {
        "extruder": {"info": [{"id": 0, "snow": 1, "spre": 1, "star": 1, "temp": 220}], "state": 1},
        "nozzle": {"exist": 1, "info": [{"id": 0, "diameter": 0.4, "type": "HS01"}], "state": 0},
    }
    base["vir_slot"] = [copy.deepcopy(base["vt_tray"])]
    for unit in base["ams"]["ams"]:
        for tray in unit["tray"]:
            tray["tray_uuid"] = f"{int(unit['id']) * 4 + int(tray['id']):032X}"
            tray["tag_uid"] = f"{int(unit['id']) * 4 + int(tray['id']) + 1:016X}"
    messages = []
    for index in range(count):
        report = copy.deepcopy(base)
        report["sequence_id"] = str(index)
        report["mc_print_line_number"] = str(1000 + index)
        report["nozzle_temper"] = 219.5 + (index % 7) * 0.25
        report["bed_temper"] = 54.8 + (index % 5) * 0.05
        report["mc_percent"] = 10 + index // 10 % 90
        report["mc_remaining_time"] = 90 - index // 10 % 90
        units = report["ams"]["ams"]
        units[index // 10 % 4]["temp"] = f"{25 + index // 10 % 3 * 0.1:.1f}"
        units[(index // 10 + 1) % 4]["humidity_raw"] = str(20 + index // 10 % 2)
        units[index // 50 % 4]["tray"][index // 200 % 4]["remain"] = 80 - index // 50 % 60
        loaded = index // 200 % 16
        report["ams"]["tray_now"] = str(loaded)
        report["device"]["extruder"]["info"][0]["snow"] = (loaded // 4) << 8 | loaded % 4
        messages.append(dumps({"print": report}))
    return messages


def new_client(loop: asyncio.AbstractEventLoop) -> BambuClient:
    """A client fed directly, as its MQTT thread would feed it."""
    client = BambuClient(loop, "127.0.0.1", SERIAL, "12345678", fingerprint="0" * 64)
    client._first_report.set_result(None)
    client.online = True
    client.connection = ConnectionState.CONNECTED
    client.ingest(loads(dumps({"print": full_report()})))
    return client


def time_client(
    loop: asyncio.AbstractEventLoop, messages: list[bytes], rounds: int = 5
) -> tuple[float, float]:
    """Best and median microseconds per report for parse + merge + change detection."""
    results = []
    for _ in range(rounds):
        client = new_client(loop)
        ingest = client.ingest
        started = time.perf_counter()
        for message in messages:
            ingest(loads(message))
        results.append((time.perf_counter() - started) / len(messages) * 1e6)
    return min(results), statistics.median(results)


def time_json_only(messages: list[bytes]) -> float:
    """Microseconds per report for parsing alone (the floor)."""
    started = time.perf_counter()
    for message in messages:
        loads(message)
    return (time.perf_counter() - started) / len(messages) * 1e6


async def end_to_end(messages: list[bytes], label: str) -> None:
    """Feed reports through a real Home Assistant core with the integration's entities."""
    from homeassistant.config_entries import ConfigSubentryData
    from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED
    from homeassistant.core import Event, callback
    from homeassistant.loader import DATA_CUSTOM_COMPONENTS
    from pytest_homeassistant_custom_component.common import MockConfigEntry, async_test_home_assistant

    with tempfile.TemporaryDirectory() as config_dir, patch.object(BambuClient, "start", lambda self: None):
        async with async_test_home_assistant(config_dir=config_dir) as hass:
            hass.data.pop(DATA_CUSTOM_COMPONENTS, None)
            (pathlib.Path(config_dir) / "custom_components").symlink_to(
                pathlib.Path(__file__).resolve().parents[1] / "custom_components"
            )
            entry = MockConfigEntry(
                domain="print_farm",
                data={"discovery_port": 0},
                subentries_data=[
                    ConfigSubentryData(
                        data={
                            "host": "127.0.0.1",
                            "serial": SERIAL,
                            "access_code": "12345678",
                            "mqtt_port": 8883,
                            "ftps_port": 990,
                            "fingerprint": "0" * 64,
                        },
                        subentry_type="printer",
                        title="Bench",
                        unique_id=SERIAL,
                    )
                ],
            )
            entry.add_to_hass(hass)
            assert await hass.config_entries.async_setup(entry.entry_id)
            await hass.async_block_till_done()
            client = next(iter(entry.runtime_data.printers.values())).client
            # As if the printer had connected and sent its first full report.
            client._set_connection(ConnectionState.CONNECTED)
            client._report_received(client.ingest(loads(dumps({"print": full_report()}))) or {})
            await hass.async_block_till_done()

            writes = 0

            @callback
            def count(event: Event) -> None:
                nonlocal writes
                writes += 1

            hass.bus.async_listen(EVENT_STATE_CHANGED, count)
            hass.bus.async_listen(EVENT_STATE_REPORTED, count, event_filter=callback(lambda data: True))

            def feed(message: bytes) -> None:
                updates = client.ingest(loads(message))
                if updates is not None:
                    client._report_received(updates)

            # Check pass (not timed): writes per report == entities whose shown state changed.
            entity_ids = [
                state.entity_id
                for state in hass.states.async_all()
                if state.entity_id.split(".")[1].startswith("bench")
            ]

            def snapshot() -> dict[str, Any]:
                return {
                    entity_id: (state.state, dict(state.attributes))
                    if (state := hass.states.get(entity_id))
                    else None
                    for entity_id in entity_ids
                }

            mismatches = 0
            changed_entities = 0
            check = messages[: min(500, len(messages))]
            for message in check:
                before, writes = snapshot(), 0
                feed(message)
                await hass.async_block_till_done()
                after = snapshot()
                really = sum(1 for entity_id in entity_ids if before[entity_id] != after[entity_id])
                changed_entities += really
                mismatches += writes != really

            # Timed pass: the report path and the state writes, bus included, in batches.
            writes = 0
            batch = 200
            started = time.perf_counter()
            for offset in range(0, len(messages), batch):
                for message in itertools.islice(messages, offset, offset + batch):
                    feed(message)
                await hass.async_block_till_done()
            elapsed = time.perf_counter() - started
            print(
                f"  end to end, {label}: {elapsed / len(messages) * 1e6:7.1f} us/report, "
                f"{writes / len(messages):.2f} state writes/report "
                f"({len(entity_ids)} entities; check over {len(check)} reports: "
                f"{changed_entities / len(check):.2f} entities really changed per report, "
                f"{mismatches} reports where writes != changed entities)"
            )
            await hass.config_entries.async_unload(entry.entry_id)
            await hass.async_block_till_done()


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=20000)
    args = parser.parse_args()
    deltas = p1_deltas(args.reports)
    fulls = x1_fulls(max(args.reports // 4, 1000))
    ams_fulls = x1_ams_fulls(max(args.reports // 4, 1000))
    print(
        f"report sizes: P1 delta {statistics.mean(map(len, deltas)):.0f} B, X1 full {statistics.mean(map(len, fulls)):.0f} B, "
        f"X1 4-AMS {statistics.mean(map(len, ams_fulls)):.0f} B"
    )
    loop = asyncio.new_event_loop()
    print("client (parse + merge + change detection), best / median of 5:")
    for label, messages in (("P1 delta", deltas), ("X1 full ", fulls), ("X1 4-AMS", ams_fulls)):
        best, median = time_client(loop, messages)
        print(
            f"  {label}: {best:6.2f} / {median:6.2f} us/report   (JSON parse alone {time_json_only(messages):5.2f} us)"
        )
    loop.close()
    print("Home Assistant 2025.4.4 core, integration entities:")

    async def both() -> None:
        await end_to_end(deltas, "P1 delta")
        await end_to_end(fulls, "X1 full ")
        await end_to_end(ams_fulls, "X1 4-AMS")

    asyncio.run(both())


if __name__ == "__main__":
    main()
