"""Helpers for the client-compatibility suite.

- `KeywayServer` runs `keyway serve` in a scratch data directory and reads its admin.json.
- `Graph` drives Keyway's Graph-shaped management API with the admin client's token.
- `ClientCertificate` is a throwaway RSA key and self-signed certificate for private_key_jwt.
- `decode_jwt` / `verify_jwt_signature` read and check Keyway's access tokens.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_SCOPE = f"{GRAPH_RESOURCE}/.default"
# Entra names Microsoft Graph by this application id as well as by its URL.
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"

HTTP_TIMEOUT = 30  # seconds, for every request the helpers make
LISTENING = re.compile(r"^Keyway listening on (https://\S+)$", re.MULTILINE)


def unique_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# --------------------------------------------------------------------------------------------
# The server process


class ServerError(RuntimeError):
    """The server did not start, or broke its start-up contract."""


@dataclass(frozen=True)
class AdminInfo:
    """DIR/admin.json: the bootstrap tenant and its administrative client."""

    tenant_id: str
    client_id: str
    client_secret: str
    base_url: str
    ca_path: str

    @classmethod
    def load(cls, path: Path) -> AdminInfo:
        data = json.loads(path.read_text())
        missing = [k for k in ("tenantId", "clientId", "clientSecret", "baseUrl", "caPath") if k not in data]
        if missing:
            raise ServerError(f"{path} lacks {missing}: {sorted(data)}")
        return cls(
            tenant_id=data["tenantId"],
            client_id=data["clientId"],
            client_secret=data["clientSecret"],
            base_url=data["baseUrl"].rstrip("/"),
            ca_path=data["caPath"],
        )


class KeywayServer:
    """`keyway serve --data-dir DIR --listen 127.0.0.1:0`, with stdout and stderr in one log file."""

    def __init__(self, binary: Path, data_dir: Path, log_path: Path):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.url: str | None = None
        self.admin: AdminInfo | None = None
        self.ca_bundle: Path | None = None  # set by whoever writes a bundle that trusts the CA

    def start(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [str(self.binary), "serve", "--data-dir", str(self.data_dir), "--listen", "127.0.0.1:0"]
        with open(self.log_path, "wb") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "NO_COLOR": "1"},
            )
        self.url = self._wait_until_listening(timeout)
        admin_path = self.data_dir / "admin.json"
        if not admin_path.is_file():
            raise ServerError(f"the server said it was listening but {admin_path} does not exist")
        self.admin = AdminInfo.load(admin_path)
        if self.admin.base_url != self.url:
            raise ServerError(f"admin.json baseUrl {self.admin.base_url!r} differs from the announced {self.url!r}")
        if not Path(self.admin.ca_path).is_file():
            raise ServerError(f"admin.json caPath {self.admin.ca_path!r} is not a file")

    def _wait_until_listening(self, timeout: float) -> str:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            match = LISTENING.search(self.log())
            if match:
                return match.group(1).rstrip("/")
            code = self.process.poll()
            if code is not None:
                raise ServerError(f"keyway exited with status {code} before listening\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServerError(f"keyway did not print 'Keyway listening on ...' within {timeout} s\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 10) -> int | None:
        """SIGTERM, then SIGKILL if it is still running after `timeout` seconds."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 200) -> str:
        text = self.log().splitlines()
        cut = "" if len(text) <= lines else f"[... {len(text) - lines} earlier lines in {self.log_path}]\n"
        return cut + "\n".join(text[-lines:])

    # Endpoints, as the clients derive them
    @property
    def info(self) -> AdminInfo:
        """admin.json, once the server is up."""
        if self.admin is None:
            raise ServerError("the server is not started")
        return self.admin

    @property
    def tenant_id(self) -> str:
        return self.info.tenant_id

    @property
    def base_url(self) -> str:
        return self.info.base_url

    @property
    def authority(self) -> str:
        """msal's authority: the host and the tenant."""
        return f"{self.base_url}/{self.tenant_id}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.authority}/oauth2/v2.0/token"

    @property
    def jwks_uri(self) -> str:
        return f"{self.authority}/discovery/v2.0/keys"


