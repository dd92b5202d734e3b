"""Fuzz every operation of the OpenAPI document through Home Assistant's HTTP stack.

The cases come from schemathesis's strategies for the document the integration serves, drawn with a
fixed seed, and are sent with `hass_client` inside this one async test: schemathesis's own
synchronous `case.call()` would block the event loop that serves the client, and `@given` on the
test itself would clash with the function-scoped `hass` fixture. A case fails on a 500, on any
status its operation does not declare, and on a success body that does not fit its declared schema.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import json
import random
from typing import Any
from urllib.parse import quote, unquote, urlencode

import aiohttp
from aiohttp.test_utils import TestClient
from homeassistant.components.http.security_filter import FILTERS, UNSAFE_URL_BYTES
from homeassistant.core import HomeAssistant
from hypothesis import HealthCheck, Phase, given, seed, settings
import jsonschema
import schemathesis
from schemathesis.generation.modes import GenerationMode
from schemathesis.schemas import APIOperation

from simulator.control import SimulatorControl

from .helpers import wait_until
from .test_openapi_schemas import GCODE, PREFIX, response_schema

SEED = 20250404
# Cases per operation: drawn from schemathesis, then made invalid from those (JSON and multipart bodies).
DRAWN = 25
MUTATED = 15
LOOPBACK = "127.0.0.1"
ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    1.5,
    2**63,
    -(2**63) - 1,
    1e308,
    float("nan"),
    float("inf"),
    "",
    " 1",
    "\u0661",
    "\x00",
    "x" * 300,
    [],
    {},
    [None],
    {"": None},
]
NOT_JSON = [b"", b"{", b"\xff\xfe\x00", b"nul", b'{"a": 1}{', b"[" * 50_000, b'{"a": ' * 50_000]
ODD_QUERY = ["", "TRUE", "-1", "1e3", "\u0661", "%", "9" * 30, "0x10", " 1"]
FILENAMES = ["cube.gcode", "part.gcode.3mf", "plate.3mf", "notes.txt", "", "../../x.gcode", "\u00fc.gcode"]


@dataclass
class Sent:
    """One request: what to send, and what it stands for in a failure message."""

    method: str
    template: str
    path: str
    label: str
    query: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    raw: bytes | None = None
    form: list[tuple[str, Any, str | None]] | None = None
    content_type: str | None = None

    def describe(self) -> str:
        shown = repr(self.json_body if self.raw is None else self.raw[:80])
        return f"{self.method.upper()} {self.path} {self.query or ''} [{self.label}] {shown[:200]}"


def draw_cases(operation: APIOperation) -> list[Any]:
    """DRAWN positive cases of an operation, the same on every run.

    `@seed` fixes Hypothesis's random source for this inner collector (it is not the test, so the
    `hass` fixture is not involved), the database is off and only the generate phase runs, so the
    same document, schemathesis and hypothesis versions give the same cases. Schemathesis's
    negative mode is not used: its mutations iterate sets of type names, so they change with the
    interpreter's string hash seed; invalid input comes from `mutate` below, from a seeded Random.
    """
    cases: list[Any] = []

    @settings(
        database=None,
        max_examples=DRAWN,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @seed(SEED)
    @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
    def collect(case: Any) -> None:
        cases.append(case)

    collect()
    return cases


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value (itself included) that a mutation may replace."""
    places = [path]
    if isinstance(value, dict):
        for key in value:
            places += _leaves(value[key], (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            places += _leaves(item, (*path, index))
    return places


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def mutate_json(body: Any, rng: random.Random) -> tuple[str, Any, bytes | None]:
    """An invalid variant of a valid JSON body: (label, JSON value, or raw bytes that are not JSON)."""
    kind = rng.choice(("replace", "replace", "drop", "extra", "not_json"))
    if kind == "drop" and isinstance(body, dict) and body:
        key = rng.choice(sorted(body))
        return f"drop {key}", {k: v for k, v in body.items() if k != key}, None
    if kind == "extra" and isinstance(body, dict):
        return "extra key", {**body, "unexpected": rng.choice(ODD_VALUES)}, None
    if kind == "not_json":
        raw = rng.choice(NOT_JSON)
        return f"not JSON {raw[:10]!r}", None, raw
    place = rng.choice(_leaves(body))
    odd = rng.choice(ODD_VALUES)
    return f"{'/'.join(map(str, place)) or 'body'} = {odd!r:.20}", _replace(body, place, odd), None


def pin_address(template: str, body: Any, sim_printer: dict[str, Any], sim_ejector: dict[str, Any]) -> Any:
    """Route any address or port in a body to the simulator on loopback, never to a generated one.

    A registration without ports would use the devices' default ports: it gets the simulator's too.
    """
    if not isinstance(body, dict):
        return body
    if template.startswith(f"{PREFIX}/printers"):
        ports = {"mqtt_port": sim_printer["mqtt_port"], "ftps_port": sim_printer["ftps_port"]}
    elif template.startswith(f"{PREFIX}/ottoeject"):
        ports = {"port": sim_ejector["port"]}
    else:
        return body
    pinned = dict(body)
    registering = template in (f"{PREFIX}/printers", f"{PREFIX}/ottoeject")
    if "ip_address" in pinned or registering:
        pinned["ip_address"] = LOOPBACK
    for key, port in ports.items():
        if key in pinned or registering:
            pinned[key] = port
    return pinned


def requests_for(
    operation: APIOperation,
    known: dict[str, list[str]],
    rng: random.Random,
    sim_printer: dict[str, Any],
    sim_ejector: dict[str, Any],
) -> list[Sent]:
    """The drawn cases of an operation as requests, and invalid variants of them."""
    method, template = operation.method.lower(), operation.path
    media_type = next(iter(operation.body), None)
    multipart = media_type is not None and media_type.media_type == "multipart/form-data"
    sent: list[Sent] = []
    for case in draw_cases(operation):
        parameters = dict(case.path_parameters or {})
        # Half the time the path names what exists (a printer, a run...), so bodies reach the rules;
        # always when a segment would vanish from the URL ("", ".", ".."), which makes another route.
        vanishing = any(unquote(value) in ("", ".", "..") for value in parameters.values())
        if parameters and (rng.random() < 0.5 or vanishing):
            parameters = {name: quote(rng.choice(known[name]), safe="") for name in parameters}
        request = Sent(
            method,
            template,
            template.format(**parameters),
            "drawn",
            query={name: _scalar(value) for name, value in (case.query or {}).items()},
        )
        if multipart:
            # aiohttp's client writes a part only under a plain ASCII name; others are left out.
            request.form = [
                (name, value.data, rng.choice(FILENAMES))
                if hasattr(value, "data")
                else (name, str(value), None)
                for name, value in (case.body or {}).items()
                if name and name.isascii() and name.isprintable() and '"' not in name
            ]
        elif media_type is not None:
            request.json_body = pin_address(template, case.body, sim_printer, sim_ejector)
        sent.append(request)
    if not (media_type is not None or operation.query):
        return sent
    for base in rng.sample(sent, min(MUTATED, len(sent))):
        variant = Sent(base.method, base.template, base.path, "", query=dict(base.query))
        if operation.query and (media_type is None or rng.random() < 0.3):
            name = rng.choice(sorted(parameter.name for parameter in operation.query))
            variant.query[name] = rng.choice(ODD_QUERY)
            variant.label = f"?{name}={variant.query[name]!r}"
            variant.json_body, variant.form = base.json_body, base.form
        elif multipart:
            choice = rng.choice(("no file", "not multipart", "json"))
            variant.label = choice
            if choice == "no file":
                variant.form = [("remote_filename", "cube.gcode", None)]
            elif choice == "not multipart":
                variant.raw, variant.content_type = rng.choice(NOT_JSON), "multipart/form-data; boundary=xyz"
            else:
                variant.json_body = {"file": "x"}
        else:
            label, body, raw = mutate_json(base.json_body, rng)
            variant.label, variant.raw = label, raw
            variant.json_body = pin_address(template, body, sim_printer, sim_ejector)
        sent.append(variant)
    return sent


def filtered_by_home_assistant(request: Sent) -> bool:
    """Whether Home Assistant's security filter refuses the URL (400) before any view sees it.

    The same checks as homeassistant/components/http/security_filter.py: a tab or line break in
    the decoded path, or an exploit-like pattern in the URL however often it is percent-encoded.
    """
    url = f"{unquote(request.path)}?{urlencode(request.query)}"
    if any(byte in url for byte in UNSAFE_URL_BYTES):
        return True
    while (decoded := unquote(url)) != url:
        url = decoded
    return bool(FILTERS.search(url))


async def send(client: TestClient, request: Sent) -> tuple[int, bytes]:
    """Send one request through Home Assistant's HTTP server."""
    kwargs: dict[str, Any] = {"params": request.query}
    if request.form is not None:
        form = aiohttp.FormData()
        for name, value, filename in request.form:
            form.add_field(name, value, **({"filename": filename} if filename is not None else {}))
        kwargs["data"] = form
    elif request.raw is not None:
        kwargs["data"] = request.raw
        kwargs["headers"] = {"Content-Type": request.content_type or "application/json"}
    elif request.json_body is not None or request.method in ("post", "put", "patch"):
        kwargs["data"] = json.dumps(request.json_body).encode()
        kwargs["headers"] = {"Content-Type": "application/json"}
    response = await client.request(request.method, request.path, **kwargs)
    return response.status, await response.read()


async def baseline(
    hass: HomeAssistant, client: TestClient, farm: Any, sim_ejector: dict[str, Any]
) -> dict[str, list[str]]:
    """Something of every kind for the cases to name: the ids of each path parameter."""

    async def made(method: str, path: str, **kwargs: Any) -> Any:
        response = await client.request(method, PREFIX + path, **kwargs)
        assert response.status in (200, 201), (path, await response.text())
        return await response.json()

    device = {
        "ip_address": sim_ejector["host"],
        "port": sim_ejector["port"],
        "api_key": sim_ejector["api_key"],
    }
    await made("post", "/ottoeject", json={"device_name": "Robot", **device})
    rack = {"name": "Rack", "number_of_shelves": 4, "shelf_spacing_mm": 80, "bed_size": "256x256"}
    await made("post", "/ottoracks", json={**rack, "ottoeject_id": 1})
    await made("put", "/printers/1", json={"ottoeject_id": 1, "ottoeject_position": "P1"})
    printer = farm.runtime_data.printer_by_id(1)
    await printer.client.wait_for_first_report(10)
    await wait_until(hass, lambda: printer.client.online and printer.client.fields["gcode_state"] is not None)
    form = aiohttp.FormData()
    form.add_field("file", GCODE, filename="part.gcode")
    item = (await made("post", "/print-jobs/upload", data=form))["print_item_id"]
    jobs = [
        (await made("post", "/print-jobs", json={"print_item_id": item, "printer_id": printer_id}))["id"]
        for printer_id in (1, None)
    ]
    spool = (await made("post", "/v1/spools", json={"name": "PLA", "material": "PLA", "price": 20}))["id"]
    product = (await made("post", "/v1/products", json={"name": "Stand"}))["id"]
    run = (await made("post", "/v1/production-runs", json={"estimated_total_filament_grams": 100}))["id"]
    run_item = (
        await made("post", f"/v1/production-runs/{run}/items", json={"product_id": product, "quantity": 2})
    )["id"]
    material = (await made("post", f"/v1/production-runs/{run}/materials", json={"spool_id": spool}))["id"]
    recipe = {
        "product_id": product,
        "materials": [{"material": "PLA", "grams_per_unit": 10, "spool_id": spool}],
    }
    recipe_id = (await made("post", "/v1/inventory/recipes", json=recipe))["id"]
    made_run = (
        await made("post", "/v1/inventory/production/runs", json={"recipe_id": recipe_id, "total_units": 2})
    )["id"]
    return {
        "printer_id": ["1"],
        "ejector_id": ["1"],
        "rack_id": ["1"],
        "shelf_id": ["1", "4"],
        "job_id": [str(job) for job in jobs],
        "item_id": [str(item), run_item],
        "decision": ["retry", "skip", "abort"],
        "run_id": [run, made_run],
        "material_id": [material],
        "spool_id": [spool],
        "product_id": [product],
        "recipe_id": [recipe_id],
    }


async def test_fuzz_every_operation(
    hass: HomeAssistant,
    client: TestClient,
    farm: Any,
    simulator: SimulatorControl,
    sim_printer: dict[str, Any],
    sim_ejector: dict[str, Any],
) -> None:
    document = await (await client.get(f"{PREFIX}/openapi.json")).json()
    known = await baseline(hass, client, farm, sim_ejector)
    await simulator.set_macro_seconds(sim_ejector["id"], 0)
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    # What removes things goes last, so that the other cases still find them.
    operations.sort(key=lambda operation: operation.method.lower() == "delete")
    rng = random.Random(SEED)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    count = 0
    for operation in operations:
        method = operation.method.lower()
        declared = document["paths"][operation.path][method]["responses"]
        for request in requests_for(operation, known, rng, sim_printer, sim_ejector):
            count += 1
            status, body = await send(client, request)
            statuses[status] += 1
            if filtered_by_home_assistant(request) and status == 400:
                continue  # Home Assistant's own refusal, the same for every route: not this API's
            if status == 500 or str(status) not in declared:
                failures.append(f"{status} {request.describe()}: {body[:200]!r}")
            elif 200 <= status < 300:
                try:
                    jsonschema.Draft202012Validator(
                        response_schema(document, method, operation.path, status)
                    ).validate(json.loads(body))
                except (ValueError, jsonschema.ValidationError) as err:
                    failures.append(f"{status} {request.describe()}: body does not fit: {err!s:.300}")
    assert count > len(operations) * DRAWN // 2
    assert not failures, (
        f"{len(failures)} of {count} cases failed (statuses {sorted(statuses.items())}):\n"
        + "\n".join(failures[:40])
    )
