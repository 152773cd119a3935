"""The pre-flight check of a Kafka connection, before a command relies on it: one connection made the
way the project's clients make theirs (TCP, TLS, SASL, a metadata request), then one to each broker
the cluster advertises. When it fails the message names the cause and the setting to change.

aiokafka, asked to start, only says "Unable to bootstrap" and logs the cause; a Faust worker retries
for ever while its web server answers. So the worker runs this check before Faust starts (and exits
with the message), and the producing commands (replay, simulate, ingest, bench) before they send.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from typing import Any

from streamer.app.settings import KafkaSecurity

DEFAULT_TIMEOUT_SECONDS = 10.0
# A TLS handshake with a listener that speaks TLS takes milliseconds on any network.
TLS_PROBE_SECONDS = 3.0


class KafkaCheckFailed(Exception):
    """Kafka cannot be used with these settings; the message says why and what to change."""


def check_kafka_now(bootstrap: str, security: KafkaSecurity, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """`check_kafka` from synchronous code (not from inside a running event loop)."""
    asyncio.run(check_kafka(bootstrap, security, timeout))


async def check_kafka(bootstrap: str, security: KafkaSecurity, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
    """Return when a bootstrap server and every broker it advertises take a connection with these
    settings; raise KafkaCheckFailed naming the cause otherwise. Each connection is bounded by `timeout`."""
    servers = [_host_port(server) for server in bootstrap.split(",") if server.strip()]
    causes = []
    for host, port in servers:
        try:
            brokers = await _connect(host, port, security, timeout, metadata=True)
        except KafkaCheckFailed as failure:
            causes.append(str(failure))
            continue
        for broker_host, broker_port in brokers:
            if (broker_host, broker_port) != (host, port):
                await _check_advertised(host, port, broker_host, broker_port, security, timeout)
        return
    if len(causes) == 1:
        raise KafkaCheckFailed(causes[0])
    raise KafkaCheckFailed(f"no bootstrap server of KAFKA_BOOTSTRAP_SERVERS={bootstrap} can be used: "
                           + "; ".join(causes))


async def _check_advertised(host: str, port: int, broker_host: str, broker_port: int, security: KafkaSecurity,
                            timeout: float) -> None:
    try:
        await _connect(broker_host, broker_port, security, timeout, metadata=False)
    except KafkaCheckFailed as failure:
        raise KafkaCheckFailed(
            f"the bootstrap server {host}:{port} answered, but the broker it advertises at "
            f"{broker_host}:{broker_port}, where clients go next, cannot be used: {failure}. Check the broker's "
            "advertised.listeners"
        ) from None


async def _connect(host: str, port: int, security: KafkaSecurity, timeout: float,
                   metadata: bool) -> list[tuple[str, int]]:
    """Connect like aiokafka does (TLS, SASL, API versions) and, with `metadata`, return the brokers
    the cluster advertises."""
    from aiokafka.conn import create_conn
    from aiokafka.errors import (
        KafkaConnectionError,
        KafkaError,
        SaslAuthenticationFailed,
        UnsupportedSaslMechanismError,
    )
    from aiokafka.protocol.metadata import MetadataRequest

    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            conn = await create_conn(host, port, client_id="streamer-preflight", request_timeout_ms=int(timeout * 1000),
                                     **security.client_kwargs())
            try:
                if not metadata:
                    return []
                response = await conn.send(MetadataRequest([]))
            finally:
                conn.close()
    except ssl.SSLCertVerificationError as error:
        raise KafkaCheckFailed(_untrusted(where, host, security, error)) from None
    except ssl.SSLError as error:
        raise KafkaCheckFailed(
            f"the TLS handshake with Kafka at {where} failed ({error.reason or error}): with "
            f"KAFKA_SECURITY_PROTOCOL={security.protocol} the listener must speak TLS; if it is a plaintext "
            "listener, set KAFKA_SECURITY_PROTOCOL=PLAINTEXT (or SASL_PLAINTEXT)"
        ) from None
    except SaslAuthenticationFailed as error:
        raise KafkaCheckFailed(
            f"Kafka at {where} refused the login of KAFKA_SASL_USERNAME={security.sasl_username} "
            f"({security.sasl_mechanism}): {_broker_message(error)}. Check KAFKA_SASL_PASSWORD (or the file "
            "KAFKA_SASL_PASSWORD_FILE names), the user name and KAFKA_SASL_MECHANISM"
        ) from None
    except UnsupportedSaslMechanismError as error:
        offered = str(error) if "Enabled mechanisms" in str(error) else "set one its listener enables"
        raise KafkaCheckFailed(f"Kafka at {where} does not take KAFKA_SASL_MECHANISM={security.sasl_mechanism}: "
                               f"{offered}") from None
    except ConnectionRefusedError:
        raise KafkaCheckFailed(f"nothing listens at {where} (connection refused): is the broker running, and is "
                               "KAFKA_BOOTSTRAP_SERVERS right? (`streamer kafka start` runs a local one)") from None
    except socket.gaierror as error:
        raise KafkaCheckFailed(f"the host {host!r} of KAFKA_BOOTSTRAP_SERVERS cannot be resolved "
                               f"({error.strerror})") from None
    except TimeoutError:
        raise KafkaCheckFailed(
            f"no answer from Kafka at {where} within {timeout:g} s (a firewall dropping packets, or a listener "
            f"that does not speak KAFKA_SECURITY_PROTOCOL={security.protocol}?)"
        ) from None
    except (KafkaConnectionError, ConnectionError):
        raise KafkaCheckFailed(await _closed(host, port, security)) from None
    except (KafkaError, OSError) as error:
        raise KafkaCheckFailed(f"cannot use Kafka at {where}: {error!r}") from None
    return [(broker[1], broker[2]) for broker in response.brokers]


def _untrusted(where: str, host: str, security: KafkaSecurity, error: ssl.SSLCertVerificationError) -> str:
    reason = error.verify_message or str(error)
    if "hostname mismatch" in reason.lower() or "ip address mismatch" in reason.lower():
        return (f"the certificate of Kafka at {where} is not made out to {host!r} ({reason}): connect by a name "
                "the certificate holds (KAFKA_BOOTSTRAP_SERVERS), or set KAFKA_SSL_CHECK_HOSTNAME=false")
    if security.ssl_cafile:
        return (f"the certificate of Kafka at {where} is not trusted ({reason}): KAFKA_SSL_CAFILE="
                f"{security.ssl_cafile} does not hold the CA that signed it")
    return (f"the certificate of Kafka at {where} is not trusted by the system's CAs ({reason}): set "
            "KAFKA_SSL_CAFILE to the CA that signed it")


def _broker_message(error: Any) -> str:
    """The broker's own words in an aiokafka error ("[Error 58] SaslAuthenticationFailed: ...")."""
    text = str(error)
    return text.split(": ", 1)[1] if text.startswith("[Error") and ": " in text else text


