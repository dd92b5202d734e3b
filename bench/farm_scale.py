"""A farm at scale: N simulated printers, one report a second each, into a real Home Assistant core.

    .venv/bin/python bench/farm_scale.py [--printers 100] [--seconds 60] [--model P1S] [--time-scale 60]

The simulator runs in its own process (with its N mosquitto brokers, one per printer, on
127.0.0.2...) on its realtime clock: once a real second its ticker moves every printer on by
`--time-scale` simulated seconds and publishes one report each, as long as the printer prints. Every
printer is given a two-day print, so it reports every second for the whole run; at the default 60x
each report changes the remaining time and the G-code line, and every minute or so the layer.

This process holds only Home Assistant's side (2025.4.4, the integration set up with one printer
subentry per simulated printer): its event loop and the MQTT clients' network threads. Printed:
- entry setup time (async_setup of the entry until Home Assistant is idle; target under 2 s), and
  the time until every printer has reported; the first setup hands out and stores every printer's
  id, so the entry is also set up a second time, as at a restart;
- CPU of this process over the measured window (every thread: loop, paho threads, executor) and of
  the event loop's thread alone, as a share of one core (target under 10 %), and the loop's lag;
- memory: RSS once Home Assistant is imported, with its core running, after setup, and at the end;
- reports received (push_status, counted in the MQTT callback) and state_changed events per report,
  with the entities that change most;
- the simulator's side: its process and brokers' RSS, open file descriptors and CPU, and whether
  it kept to one report a second per printer.
Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
import os
import pathlib
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from simulator.control import RunningSimulator, SimulatorControl, start_simulator

GCODE = (
    b"; HEADER_BLOCK_START\n; total estimated time: 2d 0h 0m 0s\n; total layer number: 2000\n"
    b"; HEADER_BLOCK_END\nG28\n"
)
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of a process in MiB."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE / 2**20


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process (not of its children)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def descriptors(pid: int) -> int:
    """Open file descriptors of a process."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def children(pid: int) -> list[int]:
    """The direct children of a process (the simulator's mosquitto brokers)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


class SimulatorSide:
    """CPU, memory and descriptors of the simulator process and its brokers."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.brokers = children(pid)
        self._start = self._cpu()

    def _cpu(self) -> tuple[float, float]:
        return cpu_seconds(self.pid), sum(cpu_seconds(broker) for broker in self.brokers)

    def report(self, seconds: float, printers: int) -> None:
        """Print the figures since this object was made."""
        simulator, brokers = self._cpu()
        broker_rss = [rss_mib(broker) for broker in self.brokers]
        broker_fds = [descriptors(broker) for broker in self.brokers]
        print(f"simulator side ({printers} printers, {len(self.brokers)} mosquitto processes):")
        print(
            f"  simulator process: RSS {rss_mib(self.pid):.0f} MiB, {descriptors(self.pid)} open fds, "
            f"CPU {100 * (simulator - self._start[0]) / seconds:.1f} % of a core"
        )
        if self.brokers:
            print(
                f"  mosquitto: RSS {sum(broker_rss):.0f} MiB in all ({statistics.mean(broker_rss):.1f} MiB "
                f"each), {statistics.mean(broker_fds):.0f} fds each, CPU "
                f"{100 * (brokers - self._start[1]) / seconds:.1f} % of a core in all"
            )
        print(f"  file descriptor limit: {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")


async def start_prints(control: SimulatorControl, printers: list[dict[str, Any]]) -> None:
    """Put a two-day print on every printer and start it, a few printers at a time."""
    gate = asyncio.Semaphore(10)

    async def start(printer: dict[str, Any]) -> None:
        async with gate:
            await control.put_file(printer["serial"], "scale.gcode", GCODE)
            await control.start_print(printer["serial"], "scale.gcode")

    await asyncio.gather(*(start(printer) for printer in printers))


def farm_entry(entry_cls: Any, subentry_cls: Any, printers: list[dict[str, Any]]) -> Any:
    """A Print Farm entry with one printer subentry per simulated printer, discovery off."""
    return entry_cls(
        domain="print_farm",
        title="Print Farm",
        data={"discovery_host": "127.0.0.1", "discovery_port": 0},
        subentries_data=[
            subentry_cls(
                data={
                    "host": printer["host"],
                    "serial": printer["serial"],
                    "access_code": printer["access_code"],
                    "mqtt_port": printer["mqtt_port"],
                    "ftps_port": printer["ftps_port"],
                    "fingerprint": printer["fingerprint"],
                    "model": printer["model"],
                    "firmware": None,
                },
                subentry_type="printer",
                title=f"Printer {index + 1}",
                unique_id=printer["serial"],
            )
            for index, printer in enumerate(printers)
        ],
    )


