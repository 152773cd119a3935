"""Create the pipeline's topics with sane settings when absent, and check the ones that exist."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

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
            NewTopic(settings.contacts_topic, settings.event_partitions, settings.replication_factor),
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


def changelog_topics(tables: Iterable[Any], default_partitions: int, default_replicas: int) -> list[NewTopic]:
    """The changelog topics of Faust tables, with the settings Faust gives them when it creates them
    (its topic's partitions and replicas, else the app's; cleanup policy, retention, extra config)."""
    from mode.utils.times import want_seconds

    wanted = []
    for table in tables:
        topic = table.changelog_topic
        config: dict[str, str] = {}
        policy = [flag for flag, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on]
        if policy:
            config["cleanup.policy"] = ",".join(policy)
        if topic.retention:
            config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
        config.update({key: str(value) for key, value in (topic.config or {}).items()})
        for name in topic.topics:
            wanted.append(NewTopic(name, topic.partitions or default_partitions,
                                   topic.replicas or default_replicas or 1, topic_configs=config))
    return wanted


async def ensure_changelog_topics(settings: WorkerSettings, tables: Iterable[Any], default_partitions: int,
                                  default_replicas: int) -> list[str]:
    """Create the tables' changelog topics that are absent, before Faust starts; returns their names.

    Faust creates them itself at start, just before its consumer joins the group. A topic that new can
    still be missing from the metadata the group is assigned with, which then counts it as 0
    partitions: every write to its table fails (PartitionsMismatch), and the agent restarts, losing
    the record, until the consumer's metadata is next refreshed, up to 5 minutes later. Created here,
    they exist before the consumer first looks.
    """
    wanted = changelog_topics(tables, default_partitions, default_replicas)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap, request_timeout_ms=15000,
                                **settings.security.client_kwargs())
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            await admin.create_topics(missing)
            log.info("created changelog topics: %s", ", ".join(t.name for t in missing))
        return [topic.name for topic in missing]
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    names = await admin.list_topics()
    if not names:
        return {}
    described = await admin.describe_topics(list(names))
    return {d["topic"]: len(d["partitions"]) for d in described if not d.get("error_code")}
