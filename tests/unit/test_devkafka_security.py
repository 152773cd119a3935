"""The local broker's security modes without a broker: the listeners and TLS/SASL lines of
server.properties, the certificates openssl makes, the SCRAM users given to the storage format,
client.env, and the refusals (an unknown mode, another mode on a formatted data dir)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest

from streamer.app.settings import kafka_security
from streamer.cli import main as streamer_main
from streamer.devkafka import DevKafkaError, LocalKafka
from streamer.devkafka.properties import BrokerConfig, server_properties
from streamer.devkafka.security import (
    BrokerSecurity,
    make_certificates,
    parse_mode,
    read_client_env,
    write_client_env,
)
from streamer.ports import lease_port


def parse_properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


@pytest.fixture(scope="module")
def sasl(tmp_path_factory: pytest.TempPathFactory) -> BrokerSecurity:
    security = BrokerSecurity("sasl_ssl", tmp_path_factory.mktemp("data") / "security")
    security.prepare(lambda _line: None)
    return security


def test_a_secured_client_listener_is_also_the_inter_broker_one_and_the_controller_speaks_tls(
        tmp_path: Path, sasl: BrokerSecurity) -> None:
    config = BrokerConfig(19192, 40123, tmp_path, 3, sasl.protocol, sasl.server_properties())
    properties = parse_properties(server_properties(config))
    assert properties["listeners"] == "SASL_SSL://127.0.0.1:19192,CONTROLLER://127.0.0.1:40123"
    assert properties["advertised.listeners"] == "SASL_SSL://127.0.0.1:19192"
    assert properties["inter.broker.listener.name"] == "SASL_SSL"
    assert properties["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SSL"
    assert properties["listener.name.controller.ssl.client.auth"] == "required"
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert properties["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert 'username="broker"' in properties["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert properties["ssl.keystore.location"] == str(sasl.keystore)
    assert properties["ssl.truststore.location"] == str(sasl.ca_file)
    plain = parse_properties(server_properties(BrokerConfig(19192, 40123, tmp_path, 3)))
    assert plain["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert not any(key.startswith(("ssl.", "sasl.")) for key in plain)


def test_the_broker_certificate_is_signed_by_the_ca_for_localhost_and_127_0_0_1(sasl: BrokerSecurity) -> None:
    folder = sasl.folder
    assert sorted(path.name for path in folder.iterdir()) == [
        "broker.p12", "broker.password", "broker.pem", "ca.pem", "client.password", "keystore.password"]
    assert folder.stat().st_mode & 0o077 == 0
    for secret in ("broker.p12", "broker.password", "client.password", "keystore.password"):
        assert (folder / secret).stat().st_mode & 0o077 == 0, secret
    verified = subprocess.run(["openssl", "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile",
                               str(sasl.ca_file), str(folder / "broker.pem")], capture_output=True, text=True,
                              check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    names = subprocess.run(["openssl", "x509", "-in", str(folder / "broker.pem"), "-noout", "-ext", "subjectAltName"],
                           capture_output=True, text=True, check=True).stdout
    assert "DNS:localhost" in names and "IP Address:127.0.0.1" in names
    # The keystore opens with its password and holds the broker key and the chain.
    password = (folder / "keystore.password").read_text().strip()
    listed = subprocess.run(["openssl", "pkcs12", "-in", str(sasl.keystore), "-passin", f"pass:{password}", "-info",
                             "-noout"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    ssl.create_default_context(cafile=str(sasl.ca_file))  # Python's TLS takes the CA file as it is


def test_the_scram_users_are_given_to_the_storage_format(sasl: BrokerSecurity) -> None:
    arguments = sasl.format_arguments()
    assert arguments[0::2] == ["--add-scram", "--add-scram"]
    client_password = sasl.client_password_file.read_text().strip()
    assert f"SCRAM-SHA-512=[name=streamer,password={client_password}]" in arguments
    assert any(argument.startswith("SCRAM-SHA-512=[name=broker,password=") for argument in arguments)
    assert BrokerSecurity("ssl", sasl.folder).format_arguments() == []


def test_client_settings_per_mode_are_what_the_commands_read(sasl: BrokerSecurity, tmp_path: Path) -> None:
    assert BrokerSecurity("plaintext", tmp_path).client_settings("127.0.0.1:1") == {
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    assert BrokerSecurity("ssl", sasl.folder).client_settings("127.0.0.1:1")["KAFKA_SSL_CAFILE"] == str(sasl.ca_file)
    settings = sasl.client_settings("127.0.0.1:1")
    security = kafka_security(settings)
    assert (security.protocol, security.sasl_mechanism, security.sasl_username) == ("SASL_SSL", "SCRAM-SHA-512",
                                                                                   "streamer")
    assert security.sasl_password == sasl.client_password_file.read_text().strip()


def test_client_env_is_key_value_lines_that_a_shell_reads_alike(tmp_path: Path) -> None:
    folder = tmp_path / "a dir with spaces"
    folder.mkdir()
    path = folder / "client.env"
    settings = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19193", "KAFKA_SSL_CAFILE": str(folder / "ca.pem")}
    write_client_env(path, settings)
    assert "KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:19193\n" in path.read_text()
    assert read_client_env(path) == settings
    shell = subprocess.run(["sh", "-c", f'set -a; . "{path}"; set +a; printf %s "$KAFKA_SSL_CAFILE"'],
                           capture_output=True, text=True, check=True)
    assert shell.stdout == settings["KAFKA_SSL_CAFILE"]


def test_certificates_need_openssl_and_say_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DevKafkaError, match="needs the openssl command"):
        make_certificates(tmp_path, "pw")


def test_an_unknown_mode_is_refused() -> None:
    assert parse_mode("SASL-SSL") == "sasl_ssl"
    with pytest.raises(DevKafkaError, match="is not one of plaintext, ssl, sasl_ssl"):
        parse_mode("kerberos")
    with pytest.raises(SystemExit):
        streamer_main(["kafka", "start", "--security", "kerberos"])


def test_a_formatted_data_dir_keeps_its_mode_and_another_is_refused_before_any_work(tmp_path: Path) -> None:
    broker = LocalKafka(port=lease_port(), data_dir=tmp_path / "data", version="3.9.1", security="plaintext")
    broker.log_dir.mkdir(parents=True)
    (broker.log_dir / "meta.properties").write_text("cluster.id=x\n")
    broker.security_folder.mkdir()
    broker.security_mode_file.write_text("sasl_ssl\n")
    with pytest.raises(DevKafkaError, match=r"made with --security sasl_ssl, not plaintext.*--fresh"):
        broker.start()
    assert LocalKafka(port=broker.port, data_dir=broker.data_dir).security.mode == "sasl_ssl"
    broker.security_mode_file.unlink()  # formatted before security modes existed: plaintext
    assert LocalKafka(port=broker.port, data_dir=broker.data_dir).security.mode == "plaintext"