def write_ca_bundle(path: Path, extra_ca: str) -> Path:
    """The system bundle (whatever the environment trusts now) followed by Keyway's CA."""
    system = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    parts = []
    if Path(system).is_file():
        parts.append(Path(system).read_text().rstrip("\n") + "\n")
    parts.append(Path(extra_ca).read_text().rstrip("\n") + "\n")
    path.write_text("".join(parts))
    return path


# --------------------------------------------------------------------------------------------
# The Graph-shaped management API


class GraphError(RuntimeError):
    def __init__(self, method: str, url: str, response: requests.Response):
        super().__init__(f"{method} {url} -> {response.status_code}: {response.text[:2000]}")
        self.status = response.status_code


@dataclass
class RegisteredApp:
    """An application registration with its service principal."""

    object_id: str
    client_id: str
    display_name: str
    secret: str | None = None
    identifier_uri: str | None = None
    service_principal_id: str | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def default_scope(self) -> str:
        """`<resource>/.default` for this app used as an API."""
        if not self.identifier_uri:
            raise ValueError(f"{self.display_name} has no identifier URI")
        return f"{self.identifier_uri}/.default"


def request_token(server: KeywayServer, session: requests.Session, client_id: str, client_secret: str, scope: str) -> requests.Response:
    return session.post(
        server.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        },
        timeout=HTTP_TIMEOUT,
    )


class Graph:
    """Calls {baseUrl}/v1.0/... with the admin client's bearer token."""

    def __init__(self, server: KeywayServer, ca_bundle: Path):
        self.server = server
        self.session = requests.Session()
        self.session.verify = str(ca_bundle)
        admin = server.info
        response = request_token(server, self.session, admin.client_id, admin.client_secret, GRAPH_SCOPE)
        if response.status_code != 200:
            raise GraphError("POST", server.token_endpoint, response)
        self.session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def call(self, method: str, path: str, body: dict | None = None, expect: int = 200) -> dict | None:
        url = f"{self.server.base_url}/v1.0/{path.lstrip('/')}"
        response = self.session.request(method, url, json=body, timeout=HTTP_TIMEOUT)
        if response.status_code != expect:
            raise GraphError(method, url, response)
        return response.json() if response.content else None

    def create_application(self, display_name: str, identifier_uris: list[str] | None = None) -> dict:
        body: dict = {"displayName": display_name}
        if identifier_uris:
            body["identifierUris"] = identifier_uris
        return self.call("POST", "applications", body, expect=201)

    def add_password(self, object_id: str, display_name: str = "compat") -> dict:
        body = {"passwordCredential": {"displayName": display_name}}
        return self.call("POST", f"applications/{object_id}/addPassword", body)

    def set_key_credentials(self, object_id: str, key_credentials: list[dict]) -> None:
        self.call("PATCH", f"applications/{object_id}", {"keyCredentials": key_credentials}, expect=204)

    def create_service_principal(self, app_id: str) -> dict:
        return self.call("POST", "servicePrincipals", {"appId": app_id}, expect=201)

    def register_app(
        self,
        display_name: str,
        *,
        secret: bool = True,
        identifier_uri: str | None = None,
        certificate: ClientCertificate | None = None,
    ) -> RegisteredApp:
        """An application ready for client credentials: registration, credentials, service principal."""
        created = self.create_application(display_name, [identifier_uri] if identifier_uri else None)
        app = RegisteredApp(
            object_id=created["id"],
            client_id=created["appId"],
            display_name=display_name,
            identifier_uri=identifier_uri,
            raw=created,
        )
        if secret:
            app.secret = self.add_password(app.object_id)["secretText"]
        if certificate is not None:
            self.set_key_credentials(app.object_id, [certificate.key_credential()])
        app.service_principal_id = self.create_service_principal(app.client_id)["id"]
        return app


