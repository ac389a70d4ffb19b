"""TLS to the instance: certificates are verified by default, a CA bundle is honoured, mutual TLS works."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fixtures.http_proxy import HttpProxy
from servicenow.server import ServiceNowStandIn

from ansible_collections.relops.release.plugins.plugin_utils.itsm.errors import ITSMError, ITSMUnreachable
from ansible_collections.relops.release.plugins.plugin_utils.itsm.instance import resolve_instance
from ansible_collections.relops.release.plugins.plugin_utils.itsm.servicenow import ServiceNowClient


def _write_pair(folder: str, name: str, subject: str, issuer_key: object, issuer: x509.Name | None, ca: bool) -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    subject_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject_name)
        .issuer_name(issuer or subject_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    signer = key if issuer_key is None else issuer_key
    certificate = builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    with open(os.path.join(folder, name + ".pem"), "wb") as handle:
        handle.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(folder, name + ".key"), "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return os.path.join(folder, name)


@pytest.fixture
def tls_instance(tmp_path: "os.PathLike[str]") -> Iterator[tuple[ServiceNowStandIn, str]]:
    folder = str(tmp_path)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relops test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    with open(os.path.join(folder, "ca.pem"), "wb") as handle:
        handle.write(ca_cert.public_bytes(serialization.Encoding.PEM))
    server = _write_pair(folder, "server", "127.0.0.1", ca_key, ca_name, ca=False)
    _write_pair(folder, "client", "deploy-bot", ca_key, ca_name, ca=False)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=os.path.join(folder, "ca.pem"))
    context.load_cert_chain(server + ".pem", server + ".key")
    context.verify_mode = ssl.CERT_REQUIRED
    standin = ServiceNowStandIn().start(tls=context)
    try:
        yield standin, folder
    finally:
        standin.stop()


def test_mutual_tls_with_a_ca_bundle(tls_instance: tuple[ServiceNowStandIn, str]) -> None:
    standin, folder = tls_instance
    options = {
        "host": standin.url,
        "username": "admin",
        "password": "admin-secret",
        "ca_path": os.path.join(folder, "ca.pem"),
        "client_certificate_file": os.path.join(folder, "client.pem"),
        "client_key_file": os.path.join(folder, "client.key"),
    }
    client = ServiceNowClient(resolve_instance(options, {}))
    assert client.list_records("sys_user", "user_name=admin")[0]["user_name"] == "admin"


def test_the_client_certificate_can_come_from_the_environment(tls_instance: tuple[ServiceNowStandIn, str]) -> None:
    """SN_CLIENT_CERTIFICATE_FILE and SN_CLIENT_KEY_FILE, as servicenow.itsm reads them."""
    standin, folder = tls_instance
    env = {
        "SN_CLIENT_CERTIFICATE_FILE": os.path.join(folder, "client.pem"),
        "SN_CLIENT_KEY_FILE": os.path.join(folder, "client.key"),
    }
    options = {
        "host": standin.url,
        "username": "admin",
        "password": "admin-secret",
        "ca_path": os.path.join(folder, "ca.pem"),
    }
    config = resolve_instance(options, env)
    assert sorted(config.env_used) == sorted(env)
    assert ServiceNowClient(config).list_records("sys_user", "user_name=admin")[0]["user_name"] == "admin"
    with pytest.raises(ITSMError, match="SN_CLIENT_KEY_FILE"):
        resolve_instance(options, {"SN_CLIENT_CERTIFICATE_FILE": env["SN_CLIENT_CERTIFICATE_FILE"]})


def test_certificates_are_verified_by_default(tls_instance: tuple[ServiceNowStandIn, str]) -> None:
    standin, folder = tls_instance
    options = {
        "host": standin.url,
        "username": "admin",
        "password": "admin-secret",
        "client_certificate_file": os.path.join(folder, "client.pem"),
        "client_key_file": os.path.join(folder, "client.key"),
    }
    with pytest.raises(ITSMUnreachable, match=r"set instance\.ca_path"):
        ServiceNowClient(resolve_instance(options, {})).list_records("sys_user", "")


def test_a_missing_client_certificate_is_refused(tls_instance: tuple[ServiceNowStandIn, str]) -> None:
    standin, folder = tls_instance
    options = {"host": standin.url, "username": "admin", "password": "p", "ca_path": os.path.join(folder, "ca.pem")}
    with pytest.raises(ITSMUnreachable):
        ServiceNowClient(resolve_instance(options, {}), sleep=lambda _s: None).list_records("sys_user", "")


def test_https_is_tunnelled_through_the_proxy_and_verified_against_the_ca_bundle(
    tls_instance: tuple[ServiceNowStandIn, str], http_proxy: HttpProxy
) -> None:
    standin, folder = tls_instance
    options = {
        "host": standin.url,
        "username": "admin",
        "password": "admin-secret",
        "ca_path": os.path.join(folder, "ca.pem"),
        "client_certificate_file": os.path.join(folder, "client.pem"),
        "client_key_file": os.path.join(folder, "client.key"),
        "proxy": http_proxy.url,
    }
    client = ServiceNowClient(resolve_instance(options, {}))
    assert client.list_records("sys_user", "user_name=admin")[0]["user_name"] == "admin"
    authority = standin.url.replace("https://", "")
    assert ("CONNECT", authority) in http_proxy.requests(), http_proxy.requests()
    untrusted = ServiceNowClient(resolve_instance(dict(options, ca_path=None), {}))
    with pytest.raises(ITSMUnreachable, match=r"set instance\.ca_path"):
        untrusted.list_records("sys_user", "")