async def _closed(host: str, port: int, security: KafkaSecurity) -> str:
    """Why the broker closed the connection, as far as can be told from outside."""
    where = f"{host}:{port}"
    speaks_tls = await _speaks_tls(host, port)
    if not security.uses_ssl:
        if speaks_tls:
            return (f"the listener at {where} speaks TLS, but KAFKA_SECURITY_PROTOCOL={security.protocol}: set "
                    "KAFKA_SECURITY_PROTOCOL=SSL (or SASL_SSL) and KAFKA_SSL_CAFILE to the CA of its certificate")
        return (f"Kafka at {where} closed the connection at the first request: it may require SASL "
                "(KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT), or it is not a Kafka listener")
    if not speaks_tls:
        return (f"the listener at {where} does not speak TLS, but KAFKA_SECURITY_PROTOCOL={security.protocol}: "
                "if it is a plaintext listener, set KAFKA_SECURITY_PROTOCOL=PLAINTEXT (or SASL_PLAINTEXT)")
    if not security.uses_sasl:
        return (f"Kafka at {where} closed the connection after the TLS handshake: its listener probably requires "
                "SASL: set KAFKA_SECURITY_PROTOCOL=SASL_SSL with KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD")
    return f"Kafka at {where} closed the connection during the login (KAFKA_SASL_MECHANISM={security.sasl_mechanism})"


async def _speaks_tls(host: str, port: int) -> bool:
    """True when a TLS handshake (any certificate accepted: this only asks which protocol it is) succeeds."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(TLS_PROBE_SECONDS):
            _, writer = await asyncio.open_connection(host, port, ssl=context)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.strip().removeprefix("kafka://").rpartition(":")
    return host.strip("[]"), int(port)