# --------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class ClientCertificate:
    """A throwaway RSA 2048 key and its self-signed certificate."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @classmethod
    def generate(cls, common_name: str) -> ClientCertificate:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.now(timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @property
    def common_name(self) -> str:
        return self.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def cert_der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def sha1_thumbprint(self) -> str:
        """Hex, as Entra's portal shows it and msal's "thumbprint" expects."""
        return self.cert.fingerprint(hashes.SHA1()).hex().upper()

    def key_credential(self) -> dict:
        """The Graph keyCredential that registers this certificate."""
        return {
            "type": "AsymmetricX509Cert",
            "usage": "Verify",
            "key": base64.b64encode(self.cert_der).decode(),
            "displayName": f"CN={self.common_name}",
        }

    def write_pem(self, path: Path) -> Path:
        """Private key and certificate in one PEM file (azure-identity's certificate_path)."""
        path.write_text(self.key_pem + self.cert_pem)
        return path

    def write_pfx(self, path: Path) -> Path:
        path.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"compat", self.key, self.cert, None, serialization.NoEncryption()
            )
        )
        return path


# --------------------------------------------------------------------------------------------
# JWTs


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_jwt(token: str) -> tuple[dict, dict]:
    """(header, payload) of a compact JWS, without verifying it."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"not a compact JWS: {len(parts)} parts")
    return json.loads(_b64url_decode(parts[0])), json.loads(_b64url_decode(parts[1]))


def _b64url_int(value: str) -> int:
    return int.from_bytes(_b64url_decode(value), "big")


def verify_jwt_signature(token: str, jwks: dict) -> dict:
    """Check the signature with the JWKS key named by `kid` (ES256 or RS256); return the header."""
    header, _ = decode_jwt(token)
    signing_input, _, signature_part = token.rpartition(".")
    signature = _b64url_decode(signature_part)
    keys = [k for k in jwks.get("keys", []) if k.get("kid") == header.get("kid")]
    if len(keys) != 1:
        raise AssertionError(f"JWKS has {len(keys)} keys with kid {header.get('kid')!r}: {jwks}")
    jwk = keys[0]
    alg = header.get("alg")
    try:
        if alg == "ES256" and jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            public = ec.EllipticCurvePublicNumbers(_b64url_int(jwk["x"]), _b64url_int(jwk["y"]), ec.SECP256R1()).public_key()
            if len(signature) != 64:
                raise AssertionError(f"ES256 signature is {len(signature)} bytes, not 64")
            der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
            public.verify(der, signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        elif alg == "RS256" and jwk.get("kty") == "RSA":
            public = rsa.RSAPublicNumbers(_b64url_int(jwk["e"]), _b64url_int(jwk["n"])).public_key()
            public.verify(signature, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            raise AssertionError(f"unexpected alg {alg!r} for JWK {jwk}")
    except InvalidSignature:
        raise AssertionError(f"signature does not verify with JWK {jwk}") from None
    return header


def assert_app_token(
    token: str,
    *,
    tenant_id: str,
    client_id: str,
    resource: str,
    resource_app_id: str | None = None,
    acr: str | None = None,
) -> dict:
    """Check an app-only access token's claims (without its signature) and return them.

    Entra's `aud` is the resource's identifier (v1 tokens) or its application id (v2 tokens).
    `acr` is how the client authenticated: "1" secret, "2" certificate.
    """
    _, claims = decode_jwt(token)
    audiences = {resource} | ({resource_app_id} if resource_app_id else set())
    assert claims.get("aud") in audiences, f"aud {claims.get('aud')!r} is not one of {sorted(audiences)}: {claims}"
    assert claims.get("tid") == tenant_id, f"tid {claims.get('tid')!r} != {tenant_id!r}: {claims}"
    assert claims.get("appid") == client_id, f"appid {claims.get('appid')!r} != {client_id!r}: {claims}"
    if "azp" in claims:
        assert claims["azp"] == client_id, f"azp {claims['azp']!r} != {client_id!r}: {claims}"
    if acr is not None:
        assert claims.get("appidacr") == acr, f"appidacr {claims.get('appidacr')!r} != {acr!r}: {claims}"
    now = time.time()
    assert isinstance(claims.get("exp"), (int, float)) and claims["exp"] > now, f"expired or no exp: {claims}"
    assert isinstance(claims.get("iat"), (int, float)) and claims["iat"] <= now + 300, f"iat in the future: {claims}"
    return claims
