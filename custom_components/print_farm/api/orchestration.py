"""The OttoEngine orchestration routes (seed 002, Phase 3) at /api/print_farm/orchestration.

`status`, `active-jobs` and `health` need a user, `restart` an administrator. The orchestrator here
follows changes as they happen rather than polling every 5 s: `polling_active` says whether it
follows them. `system` describes this Home Assistant process: its uptime and memory, and in the
place of `nodeVersion` the Python version it runs on.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from aiohttp import web
from homeassistant.util import dt as dt_util

from ..const import DOMAIN
from ..rules.jobs import OPEN_STATUSES, PRINTING, iso
from ..rules.settings import JOB_PROCESSING
from ..runtime.farm import PrintFarm
from .base import API_PREFIX, ApiError, FarmView, Operation, operation
from .shapes import BOOLEAN, INTEGER, STRING, array, mapping_of, nullable, shape

ORCHESTRATION = f"{API_PREFIX}/orchestration"


def _now() -> str | None:
    return iso(dt_util.utcnow())


_ACTIVE_JOB = shape(
    {
        "jobId": INTEGER,
        "printerId": nullable(INTEGER),
        "status": STRING,
        "progress_percent": INTEGER,
        "orchestration_status": STRING,
        "assigned_store_slot": nullable(INTEGER),
        "assigned_grab_slot": nullable(INTEGER),
        "started_at": nullable(STRING),
        "wait_reason": nullable(STRING),
    }
)
_SYSTEM = shape(
    {
        "uptime": nullable(INTEGER),
        "memory": shape({"used": nullable(INTEGER), "total": nullable(INTEGER)}),
        "nodeVersion": STRING,
    }
)
_STATISTICS = shape(
    {
        "jobs_processed": INTEGER,
        "jobs_completed": INTEGER,
        "jobs_failed": INTEGER,
        "average_completion_time_minutes": INTEGER,
    }
)
_ORCHESTRATOR = shape(
    {
        "initialized": BOOLEAN,
        "job_processing_enabled": BOOLEAN,
        "polling_active": BOOLEAN,
        "active_workflows": INTEGER,
        "statistics": _STATISTICS,
    }
)
_MONITORED = shape(
    {"jobId": INTEGER, "status": STRING, "progress_percent": INTEGER, "printer_id": nullable(INTEGER)}
)
STATUS_BODY = shape(
    {
        "success": BOOLEAN,
        "data": shape(
            {
                "timestamp": STRING,
                "phase3": shape(
                    {"orchestrator": _ORCHESTRATOR, "activeJobs": INTEGER, "monitoring": array(_MONITORED)}
                ),
                "system": _SYSTEM,
            }
        ),
    }
)
ACTIVE_JOBS_BODY = shape(
    {"success": BOOLEAN, "data": shape({"activeJobs": INTEGER, "jobs": array(_ACTIVE_JOB)})}
)
HEALTHY_BODY = shape(
    {
        "success": BOOLEAN,
        "data": shape(
            {
                "status": STRING,
                "timestamp": STRING,
                "services": mapping_of(STRING),
                "uptime_seconds": nullable(INTEGER),
            }
        ),
    }
)
RESTARTED_BODY = shape({"success": BOOLEAN, "message": STRING, "timestamp": STRING})


def _active_jobs(farm: PrintFarm) -> list[dict[str, Any]]:
    """The seed's active jobs: queued and printing ones, oldest first, with their stage."""
    jobs = sorted(
        (job for job in farm.jobs.store.jobs.values() if job.status in OPEN_STATUSES), key=lambda job: job.id
    )
    return [
        {
            "jobId": job.id,
            "printerId": job.printer_id,
            "status": job.status.lower(),
            "progress_percent": job.progress_percent,
            "orchestration_status": job.stage,
            # Reserved when the job started on a printer with an OttoEject (null without one).
            "assigned_store_slot": job.store_shelf,
            "assigned_grab_slot": job.grab_shelf,
            "started_at": job.started_at,
            # Not in the seed: why a queued job waits.
            "wait_reason": farm.orchestrator.waiting.get(job.id),
        }
        for job in jobs
    ]


