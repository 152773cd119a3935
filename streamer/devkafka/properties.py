"""The broker's configuration files: `server.properties` and its logging configuration.

One node is both broker and controller (KRaft combined mode) with a static single-voter quorum
(`controller.quorum.voters`), so the controller port may change from one start to the next: it is an
internal port, leased at each start (streamer/ports.py) and written here, while clients only ever see
the broker port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from streamer.devkafka.settings import LOOPBACK_HOST

NODE_ID = 1
# Kafka's own default (1 MiB plus record-batch overhead), so the dev broker refuses what a stock
# cluster refuses.
MESSAGE_MAX_BYTES = 1048588
LOG_LEVEL_PROPERTY = "streamer.log.level"


@dataclass(frozen=True)
class BrokerConfig:
    """`client_protocol` is the security protocol of the client listener (also its name); the
    controller listener speaks TLS whenever the client listener does. `security_properties` are the
    TLS and SASL lines (streamer/devkafka/security.py)."""

    port: int
    controller_port: int
    log_dir: Path
    kafka_major: int
    client_protocol: str = "PLAINTEXT"
    security_properties: Mapping[str, str] = field(default_factory=dict)


def server_properties(config: BrokerConfig) -> str:
    host = LOOPBACK_HOST
    client = config.client_protocol
    controller = "PLAINTEXT" if client == "PLAINTEXT" else "SSL"
    settings: dict[str, str | int] = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@{host}:{config.controller_port}",
        "listeners": f"{client}://{host}:{config.port},CONTROLLER://{host}:{config.controller_port}",
        "advertised.listeners": f"{client}://{host}:{config.port}",
        "controller.listener.names": "CONTROLLER",
        # One node: the inter-broker listener is the client listener, with the same protection.
        "inter.broker.listener.name": client,
        "listener.security.protocol.map": f"{client}:{client},CONTROLLER:{controller}",
        "log.dirs": str(config.log_dir),
        # One broker: every internal topic must live with a single replica.
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        # Fewer internal partitions than the default 50 make the first group join and transaction fast.
        "offsets.topic.num.partitions": 8,
        "transaction.state.log.num.partitions": 8,
        # Tests and demos join consumer groups often; the 3 s default delay would slow every join.
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "true",
        "num.partitions": 1,
        "message.max.bytes": MESSAGE_MAX_BYTES,
        "num.network.threads": 2,
        "num.io.threads": 4,
    }
    if config.kafka_major >= 4:
        settings["share.coordinator.state.topic.replication.factor"] = 1
        settings["share.coordinator.state.topic.min.isr"] = 1
    settings.update(config.security_properties)
    lines = ["# Written by `streamer kafka start` at each start; edits are overwritten."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class LoggingConfig:
    path: Path
    text: str
    jvm_option: str


def logging_config(log4j2: bool, folder: Path) -> LoggingConfig:
    """Console logging (the broker's stdout goes to its log file); the level comes from a JVM property
    so the storage tool can run quietly with the same file."""
    if log4j2:
        path = folder / "log4j2.properties"
        text = "\n".join(
            [
                "status = warn",
                "appender.console.type = Console",
                "appender.console.name = STDOUT",
                "appender.console.layout.type = PatternLayout",
                "appender.console.layout.pattern = [%d] %p %m (%c)%n",
                f"rootLogger.level = ${{sys:{LOG_LEVEL_PROPERTY}:-INFO}}",
                "rootLogger.appenderRef.console.ref = STDOUT",
                "logger.requests.name = kafka.request.logger",
                "logger.requests.level = WARN",
                "",
            ]
        )
        return LoggingConfig(path, text, f"-Dlog4j2.configurationFile={path}")
    path = folder / "log4j.properties"
    text = "\n".join(
        [
            f"log4j.rootLogger=${{{LOG_LEVEL_PROPERTY}}}, stdout",
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender",
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout",
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n",
            "log4j.logger.kafka.request.logger=WARN",
            "",
        ]
    )
    return LoggingConfig(path, text, f"-Dlog4j.configuration=file:{path}")
