"""The worker's web pages: `/metrics` (Prometheus), `/api/queues` (JSON), `/` (the wallboard)."""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import faust
from aiohttp.web import Response as AiohttpResponse
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streamer.core.config import parse_rollup_key
from streamer.core.events import format_ts
from streamer.export.collector import PipelineCollector
from streamer.export.exposition import render

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
    stage = pipeline.queues
    idle_seconds = pipeline.config.limits.idle_seconds
    views = []
    for name in sorted(states):
        if queue is None or name == queue:
            view = states[name].view(now_ms)
            view["idle"] = stage.is_idle(name, idle_seconds)
            view["intervals_pending"] = stage.pending_intervals(name)
            view["foresight"] = foresight_view(states[name], now_ms)
            views.append(view)
    return {
        "generated_at": format_ts(now_ms),
        "last_event_time": format_ts(last) if last else None,
        "watermark": format_ts(min(marks)) if marks else None,
        "stale_after_seconds": STALE_AFTER_SECONDS,
        "progress": pipeline.progress(),
        "queues": views,
    }


def foresight_view(state: Any, now_ms: int) -> dict[str, Any]:
    """The queue's foresight block (docs/metrics.md "Foresight"): expected wait, projected Service Level,
    agents needed beside agents logged in."""
    from streamer.core import foresight

    return foresight.forecast(state, now_ms)


def install_pages(app: faust.App, pipeline: Any) -> None:
    # Faust's own metrics (its Prometheus monitor, as faust.sensors.prometheus.setup_prometheus_sensors
    # installs it) follow the pipeline's in one /metrics page.
    faust_registry = None
    if pipeline.settings.faust_metrics:
        faust_registry = CollectorRegistry(auto_describe=False)
        app.monitor = PrometheusMonitor(metrics=FaustMetrics.create(faust_registry, "faust"))
    collector = PipelineCollector(pipeline)

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            body = render(collector.collect()).encode()
            if faust_registry is not None:
                body += generate_latest(faust_registry)
            return AiohttpResponse(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
    # Any stage-2 table routes by queue: they share the partitioning of call-outcomes (key = queue).
    queue_table = pipeline.queue_table
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
