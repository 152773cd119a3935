"""Kafka security from the environment: TLS and SASL (PLAIN, SCRAM) settings, checked with messages
that name the variable; the same settings for Faust and for aiokafka clients; no secret in a repr or
a log line."""

from __future__ import annotations

import logging
import re
import subprocess
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from streamer.app.settings import KafkaSecurity, SettingsError, kafka_security, load_worker_settings

SECRET = "s3cr3t-Pa55"
SCRAM = {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
         "KAFKA_SASL_USERNAME": "streamer", "KAFKA_SASL_PASSWORD": SECRET}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A self-signed certificate and its key, made with the openssl command (a CA file and a client pair)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=kafka",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return {"cert": cert, "key": key}


def test_the_default_is_plaintext_without_credentials():
    security = kafka_security({})
    assert security == KafkaSecurity()
    assert security.client_kwargs() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials() is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "scram-sha-512"])
def test_sasl_settings_reach_aiokafka_and_faust_alike(mechanism: str):
    security = kafka_security({**SCRAM, "KAFKA_SECURITY_PROTOCOL": "sasl_plaintext", "KAFKA_SASL_MECHANISM": mechanism})
    kwargs = security.client_kwargs()
    assert kwargs == {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism.upper(),
                      "sasl_plain_username": "streamer", "sasl_plain_password": SECRET}
    assert credentials_to_aiokafka_auth(security.faust_credentials()) == {**kwargs, "ssl_context": None}


def test_sasl_ssl_uses_the_ca_file_and_faust_gets_the_same_context_settings(tls_files: dict[str, Path]):
    security = kafka_security({**SCRAM, "KAFKA_SSL_CAFILE": str(tls_files["cert"])})
    kwargs = security.client_kwargs()
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["ssl_context"].check_hostname
    faust_kwargs = credentials_to_aiokafka_auth(security.faust_credentials())
    assert {k: v for k, v in faust_kwargs.items() if k != "ssl_context"} == {
        k: v for k, v in kwargs.items() if k != "ssl_context"}
    assert faust_kwargs["ssl_context"].verify_mode == kwargs["ssl_context"].verify_mode


def test_mutual_tls_loads_the_client_certificate(tls_files: dict[str, Path]):
    cert, key = str(tls_files["cert"]), str(tls_files["key"])
    security = kafka_security({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": cert, "KAFKA_SSL_CERTFILE": cert,
                               "KAFKA_SSL_KEYFILE": key})
    assert security.client_kwargs()["security_protocol"] == "SSL"
    assert credentials_to_aiokafka_auth(security.faust_credentials())["security_protocol"] == "SSL"


async def test_aiokafka_accepts_the_client_settings(tls_files: dict[str, Path]):
    for env in (SCRAM | {"KAFKA_SSL_CAFILE": str(tls_files["cert"])}, {"KAFKA_SECURITY_PROTOCOL": "SSL"}, {}):
        producer = AIOKafkaProducer(bootstrap_servers="127.0.0.1:1", **kafka_security(env).client_kwargs())
        await producer.stop()


def test_the_password_can_come_from_a_file(tmp_path: Path):
    secret_file = tmp_path / "password"
    secret_file.write_text(SECRET + "\n")
    env = {**SCRAM, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_PASSWORD": "",
           "KAFKA_SASL_PASSWORD_FILE": str(secret_file)}
    assert kafka_security(env).sasl_password == SECRET


@pytest.mark.parametrize(("env", "message"), [
    ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL = 'TLS': must be one of"),
    ({**SCRAM, "KAFKA_SASL_MECHANISM": ""}, "KAFKA_SASL_MECHANISM = None: with KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
    ({**SCRAM, "KAFKA_SASL_MECHANISM": "GSSAPI"}, "one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"),
    ({**SCRAM, "KAFKA_SASL_PASSWORD": ""}, "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
    ({**SCRAM, "KAFKA_SASL_PASSWORD_FILE": "/x"}, "both KAFKA_SASL_PASSWORD and KAFKA_SASL_PASSWORD_FILE"),
    ({**SCRAM, "KAFKA_SASL_PASSWORD": "", "KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw"},
     "KAFKA_SASL_PASSWORD_FILE = '/nonexistent/pw': cannot read it"),
    ({"KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": SECRET}, "uses no SASL: set KAFKA_SECURITY_PROTOCOL=SASL_SSL"),
    ({"KAFKA_SSL_CAFILE": "/etc/hostname"}, "uses no TLS: set KAFKA_SECURITY_PROTOCOL=SSL"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "not a readable file"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/etc/hostname"}, "without KAFKA_SSL_CERTFILE"),
    ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/etc/hostname"}, "cannot be used"),
])
def test_unusable_settings_name_the_variable_and_never_the_secret(env: dict[str, str], message: str):
    with pytest.raises(SettingsError, match=re.escape(message)) as refusal:
        kafka_security(env)
    assert SECRET not in str(refusal.value)


def test_no_secret_in_the_settings_repr_or_the_worker_start_up_logs(caplog: pytest.LogCaptureFixture):
    from streamer.app.main import create_app

    env = {**SCRAM, "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN",
           "KAFKA_SASL_PASSWORD": SECRET, "STREAMER_STORE": "memory://"}
    settings = load_worker_settings(env)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    with caplog.at_level(logging.DEBUG):
        app = create_app(settings)
    assert SECRET not in caplog.text
    assert "sends the password unencrypted" in caplog.text  # PLAIN over SASL_PLAINTEXT is warned about
    assert SECRET not in repr(app.conf.broker_credentials)


def test_the_web_server_binds_loopback_and_serves_no_table_data_unless_told():
    from streamer.app.main import create_app

    app = create_app(load_worker_settings({"STREAMER_STORE": "memory://"}))
    assert (app.conf.web_bind, app.conf.web_tables_enabled) == ("127.0.0.1", False)
    told = load_worker_settings({"STREAMER_WEB_HOST": "0.0.0.0", "STREAMER_WEB_TABLES": "true"})
    assert (told.web_host, told.web_tables) == ("0.0.0.0", True)


@pytest.mark.parametrize("env", [{}, {"KAFKA_SECURITY_PROTOCOL": "SSL"}, SCRAM])
def test_the_pre_flight_check_connects_with_the_same_settings_as_every_client(env: dict[str, str]):
    """The check opens its connection with aiokafka's `create_conn`, given `client_kwargs()` as they are."""
    import inspect

    from aiokafka.conn import create_conn

    assert set(kafka_security(env).client_kwargs()) <= set(inspect.signature(create_conn).parameters)