def _process_figures() -> dict[str, Any]:
    """The uptime (s) and memory (bytes) of this process, from /proc (blocking; Linux), else unknown."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            resident_pages = int(statm.read().split()[1])
        with open("/proc/self/stat", encoding="ascii") as stat:
            started_ticks = int(stat.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime", encoding="ascii") as uptime:
            system_up = float(uptime.read().split()[0])
    except (OSError, ValueError, IndexError):
        return {"uptime": None, "memory": {"used": None, "total": None}}
    page = os.sysconf("SC_PAGE_SIZE")
    return {
        "uptime": int(system_up - started_ticks / os.sysconf("SC_CLK_TCK")),
        "memory": {"used": resident_pages * page, "total": os.sysconf("SC_PHYS_PAGES") * page},
    }


class OrchestrationStatusView(FarmView):
    """/orchestration/status."""

    url = f"{ORCHESTRATION}/status"
    name = f"api:{DOMAIN}:orchestration:status"

    @operation(
        Operation(
            summary="Orchestration status and statistics",
            admin=False,
            responses={200: "The status"},
            returns={200: STATUS_BODY},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """The orchestrator, its statistics, the active jobs and this process."""
        farm = self.farm()
        stats = farm.jobs.store.stats
        active = _active_jobs(farm)
        orchestrator = farm.orchestrator
        system = await self.hass.async_add_executor_job(_process_figures)
        return self.json(
            {
                "success": True,
                "data": {
                    "timestamp": _now(),
                    "phase3": {
                        "orchestrator": {
                            "initialized": orchestrator.started is not None,
                            "job_processing_enabled": bool(farm.settings[JOB_PROCESSING]),
                            "polling_active": orchestrator.started is not None,
                            "active_workflows": sum(1 for job in active if job["status"] == PRINTING.lower()),
                            "statistics": {
                                "jobs_processed": stats["processed"],
                                "jobs_completed": stats["completed"],
                                "jobs_failed": stats["failed"],
                                "average_completion_time_minutes": (
                                    round(stats["completion_seconds"] / stats["completed"] / 60)
                                    if stats["completed"]
                                    else 0
                                ),
                            },
                        },
                        "activeJobs": len(active),
                        "monitoring": [
                            {
                                "jobId": job["jobId"],
                                "status": job["status"],
                                "progress_percent": job["progress_percent"],
                                "printer_id": job["printerId"],
                            }
                            for job in active
                        ],
                    },
                    "system": {**system, "nodeVersion": platform.python_version()},
                },
            }
        )


class ActiveJobsView(FarmView):
    """/orchestration/active-jobs."""

    url = f"{ORCHESTRATION}/active-jobs"
    name = f"api:{DOMAIN}:orchestration:active-jobs"

    @operation(
        Operation(
            summary="Queued and printing jobs with their stage",
            admin=False,
            responses={200: "The jobs"},
            returns={200: ACTIVE_JOBS_BODY},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """Every open job."""
        active = _active_jobs(self.farm())
        return self.json({"success": True, "data": {"activeJobs": len(active), "jobs": active}})


class HealthView(FarmView):
    """/orchestration/health."""

    url = f"{ORCHESTRATION}/health"
    name = f"api:{DOMAIN}:orchestration:health"

    @operation(
        Operation(
            summary="Whether the orchestration works (also while job processing is switched off)",
            admin=False,
            responses={200: "Healthy", 503: "Unhealthy: `issues` says what does not work"},
            returns={200: HEALTHY_BODY},
        )
    )
    async def get(self, request: web.Request) -> web.Response:
        """Healthy unless the farm is not running, the last dispatch failed or a workflow is stuck."""
        try:
            health = self.farm().orchestrator.health()
        except ApiError:
            services = {"orchestrator": "stopped", "job_processing": "failed", "database": "disconnected"}
            issues = ["The Print Farm integration is not set up"]
            uptime: int | None = None
        else:
            services, issues, uptime = health.services, health.issues, health.uptime_seconds
        data: dict[str, Any] = {
            "status": "unhealthy" if issues else "healthy",
            "timestamp": _now(),
            "services": services,
        }
        if issues:
            return self.json({"success": False, "data": {**data, "issues": issues}}, status_code=503)
        return self.json({"success": True, "data": {**data, "uptime_seconds": uptime}})


class RestartView(FarmView):
    """/orchestration/restart."""

    url = f"{ORCHESTRATION}/restart"
    name = f"api:{DOMAIN}:orchestration:restart"

    @operation(
        Operation(
            summary="Decide every queued job again from storage (what the devices say decides)",
            responses={200: "Restarted"},
            returns={200: RESTARTED_BODY},
        )
    )
    async def post(self, request: web.Request) -> web.Response:
        """Restart dispatch."""
        self.farm().orchestrator.restart()
        return self.json(
            {
                "success": True,
                "message": "Orchestrator job processing restarted successfully",
                "timestamp": _now(),
            }
        )


ORCHESTRATION_VIEWS: list[type[FarmView]] = [OrchestrationStatusView, ActiveJobsView, HealthView, RestartView]
