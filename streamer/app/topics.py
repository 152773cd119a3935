"""Create the pipeline's topics with sane settings when absent, and check the ones that exist."""

from __future__ import annotations

import logging
from dataclasses import replace

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streamer.app.settings import SettingsError, WorkerSettings

log = logging.getLogger(__name__)

DLQ_RETENTION_MS = 14 * 86400 * 1000
INTERVALS_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}


async def ensure_topics(settings: WorkerSettings, explicit_partitions: bool) -> WorkerSettings:
    """Create missing topics; adopt the partition count of an existing `call-events` unless one was set.

    Tables are partitioned like their source topic, so a mismatch must stop the worker, not warn.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=15000,
                                **settings.security.client_kwargs())
    await admin.start()
    try:
        existing = await _partition_counts(admin)
        events_count = existing.get(settings.events_topic)
        if events_count is not None and events_count != settings.event_partitions:
            if explicit_partitions:
                raise SettingsError(
                    f"STREAMER_PARTITIONS = {settings.event_partitions}, but topic {settings.events_topic!r} "
                    f"already has {events_count} partition(s): set STREAMER_PARTITIONS={events_count} or "
                    "recreate the topic"
                )
            log.info("topic %s has %d partition(s); using that", settings.events_topic, events_count)
            settings = replace(settings, event_partitions=events_count)
        wanted = [
            NewTopic(settings.events_topic, settings.event_partitions, settings.replication_factor),
            NewTopic(settings.outcomes_topic, settings.outcome_partitions, settings.replication_factor),
            NewTopic(settings.intervals_topic, settings.outcome_partitions, settings.replication_factor,
                     topic_configs=INTERVALS_CONFIG),
            NewTopic(settings.dlq_topic, settings.event_partitions, settings.replication_factor,
                     topic_configs={"retention.ms": str(DLQ_RETENTION_MS)}),
        ]
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            await admin.create_topics(missing)
            log.info("created topics: %s", ", ".join(t.name for t in missing))
        return settings
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    names = await admin.list_topics()
    if not names:
        return {}
    described = await admin.describe_topics(list(names))
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
