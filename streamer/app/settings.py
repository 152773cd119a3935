"""Worker settings from the environment, checked at start-up with messages that name the variable.

Kafka security (TLS, SASL PLAIN/SCRAM) comes from KAFKA_* variables shared by every command that talks
to Kafka (`kafka_security()`); docs/operations.md lists them. Secrets never appear in a repr or a log.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_EVENTS_TOPIC = "call-events"
EVENTS_TOPIC_ENV = "STREAMER_TOPIC_EVENTS"
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


class SettingsError(ValueError):
    """A worker setting that cannot be used; the message names the variable and why."""


def bootstrap_servers(env: Mapping[str, str] | None = None) -> str:
    """The broker list every command uses: $KAFKA_BOOTSTRAP_SERVERS, else the local broker."""
    env = os.environ if env is None else env
    value = env.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or DEFAULT_BOOTSTRAP
    for server in value.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(
                f"KAFKA_BOOTSTRAP_SERVERS = {value!r}: expected host:port[,host:port...], e.g. 127.0.0.1:9092"
            )
    return value


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How the project's Kafka clients authenticate and encrypt; PLAINTEXT (the default) is neither.

    Passwords are kept out of `repr`, so a logged settings object shows no secret."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    ssl_check_hostname: bool = True

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for SSL and SASL_SSL: the system's CAs, or KAFKA_SSL_CAFILE's; a client
        certificate when one is configured (mutual TLS)."""
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(cafile=self.ssl_cafile)
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_certfile:
            context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile, self.ssl_key_password)
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin client."""
        kwargs: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_ssl:
            kwargs["ssl_context"] = self.ssl_context()
        if self.uses_sasl:
            kwargs.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.sasl_password)
        return kwargs

    def faust_credentials(self) -> Any:
        """The `broker_credentials` of the Faust app (None for PLAINTEXT)."""
        import faust

        if self.uses_sasl:
            return faust.SASLCredentials(username=self.sasl_username, password=self.sasl_password,
                                         ssl_context=self.ssl_context(), mechanism=self.sasl_mechanism)
        if self.uses_ssl:
            return faust.SSLCredentials(self.ssl_context())
        return None

    def warnings(self) -> list[str]:
        """Settings that work but should not be used in production, to log at start-up."""
        if self.protocol == "SASL_PLAINTEXT" and self.sasl_mechanism == "PLAIN":
            return ["KAFKA_SASL_MECHANISM=PLAIN over KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT sends the password "
                    "unencrypted: use SASL_SSL (or SCRAM) outside a trusted network"]
        if self.uses_ssl and not self.ssl_check_hostname:
            return ["KAFKA_SSL_CHECK_HOSTNAME=false: the broker's certificate is not matched to its host name"]
        return []


def kafka_security(env: Mapping[str, str] | None = None) -> KafkaSecurity:
    """Kafka security settings from the environment, checked: a missing or contradictory setting stops
    the command with a message naming the variable."""
    env = os.environ if env is None else env
    protocol = (env.get("KAFKA_SECURITY_PROTOCOL", "").strip() or "PLAINTEXT").upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise SettingsError(f"KAFKA_SECURITY_PROTOCOL = {protocol!r}: must be one of {', '.join(SECURITY_PROTOCOLS)}")
    sasl = protocol.startswith("SASL_")
    tls = protocol in ("SSL", "SASL_SSL")
    mechanism = env.get("KAFKA_SASL_MECHANISM", "").strip().upper() or None
    username = env.get("KAFKA_SASL_USERNAME", "") or None
    password = _secret(env, "KAFKA_SASL_PASSWORD")
    if sasl:
        if mechanism not in SASL_MECHANISMS:
            raise SettingsError(f"KAFKA_SASL_MECHANISM = {mechanism!r}: with KAFKA_SECURITY_PROTOCOL={protocol} "
                                f"set it to one of {', '.join(SASL_MECHANISMS)}")
        if not username or not password:
            raise SettingsError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                                "KAFKA_SASL_PASSWORD (or KAFKA_SASL_PASSWORD_FILE)")
    else:
        given = [name for name, value in (("KAFKA_SASL_MECHANISM", mechanism), ("KAFKA_SASL_USERNAME", username),
                                          ("KAFKA_SASL_PASSWORD", password)) if value]
        if given:
            raise SettingsError(f"{', '.join(given)} set, but KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL: "
                                "set KAFKA_SECURITY_PROTOCOL=SASL_SSL (or SASL_PLAINTEXT)")
    files = {name: _readable_file(env, name) for name in ("KAFKA_SSL_CAFILE", "KAFKA_SSL_CERTFILE",
                                                          "KAFKA_SSL_KEYFILE")}
    key_password = _secret(env, "KAFKA_SSL_KEY_PASSWORD")
    if not tls:
        given = [name for name, value in files.items() if value] + (["KAFKA_SSL_KEY_PASSWORD"] if key_password else [])
        if given:
            raise SettingsError(f"{', '.join(given)} set, but KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS: "
                                "set KAFKA_SECURITY_PROTOCOL=SSL (or SASL_SSL)")
    if files["KAFKA_SSL_KEYFILE"] and not files["KAFKA_SSL_CERTFILE"]:
        raise SettingsError("KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE: a client key needs its certificate")
    security = KafkaSecurity(protocol, mechanism if sasl else None, username, password, files["KAFKA_SSL_CAFILE"],
                             files["KAFKA_SSL_CERTFILE"], files["KAFKA_SSL_KEYFILE"], key_password,
                             _bool(env, "KAFKA_SSL_CHECK_HOSTNAME", True))
    try:
        security.ssl_context()
    except (OSError, ssl.SSLError) as error:
        # The message names files, never their content or a password.
        raise SettingsError(f"the TLS files of KAFKA_SSL_CAFILE/CERTFILE/KEYFILE cannot be used: {error}") from None
    return security


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret from NAME, or from the file NAME_FILE names (Docker and Kubernetes secrets)."""
    direct = env.get(name, "")
    path = env.get(f"{name}_FILE", "")
    if direct and path:
        raise SettingsError(f"both {name} and {name}_FILE are set: keep one")
    if not path:
        return direct or None
    try:
        value = Path(path).read_text().rstrip("\r\n")
    except OSError as error:
        raise SettingsError(f"{name}_FILE = {path!r}: cannot read it ({error.strerror})") from None
    if not value:
        raise SettingsError(f"{name}_FILE = {path!r}: the file is empty")
    return value


