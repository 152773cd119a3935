"""The pre-flight check's diagnoses, against small local servers that each misbehave one way: nothing
listening, a silent listener, a plaintext or TLS listener that drops Kafka requests, certificates
signed by another CA or made out to another name. (tests/integration/test_kafka_security.py runs the
same check against real secured brokers.)"""

from __future__ import annotations

import asyncio
import re
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from streamer.app import preflight
from streamer.app.preflight import KafkaCheckFailed, check_kafka
from streamer.app.settings import KafkaSecurity, kafka_security
from streamer.devkafka.security import make_certificates
from streamer.ports import lease_port

PLAINTEXT = KafkaSecurity()


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CA with a server certificate for localhost and 127.0.0.1 (key and chain in one PEM), and a
    second, unrelated CA."""
    ours, other = tmp_path_factory.mktemp("ours"), tmp_path_factory.mktemp("other")
    make_certificates(ours, "pw")
    make_certificates(other, "pw")
    server = ours / "server.pem"
    subprocess.run(["openssl", "pkcs12", "-in", str(ours / "broker.p12"), "-passin", "pass:pw", "-nodes", "-out",
                    str(server)], check=True, capture_output=True)
    return {"ca": ours / "ca.pem", "other_ca": other / "ca.pem", "server": server}


def tls(cafile: Path | None) -> KafkaSecurity:
    return kafka_security({"KAFKA_SECURITY_PROTOCOL": "SSL", **({"KAFKA_SSL_CAFILE": str(cafile)} if cafile else {})})


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], object]


async def drop_at_first_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.close()


async def say_nothing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


@asynccontextmanager
async def listener(handler: Handler, certificate: Path | None = None, host: str = "127.0.0.1") -> AsyncIterator[int]:
    context = None
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificate)
    port = lease_port()
    server = await asyncio.start_server(handler, host, port, ssl=context)
    try:
        yield port
    finally:
        server.close()


async def failure(bootstrap: str, security: KafkaSecurity, timeout: float = 5.0) -> str:
    with pytest.raises(KafkaCheckFailed) as refused:
        await check_kafka(bootstrap, security, timeout)
    return str(refused.value)


async def test_nothing_listening_is_named_with_the_fix() -> None:
    port = lease_port()
    assert await failure(f"127.0.0.1:{port}", PLAINTEXT) == (
        f"nothing listens at 127.0.0.1:{port} (connection refused): is the broker running, and is "
        "KAFKA_BOOTSTRAP_SERVERS right? (`streamer kafka start` runs a local one)")


async def test_a_silent_listener_is_given_up_on_after_the_timeout() -> None:
    async with listener(say_nothing) as port:
        message = await failure(f"127.0.0.1:{port}", PLAINTEXT, timeout=1.0)
    assert message.startswith(f"no answer from Kafka at 127.0.0.1:{port} within 1 s")


async def test_a_listener_dropping_plaintext_requests_may_want_sasl() -> None:
    async with listener(drop_at_first_request) as port:
        message = await failure(f"127.0.0.1:{port}", PLAINTEXT)
    assert "closed the connection at the first request: it may require SASL" in message


async def test_a_plaintext_client_is_told_the_listener_speaks_tls(certificates: dict[str, Path]) -> None:
    async with listener(drop_at_first_request, certificates["server"]) as port:
        message = await failure(f"127.0.0.1:{port}", PLAINTEXT)
    assert f"the listener at 127.0.0.1:{port} speaks TLS, but KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in message


async def test_a_tls_client_is_told_the_listener_does_not_speak_tls() -> None:
    async with listener(drop_at_first_request) as port:
        message = await failure(f"127.0.0.1:{port}", tls(None))
    assert f"the listener at 127.0.0.1:{port} does not speak TLS, but KAFKA_SECURITY_PROTOCOL=SSL" in message


async def test_a_tls_listener_dropping_requests_after_the_handshake_wants_sasl(certificates: dict[str, Path]) -> None:
    async with listener(drop_at_first_request, certificates["server"]) as port:
        message = await failure(f"localhost:{port}", tls(certificates["ca"]))
    assert "closed the connection after the TLS handshake: its listener probably requires SASL" in message


async def test_a_certificate_of_another_ca_is_untrusted_and_the_ca_file_named(certificates: dict[str, Path]) -> None:
    async with listener(say_nothing, certificates["server"]) as port:
        message = await failure(f"127.0.0.1:{port}", tls(certificates["other_ca"]))
        system = await failure(f"127.0.0.1:{port}", tls(None))
    assert re.fullmatch(rf"the certificate of Kafka at 127\.0\.0\.1:{port} is not trusted \(.+\): "
                        rf"KAFKA_SSL_CAFILE={re.escape(str(certificates['other_ca']))} does not hold the CA that "
                        "signed it", message), message
    assert "is not trusted by the system's CAs" in system and "set KAFKA_SSL_CAFILE" in system


async def test_a_certificate_made_out_to_another_name_is_named(certificates: dict[str, Path]) -> None:
    async with listener(say_nothing, certificates["server"], host="0.0.0.0") as port:
        message = await failure(f"127.0.0.2:{port}", tls(certificates["ca"]))
    assert "is not made out to '127.0.0.2'" in message and "KAFKA_SSL_CHECK_HOSTNAME=false" in message


async def test_an_unknown_host_is_named() -> None:
    message = await failure("no-such-host.invalid:9092", PLAINTEXT)
    assert message.startswith("the host 'no-such-host.invalid' of KAFKA_BOOTSTRAP_SERVERS cannot be resolved")


async def test_every_bootstrap_server_is_tried_and_each_cause_kept() -> None:
    first, second = lease_port(), lease_port()
    message = await failure(f"127.0.0.1:{first},127.0.0.1:{second}", PLAINTEXT)
    assert message.startswith(f"no bootstrap server of KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:{first},127.0.0.1:{second}")
    assert f"nothing listens at 127.0.0.1:{first}" in message and f"nothing listens at 127.0.0.1:{second}" in message


async def test_an_advertised_broker_that_cannot_be_reached_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bootstrap server answers (stood in for here) and advertises a broker nobody listens for."""
    unreachable = lease_port()
    real_connect = preflight._connect

    async def bootstrap_answers(host: str, port: int, security: KafkaSecurity, timeout: float,
                                metadata: bool) -> list[tuple[str, int]]:
        if metadata:
            return [("127.0.0.1", unreachable)]
        return await real_connect(host, port, security, timeout, metadata)

    monkeypatch.setattr(preflight, "_connect", bootstrap_answers)
    message = await failure("127.0.0.1:9", PLAINTEXT)
    assert message.startswith(f"the bootstrap server 127.0.0.1:9 answered, but the broker it advertises at "
                              f"127.0.0.1:{unreachable}, where clients go next, cannot be used: nothing listens")
    assert message.endswith("Check the broker's advertised.listeners")
