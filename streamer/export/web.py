"""The worker's web pages: `/metrics` (Prometheus), `/api/queues` and `/api/groups` (JSON), `/` (the
wallboard)."""

from __future__ import annotations

import time
from importlib import resources
from typing import Any

import faust
from aiohttp.web import Response as AiohttpResponse
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from streamer.core import counters
from streamer.core.config import GROUP, TENANT, parse_rollup_key, rollup_key
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
    states = pipeline.queues.plain_queues()  # not groups or tenants
    marks = [m for p in pipeline.queues.owned if (m := pipeline.queues.watermark(p)) is not None]
    last = pipeline.health.last_event_ts
    stage = pipeline.queues
    idle_seconds = pipeline.config.limits.idle_seconds
    views = []
    shown = {name: state for name, state in states.items() if queue is None or name == queue}
    forecasts = pipeline.foresight.read(shown)
    for name in sorted(shown):
        view = shown[name].view(now_ms)
        view["idle"] = stage.is_idle(name, idle_seconds)
        view["intervals_pending"] = stage.pending_intervals(name)
        add_journey_view(view, shown[name], now_ms)
        view["foresight"] = forecasts[name]
        views.append(view)
    return {
        "generated_at": format_ts(now_ms),
        "last_event_time": format_ts(last) if last else None,
        "watermark": format_ts(min(marks)) if marks else None,
        "stale_after_seconds": STALE_AFTER_SECONDS,
        "progress": pipeline.progress(),
        "queues": views,
    }


# --- the customer's journey, groups and tenants (docs/api.md "Customer journey", "Groups and tenants") ---

def add_journey_view(view: dict[str, Any], state: Any, now_ms: int) -> None:
    """What a queue's (or roll-up's) view shows beyond the core's: the first-contact resolution of the
    contacts decided today, and today's latest detractor responses, newest first, to call back."""
    _, _, counts = state.window("today", now_ms)
    today = view["windows"]["today"]
    today["fcr_resolved"] = counts[counters.INDEX["fcr_resolved"]]
    today["fcr_unresolved"] = counts[counters.INDEX["fcr_unresolved"]]
    today["fcr_rate"] = counters.fcr_rate(counts)
    view["detractors_today"] = state.detractors_today(now_ms)


def rollup_views(pipeline: Any, kind: str, now_s: float | None = None, name: str | None = None) -> dict[str, Any]:
    """The groups (or tenants) this worker owns, each in the shape of an /api/queues entry, named by
    "group" ("tenant") instead of "queue"; the configured members listed."""
    now_ms = int((time.time() if now_s is None else now_s) * 1000)
    config = pipeline.config
    views = []
    for key, state in sorted(pipeline.queues.queues().items()):
        parsed = parse_rollup_key(key)
        if parsed is None or parsed[0] != kind or (name is not None and parsed[1] != name):
            continue
        view = state.view(now_ms)
        del view["queue"]
        del view["live"]["agents"]  # agents log in to queues; no event says which groups they serve
        view = {kind: parsed[1], **view}
        members = config.groups[parsed[1]].queues if kind == GROUP and parsed[1] in config.groups else (
            config.tenants[parsed[1]].queues if kind == TENANT and parsed[1] in config.tenants else None)
        view["queues"] = sorted(members) if members is not None else None
        add_journey_view(view, state, now_ms)
        views.append(view)
    marks = [m for p in pipeline.queues.owned if (m := pipeline.queues.watermark(p)) is not None]
    last = pipeline.health.last_event_ts
    return {
        "generated_at": format_ts(now_ms),
        "last_event_time": format_ts(last) if last else None,
        "watermark": format_ts(min(marks)) if marks else None,
        "stale_after_seconds": STALE_AFTER_SECONDS,
        f"{kind}s": views,
    }


def install_rollup_pages(app: faust.App, pipeline: Any, json_response: Any) -> None:
    """/api/groups, /api/groups/{group}; /api/tenants, /api/tenants/{tenant} when STREAMER_TENANT_LABEL
    is on. One roll-up lives on the worker owning its key's partition, where a request is forwarded."""
    from faust.exceptions import SameNode

    table_name = pipeline.queue_table.name

    def pages(kind: str) -> None:
        @app.page(f"/api/{kind}s", name=f"api-{kind}s")
        class All(View):
            async def get(self, request: Request) -> Response:
                return json_response(self, rollup_views(pipeline, kind))

        @app.page(f"/api/{kind}s/{{name}}", name=f"api-{kind}")
        class One(View):
            async def get(self, request: Request, name: str) -> Response:
                try:
                    return await app.router.route_req(table_name, rollup_key(kind, name), self.web, request)
                except SameNode:
                    pass
                views = rollup_views(pipeline, kind, name=name)[f"{kind}s"]
                if not views:
                    return json_response(self, {"error": f"{kind} {name!r} is not known"}, status=404)
                return json_response(self, views[0])

    pages(GROUP)
    if pipeline.settings.tenant_label:
        pages(TENANT)
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
            pipeline.heap.rendered(len(body))
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

    install_rollup_pages(app, pipeline, json_response)

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
