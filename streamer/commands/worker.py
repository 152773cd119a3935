"""`streamer worker`: the Faust worker running both pipeline stages, with its web server."""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "run the Faust worker (stage 1 call tracking + stage 2 queue aggregation + /metrics + wallboard)"
DESCRIPTION = """\
Run one Faust worker of the pipeline. The broker comes from $KAFKA_BOOTSTRAP_SERVERS (default
127.0.0.1:9092), the metric settings from --config or $STREAMER_CONFIG; other settings from STREAMER_*
variables (docs/operations.md). Options not listed here are handed to Faust's own `worker` command
(e.g. --loglevel, --without-web)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web-port", type=int, default=6066, metavar="N",
                        help="port of the web server: /metrics, /api/queues, the wallboard (default 6066)")
    parser.add_argument("--web-host", metavar="HOST",
                        help="address to bind the web server to (default 127.0.0.1, or $STREAMER_WEB_HOST)")
    parser.add_argument("--datadir", metavar="DIR",
                        help="this worker's state directory (RocksDB tables); one per worker (default ./data)")
    parser.add_argument("--config", metavar="FILE", help="TOML metric settings (default $STREAMER_CONFIG)")
    parser.add_argument("--loglevel", "-l", default="info", help="log level (default info)")


def prepare_topics() -> None:
    """Check the connection to Kafka (the pre-flight: a worker that cannot connect, log in or trust
    the broker stops here with the cause, before Faust starts), then create absent topics and pin the
    partition count the tables must share with `call-events`."""
    import asyncio
    import os

    from streamer.app.preflight import check_kafka_now
    from streamer.app.settings import load_worker_settings
    from streamer.app.topics import ensure_topics
    from streamer.core.config import load_config

    load_config()  # a bad config stops here, before any broker work
    settings = load_worker_settings()
    check_kafka_now(settings.bootstrap, settings.security)
    explicit = bool(os.environ.get("STREAMER_PARTITIONS"))
    try:
        settings = asyncio.run(ensure_topics(settings, explicit))
    except Exception as exc:
        if exc.__class__.__name__ == "SettingsError":
            raise
        raise OSError(f"cannot reach Kafka at {settings.bootstrap} to check topics: {exc!r}") from exc
    os.environ["STREAMER_PARTITIONS"] = str(settings.event_partitions)


def prepare_changelog_topics(app: Any) -> None:
    """Create the app's changelog topics before Faust starts (streamer/app/topics.py says why)."""
    import asyncio

    from streamer.app.settings import load_worker_settings
    from streamer.app.topics import ensure_changelog_topics

    settings = load_worker_settings()
    try:
        asyncio.run(ensure_changelog_topics(settings, app.tables.values(), app.conf.topic_partitions,
                                            app.conf.topic_replication_factor))
    except Exception as exc:
        raise OSError(f"cannot create the changelog topics at {settings.bootstrap}: {exc!r}") from exc


def run(args: argparse.Namespace) -> int:
    import os

    from streamer.app.preflight import KafkaCheckFailed
    from streamer.app.settings import SettingsError
    from streamer.core.config import ConfigError

    if args.config:
        os.environ["STREAMER_CONFIG"] = args.config
    if args.web_host:
        os.environ["STREAMER_WEB_HOST"] = args.web_host
    try:
        prepare_topics()
        from streamer.app.worker_app import app

        prepare_changelog_topics(app)
    except KafkaCheckFailed as exc:
        print(f"streamer worker: not starting: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, SettingsError, OSError) as exc:
        print(f"streamer worker: {exc}", file=sys.stderr)
        return 2
    datadir = args.datadir or os.environ.get("STREAMER_DATADIR") or os.environ.get("APP_DATADIR") or "data"
    loop = os.environ.get("STREAMER_EVENT_LOOP", "uvloop")
    argv = ["streamer", "--datadir", datadir, "--loop", loop, "worker", "--web-port", str(args.web_port),
            "--web-bind", app.conf.web_bind, "--loglevel", args.loglevel, *getattr(args, "faust_args", [])]
    sys.argv = argv
    app.main()
    return 0
