"""The worker's web pages: `/metrics` (Prometheus), `/api/queues` (JSON), `/` (the wallboard)."""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import faust
from aiohttp.web import Response as AiohttpResponse
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streamer.core.config import parse_rollup_key
from streamer.core.events import format_ts
from streamer.export.collector import PipelineCollector

STALE_AFTER_SECONDS = 120
STATIC_FILES = {"wallboard.html": "text/html", "wallboard.js": "application/javascript",
                "wallboard.css": "text/css"}


def api_snapshot(pipeline: Any, now_s: float | None = None, queue: str | None = None) -> dict[str, Any]:
    """The JSON API document (docs/api.md) of the queues this worker owns."""
    now_s = time.time() if now_s is None else now_s
    now_ms = int(now_s * 1000)
    states = {q: s for q, s in pipeline.queues.queues().items() if parse_rollup_key(q) is None}  # not groups
    marks = [m for p in pipeline.queues.owned if (m := pipeline.queues.watermark(p)) is not None]
    last = pipeline.health.last_event_ts
    return {
        "generated_at": format_ts(now_ms),
        "last_event_time": format_ts(last) if last else None,
        "watermark": format_ts(min(marks)) if marks else None,
        "stale_after_seconds": STALE_AFTER_SECONDS,
        "queues": [states[q].view(now_ms) for q in sorted(states) if queue is None or q == queue],
    }


def install_pages(app: faust.App, pipeline: Any) -> None:
    registry = CollectorRegistry(auto_describe=False)
    if pipeline.settings.faust_metrics:
        setup_prometheus_sensors(app, pattern="/metrics", registry=registry, name_prefix="faust")
    else:
        @app.page("/metrics")
        class Metrics(View):
            async def get(self, request: Request) -> Response:
                return AiohttpResponse(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
    registry.register(PipelineCollector(pipeline))
    # Any stage-2 table routes by queue: they share the partitioning of call-outcomes (key = queue).
    queue_table = pipeline.queues.buckets
    static = resources.files("streamer.export") / "static"

    def json_response(web: View, data: Any, status: int = 200) -> Response:
        import orjson

        return web.bytes(orjson.dumps(data), content_type="application/json", status=status,
                         headers={"Cache-Control": "no-store"})

    @app.page("/api/queues")
    class Queues(View):
        async def get(self, request: Request) -> Response:
            return json_response(self, api_snapshot(pipeline))

    @app.page("/api/queues/{queue}")
    class OneQueue(View):
        @app.table_route(table=queue_table, match_info="queue")
        async def get(self, request: Request, queue: str) -> Response:
            snapshot = api_snapshot(pipeline, queue=queue)
            if not snapshot["queues"]:
                return json_response(self, {"error": f"queue {queue!r} is not known"}, status=404)
            return json_response(self, snapshot["queues"][0])

    def static_page(name: str, path: str) -> None:
        content_type = STATIC_FILES[name]

        @app.page(path, name=f"static-{name}")
        class Static(View):
            async def get(self, request: Request) -> Response:
                body = (static / name).read_bytes()
                return self.bytes(body, content_type=content_type, headers={"Cache-Control": "no-cache"})

    static_page("wallboard.html", "/")
    for name in STATIC_FILES:
        static_page(name, f"/static/{name}")
