"""TLS and SASL for the local broker: the security modes, the certificates, the SCRAM users and the
client settings (`client.env`).

- `plaintext`: no TLS, no authentication (the default).
- `ssl`: the client listener speaks TLS with a broker certificate signed by a CA made for this data dir.
- `sasl_ssl`: the same TLS, and clients log in with SCRAM-SHA-512 as user `streamer`; the user (and the
  broker's own inter-broker user) are written into the storage when it is formatted.

The controller listener (internal: the broker talks to its own controller there) speaks TLS too in
the secured modes, and requires a client certificate signed by the data dir's CA: no listener of a
secured broker takes a connection that has not proven who it is, nor one in clear text.

Everything lives in the data dir's `security/` folder (mode 0700): `ca.pem` (what clients trust),
`broker.p12` (the broker's key and certificate), the passwords, one file each (mode 0600). The CA's key
signs the broker certificate once and is deleted. The certificates are made with the openssl command.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from streamer.devkafka.errors import DevKafkaError, text_tail

SECURITY_MODES = ("plaintext", "ssl", "sasl_ssl")
DEFAULT_SECURITY = "plaintext"
CLIENT_USER = "streamer"
BROKER_USER = "broker"
SCRAM_MECHANISM = "SCRAM-SHA-512"
CERTIFICATE_DAYS = 825
CERTIFICATE_NAMES = "DNS:localhost,IP:127.0.0.1"
CLIENT_ENV_NAME = "client.env"
_PROTOCOLS = {"plaintext": "PLAINTEXT", "ssl": "SSL", "sasl_ssl": "SASL_SSL"}
_OPENSSL_TIMEOUT_SECONDS = 60


def parse_mode(text: str) -> str:
    mode = text.strip().lower().replace("-", "_")
    if mode not in SECURITY_MODES:
        raise DevKafkaError(f"security mode {text!r} is not one of {', '.join(SECURITY_MODES)}")
    return mode


@dataclass(frozen=True)
class BrokerSecurity:
    """The security of one data dir's broker: its mode and the files in `<data dir>/security/`."""

    mode: str
    folder: Path

    @property
    def protocol(self) -> str:
        """The client listener's Kafka security protocol (also its listener name)."""
        return _PROTOCOLS[self.mode]

    @property
    def uses_tls(self) -> bool:
        return self.mode != "plaintext"

    @property
    def uses_sasl(self) -> bool:
        return self.mode == "sasl_ssl"

    @property
    def ca_file(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "broker.p12"

    @property
    def keystore_password_file(self) -> Path:
        return self.folder / "keystore.password"

    @property
    def broker_password_file(self) -> Path:
        return self.folder / "broker.password"

    @property
    def client_password_file(self) -> Path:
        return self.folder / "client.password"

    def prepare(self, progress: Callable[[str], None]) -> None:
        """Make what this mode needs and is missing: the CA and the broker certificate (TLS), the
        passwords of the SCRAM users (SASL)."""
        if not self.uses_tls:
            return
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not (self.ca_file.is_file() and self.keystore.is_file() and self.keystore_password_file.is_file()):
            progress(f"making a CA and a broker certificate for 127.0.0.1 in {self.folder} (openssl)")
            make_certificates(self.folder, _new_secret(self.keystore_password_file))
        if self.uses_sasl:
            for password in (self.broker_password_file, self.client_password_file):
                if not password.is_file():
                    _new_secret(password)

    def format_arguments(self) -> list[str]:
        """Arguments of `StorageTool format` that create the SCRAM users (none without SASL)."""
        if not self.uses_sasl:
            return []
        users = ((BROKER_USER, self.broker_password_file), (CLIENT_USER, self.client_password_file))
        return [part for user, file in users
                for part in ("--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={_read(file)}]")]

    def server_properties(self) -> dict[str, str]:
        """The TLS and SASL lines of server.properties (none for plaintext)."""
        if not self.uses_tls:
            return {}
        store_password = _read(self.keystore_password_file)
        settings = {
            "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": str(self.keystore),
            "ssl.keystore.password": store_password,
            "ssl.key.password": store_password,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            # The controller listener takes only the holder of a certificate of this CA: the broker.
            "listener.name.controller.ssl.client.auth": "required",
        }
        if self.uses_sasl:
            listener = self.protocol.lower()
            mechanism = SCRAM_MECHANISM.lower()
            settings.update({
                "sasl.enabled.mechanisms": SCRAM_MECHANISM,
                "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
                f"listener.name.{listener}.sasl.enabled.mechanisms": SCRAM_MECHANISM,
                f"listener.name.{listener}.{mechanism}.sasl.jaas.config": (
                    "org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{BROKER_USER}" password="{_read(self.broker_password_file)}";'
                ),
            })
        return settings

    def client_settings(self, bootstrap: str) -> dict[str, str]:
        """The KAFKA_* settings of a client of this broker."""
        settings = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_SECURITY_PROTOCOL": self.protocol}
        if self.uses_sasl:
            settings.update({"KAFKA_SASL_MECHANISM": SCRAM_MECHANISM, "KAFKA_SASL_USERNAME": CLIENT_USER,
                             "KAFKA_SASL_PASSWORD_FILE": str(self.client_password_file)})
        if self.uses_tls:
            settings["KAFKA_SSL_CAFILE"] = str(self.ca_file)
        return settings


def write_client_env(path: Path, settings: Mapping[str, str]) -> None:
    """KEY=VALUE lines; a value is shell-quoted only when it needs it, so the file is both an env file
    (docker --env-file, systemd EnvironmentFile) and a shell fragment (`set -a; . FILE; set +a`)."""
    lines = [
        "# Written by `streamer kafka start` at each start: the settings of a client of this broker.",
        f"# In a shell: set -a; . {shlex.quote(str(path))}; set +a",
        *(f"{key}={shlex.quote(value)}" for key, value in settings.items()),
    ]
    path.write_text("\n".join(lines) + "\n")


def read_client_env(path: Path) -> dict[str, str]:
    """The settings of a client.env (blank lines and # comments skipped)."""
    settings: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings[key.strip()] = "".join(shlex.split(value))
    return settings


def make_certificates(folder: Path, store_password: str) -> None:
    """A CA (`ca.pem`) and, signed by it, a broker key and certificate for localhost and 127.0.0.1 in a
    PKCS#12 keystore (`broker.p12`, protected by `store_password`). The CA's key is deleted."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise DevKafkaError("the secured local broker needs the openssl command to make its certificates: "
                            "install it (apt-get install openssl), or use --security plaintext")
    ca_key, broker_key, request = folder / "ca.key", folder / "broker.key", folder / "broker.csr"
    extensions = folder / "broker.ext"
    extensions.write_text(
        f"subjectAltName = {CERTIFICATE_NAMES}\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth, clientAuth\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    days = str(CERTIFICATE_DAYS)
    store = os.environ.copy()
    store["STREAMER_KEYSTORE_PASSWORD"] = store_password  # given to openssl by name, never on its command line
    try:
        for command in (
            [openssl, "req", "-x509", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key),
             "-out", str(folder / "ca.pem"), "-days", days, "-subj", "/CN=streamer local Kafka CA",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            [openssl, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", str(broker_key), "-out",
             str(request), "-subj", "/CN=localhost"],
            [openssl, "x509", "-req", "-in", str(request), "-CA", str(folder / "ca.pem"), "-CAkey", str(ca_key),
             "-set_serial", str(secrets.randbits(63)), "-days", days, "-extfile", str(extensions),
             "-out", str(folder / "broker.pem")],
            [openssl, "pkcs12", "-export", "-name", "broker", "-in", str(folder / "broker.pem"), "-inkey",
             str(broker_key), "-certfile", str(folder / "ca.pem"), "-out", str(folder / "broker.p12"),
             "-passout", "env:STREAMER_KEYSTORE_PASSWORD"],
        ):
            _run(command, store)
    finally:
        for leftover in (ca_key, broker_key, request, extensions):
            leftover.unlink(missing_ok=True)
    (folder / "broker.p12").chmod(0o600)


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=_OPENSSL_TIMEOUT_SECONDS, env=env,
                            check=False)
    if result.returncode != 0:
        raise DevKafkaError(f"making the broker's certificates failed (exit {result.returncode}):\n"
                            f"{text_tail(result.stdout + result.stderr)}\ncommand: {shlex.join(command)}")


def _new_secret(path: Path) -> str:
    """A random password (URL-safe characters only: it goes into JAAS and --add-scram unquoted), in a
    file only its owner may read."""
    secret = secrets.token_urlsafe(24)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secret + "\n")
    return secret


def _read(path: Path) -> str:
    return path.read_text().strip()