def _readable_file(env: Mapping[str, str], name: str) -> str | None:
    path = env.get(name, "")
    if not path:
        return None
    if not os.access(path, os.R_OK) or not Path(path).is_file():
        raise SettingsError(f"{name} = {path!r}: not a readable file")
    return path


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    bootstrap: str = DEFAULT_BOOTSTRAP
    app_id: str = "streamer"
    events_topic: str = "call-events"
    outcomes_topic: str = "call-outcomes"
    contacts_topic: str = "call-contacts"
    intervals_topic: str = "queue-intervals"
    dlq_topic: str = "call-events-dlq"
    event_partitions: int = 4
    outcome_partitions: int = 4
    replication_factor: int = 1
    standby_replicas: int = 0
    store: str = "rocksdb://"
    rocksdb_block_cache_mb: int = 16
    rocksdb_write_buffer_mb: int = 1
    # Seconds between trims of the freed heap while records keep coming (streamer/app/heap.py); 0: never.
    heap_trim_seconds: int = 10
    web_host: str = "127.0.0.1"
    web_tables: bool = False
    emit_every_seconds: float = 1.0
    faust_metrics: bool = True
    # Tenant roll-ups on /metrics (callcenter_tenant_*, a `tenant` label) and in the API: off unless a
    # deployment serving several tenants asks, since a tenant's name may be no business of the others.
    tenant_label: bool = False
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @property
    def broker_urls(self) -> list[str]:
        return [f"kafka://{server.strip()}" for server in self.bootstrap.split(",")]


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} = {raw!r}: must be a whole number") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} = {raw!r}: must be between {low} and {high}")
    return value


def _topic(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "") or default
    if not value or len(value) > 249 or not all(c.isalnum() or c in "._-" for c in value):
        raise SettingsError(f"{name} = {value!r}: a Kafka topic name uses only letters, digits, '.', '_', '-'")
    return value


def events_topic(env: Mapping[str, str] | None = None) -> str:
    """The topic of call events: $STREAMER_TOPIC_EVENTS, else call-events. The worker reads it and the
    producers (`replay`, `simulate`, `ingest --kafka`) send to it unless told `--topic`, so one setting
    points both sides at the same topic."""
    return _topic(os.environ if env is None else env, EVENTS_TOPIC_ENV, DEFAULT_EVENTS_TOPIC)


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} = {raw!r}: must be true or false")


def load_worker_settings(env: Mapping[str, str] | None = None) -> WorkerSettings:
    env = os.environ if env is None else env
    store = env.get("STREAMER_STORE", "") or "rocksdb://"
    if store not in ("rocksdb://", "memory://"):
        raise SettingsError(f"STREAMER_STORE = {store!r}: must be rocksdb:// or memory://")
    events_partitions = _int(env, "STREAMER_PARTITIONS", 4, 1, 1024)
    return WorkerSettings(
        bootstrap=bootstrap_servers(env),
        app_id=_topic(env, "STREAMER_APP_ID", "streamer"),
        events_topic=events_topic(env),
        outcomes_topic=_topic(env, "STREAMER_TOPIC_OUTCOMES", "call-outcomes"),
        contacts_topic=_topic(env, "STREAMER_TOPIC_CONTACTS", "call-contacts"),
        intervals_topic=_topic(env, "STREAMER_TOPIC_INTERVALS", "queue-intervals"),
        dlq_topic=_topic(env, "STREAMER_TOPIC_DLQ", "call-events-dlq"),
        event_partitions=events_partitions,
        outcome_partitions=_int(env, "STREAMER_OUTCOME_PARTITIONS", events_partitions, 1, 1024),
        replication_factor=_int(env, "STREAMER_REPLICATION_FACTOR", 1, 1, 16),
        standby_replicas=_int(env, "STREAMER_STANDBY_REPLICAS", 0, 0, 8),
        store=store,
        rocksdb_block_cache_mb=_int(env, "STREAMER_ROCKSDB_BLOCK_CACHE_MB", 16, 1, 65536),
        rocksdb_write_buffer_mb=_int(env, "STREAMER_ROCKSDB_WRITE_BUFFER_MB", 1, 1, 1024),
        heap_trim_seconds=_int(env, "STREAMER_HEAP_TRIM_SECONDS", 10, 0, 3600),
        web_host=env.get("STREAMER_WEB_HOST", "") or "127.0.0.1",
        web_tables=_bool(env, "STREAMER_WEB_TABLES", False),
        faust_metrics=_bool(env, "STREAMER_FAUST_METRICS", True),
        tenant_label=_bool(env, "STREAMER_TENANT_LABEL", False),
        security=kafka_security(env),
    )