async def loop_lag(samples: list[float], stop: asyncio.Event) -> None:
    """Record how late a 100 ms timer fires, in ms, until stop is set."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + 0.1
        await asyncio.sleep(0.1)
        samples.append((loop.time() - due) * 1000)


async def measure(sim: RunningSimulator, args: argparse.Namespace, started: float) -> None:
    """Set the integration up in a Home Assistant core and measure it under the simulator's reports."""
    from homeassistant.config_entries import ConfigSubentryData
    from homeassistant.const import EVENT_STATE_CHANGED
    from homeassistant.core import Event, callback
    from homeassistant.helpers import entity_registry as er
    from homeassistant.loader import DATA_CUSTOM_COMPONENTS
    from pytest_homeassistant_custom_component.common import MockConfigEntry, async_test_home_assistant

    from custom_components.print_farm.protocols.bambu import BambuClient

    reports = Counter[str]()
    original_on_message = BambuClient._on_message

    def counting_on_message(self: BambuClient, client: Any, userdata: Any, message: Any) -> None:
        if b'"push_status"' in message.payload:
            reports[self.serial] += 1  # paho's threads: Counter updates are whole under the GIL
        original_on_message(self, client, userdata, message)

    BambuClient._on_message = counting_on_message  # type: ignore[method-assign]
    rss_before = rss_mib()
    try:
        with tempfile.TemporaryDirectory() as config_dir:
            async with async_test_home_assistant(config_dir=config_dir) as hass:
                hass.data.pop(DATA_CUSTOM_COMPONENTS, None)
                (pathlib.Path(config_dir) / "custom_components").symlink_to(
                    pathlib.Path(__file__).resolve().parents[1] / "custom_components"
                )
                entry = farm_entry(MockConfigEntry, ConfigSubentryData, sim.printers)
                entry.add_to_hass(hass)
                rss_core = rss_mib()
                setup_started = time.perf_counter()
                assert await hass.config_entries.async_setup(entry.entry_id)
                await hass.async_block_till_done()
                setup = time.perf_counter() - setup_started
                farm = entry.runtime_data
                await asyncio.gather(
                    *(printer.client.wait_for_first_report(60) for printer in farm.printers.values())
                )
                all_reported = time.perf_counter() - setup_started
                rss_setup = rss_mib()
                registry = er.async_get(hass)
                entities = er.async_entries_for_config_entry(registry, entry.entry_id)
                key_of = {item.entity_id: item.unique_id.split("_", 1)[-1] for item in entities}
                print(
                    f"Home Assistant side: {len(farm.printers)} printers, {len(entities)} entities "
                    f"({len(hass.states.async_all())} states)"
                )
                print(
                    f"  entry setup: {setup:.2f} s (target under 2 s); every printer reported after {all_reported:.2f} s"
                )
                await asyncio.sleep(args.warmup)

                changes = Counter[str]()

                @callback
                def count_change(event: Event[Any]) -> None:
                    changes[key_of.get(event.data["entity_id"], event.data["entity_id"])] += 1

                simulator = SimulatorSide(sim.process.pid)
                lag: list[float] = []
                stop_lag = asyncio.Event()
                lag_task = asyncio.create_task(loop_lag(lag, stop_lag))
                remove = hass.bus.async_listen(EVENT_STATE_CHANGED, count_change)
                reports_before = sum(reports.values())
                usage_before = resource.getrusage(resource.RUSAGE_SELF)
                thread_before = time.thread_time()
                wall_before = time.perf_counter()
                await asyncio.sleep(args.seconds)
                wall = time.perf_counter() - wall_before
                thread = time.thread_time() - thread_before
                usage = resource.getrusage(resource.RUSAGE_SELF)
                received = sum(reports.values()) - reports_before
                remove()
                stop_lag.set()
                await lag_task
                process_cpu = usage.ru_utime + usage.ru_stime - usage_before.ru_utime - usage_before.ru_stime
                writes = sum(changes.values())
                print(f"  measured over {wall:.0f} s:")
                print(
                    f"  CPU: process {100 * process_cpu / wall:.1f} % of one core, event loop thread "
                    f"{100 * thread / wall:.1f} % (target under 10 %)"
                )
                print(
                    f"  loop lag (100 ms timer): median {statistics.median(lag):.1f} ms, "
                    f"max {max(lag):.1f} ms"
                )
                print(
                    f"  memory: RSS {rss_before:.0f} MiB with Home Assistant imported, {rss_core:.0f} MiB with "
                    f"the core running, {rss_setup:.0f} MiB after setup, {rss_mib():.0f} MiB at the end "
                    f"(peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
                )
                per_printer = received / len(farm.printers) / wall
                print(
                    f"  reports received: {received} ({per_printer:.2f} per printer per second); state writes "
                    f"(state_changed events): {writes}, {writes / max(received, 1):.2f} per report"
                )
                top = ", ".join(
                    f"{key} {count / max(received, 1):.2f}" for key, count in changes.most_common(5)
                )
                print(f"  writes per report by entity kind: {top}")
                unload_started = time.perf_counter()
                await hass.config_entries.async_unload(entry.entry_id)
                await hass.async_block_till_done()
                unload = time.perf_counter() - unload_started
                # Set up again, as at every Home Assistant start: the printers' ids are stored now.
                setup_started = time.perf_counter()
                assert await hass.config_entries.async_setup(entry.entry_id)
                await hass.async_block_till_done()
                again = time.perf_counter() - setup_started
                print(
                    f"  entry unload: {unload:.2f} s; set up again (ids already stored, as at a restart): {again:.2f} s"
                )
                await hass.config_entries.async_unload(entry.entry_id)
                await hass.async_block_till_done()
                simulator.report(wall, len(sim.printers))
    finally:
        BambuClient._on_message = original_on_message  # type: ignore[method-assign]
    print(f"whole run: {time.perf_counter() - started:.0f} s")


async def run(args: argparse.Namespace) -> None:
    """Start the simulator, start every printer's print, then measure Home Assistant."""
    started = time.perf_counter()
    async with start_simulator(
        printers=args.printers,
        models=args.model,
        clock="realtime",
        time_scale=args.time_scale,
        timeout=180,
    ) as sim:
        ready = time.perf_counter() - started
        await start_prints(sim.control, sim.printers)
        print(
            f"simulator: {len(sim.printers)} {args.model} printers ready in {ready:.1f} s, printing at "
            f"{args.time_scale:g}x (one report a second each)"
        )
        await measure(sim, args, started)


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--printers", type=int, default=100, help="simulated printers (at most 250)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the measured window")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds between setup and the window")
    parser.add_argument("--model", default="P1S", help="simulated model (P1S: delta reports, X1C: full)")
    parser.add_argument("--time-scale", type=float, default=60.0, help="simulated seconds per real second")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
