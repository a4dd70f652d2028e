"""MSAL for Python against Keyway: client secrets, certificates, and Entra-shaped errors."""

from __future__ import annotations

from pathlib import Path

import msal
import pytest
import requests

from keyway_server import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    GRAPH_SCOPE,
    HTTP_TIMEOUT,
    ClientCertificate,
    KeywayServer,
    RegisteredApp,
    assert_app_token,
    verify_jwt_signature,
)


def confidential_client(keyway: KeywayServer, client_id: str, credential) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=credential,
        authority=keyway.authority,
        instance_discovery=False,  # otherwise msal asks login.microsoftonline.com first
        timeout=HTTP_TIMEOUT,
    )


def acquire(app: msal.ConfidentialClientApplication, scope: str) -> str:
    """A fresh token from Keyway (not msal's cache) for one scope."""
    result = app.acquire_token_for_client(scopes=[scope])
    assert "access_token" in result, f"msal got no token for {scope}: {result}"
    assert result.get("token_type") == "Bearer", result
    assert result.get("token_source") == "identity_provider", result
    assert result.get("expires_in", 0) > 0, result
    return result["access_token"]


def test_client_secret_for_graph_and_an_api(keyway: KeywayServer, secret_app: RegisteredApp, api_app: RegisteredApp):
    app = confidential_client(keyway, secret_app.client_id, secret_app.secret)

    graph_token = acquire(app, GRAPH_SCOPE)
    assert_app_token(
        graph_token,
        tenant_id=keyway.tenant_id,
        client_id=secret_app.client_id,
        resource=GRAPH_RESOURCE,
        resource_app_id=GRAPH_APP_ID,
        acr="1",
    )

    api_token = acquire(app, api_app.default_scope)
    assert_app_token(
        api_token,
        tenant_id=keyway.tenant_id,
        client_id=secret_app.client_id,
        resource=api_app.identifier_uri,
        resource_app_id=api_app.client_id,
        acr="1",
    )


def test_access_token_verifies_with_the_tenant_jwks(keyway: KeywayServer, secret_app: RegisteredApp):
    app = confidential_client(keyway, secret_app.client_id, secret_app.secret)
    token = acquire(app, GRAPH_SCOPE)

    response = requests.get(keyway.jwks_uri, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, f"GET {keyway.jwks_uri} -> {response.status_code}: {response.text}"
    verify_jwt_signature(token, response.json())


# How msal builds the client assertion from each credential shape (msal 1.39):
#   sha1-thumbprint:    RS256, header x5t (SHA-1)
#   public-certificate: PS256, header x5t#S256 and x5c
#   pfx:                PS256, header x5t#S256
CERTIFICATE_CREDENTIALS = {
    "sha1-thumbprint": lambda cert, tmp: {"private_key": cert.key_pem, "thumbprint": cert.sha1_thumbprint},
    "public-certificate": lambda cert, tmp: {"private_key": cert.key_pem, "public_certificate": cert.cert_pem},
    "pfx": lambda cert, tmp: {"private_key_pfx_path": str(cert.write_pfx(tmp / "client.pfx"))},
}


@pytest.mark.parametrize("style", CERTIFICATE_CREDENTIALS)
def test_certificate_for_graph_and_an_api(
    keyway: KeywayServer,
    cert_app: RegisteredApp,
    client_certificate: ClientCertificate,
    api_app: RegisteredApp,
    tmp_path: Path,
    style: str,
):
    credential = CERTIFICATE_CREDENTIALS[style](client_certificate, tmp_path)
    app = confidential_client(keyway, cert_app.client_id, credential)

    # msal sends the same assertion (same jti) for both requests: Keyway must accept the reuse.
    graph_token = acquire(app, GRAPH_SCOPE)
    api_token = acquire(app, api_app.default_scope)

    assert_app_token(
        graph_token,
        tenant_id=keyway.tenant_id,
        client_id=cert_app.client_id,
        resource=GRAPH_RESOURCE,
        resource_app_id=GRAPH_APP_ID,
        acr="2",
    )
    assert_app_token(
        api_token,
        tenant_id=keyway.tenant_id,
        client_id=cert_app.client_id,
        resource=api_app.identifier_uri,
        resource_app_id=api_app.client_id,
        acr="2",
    )


def test_wrong_secret_is_invalid_client(keyway: KeywayServer, secret_app: RegisteredApp):
    app = confidential_client(keyway, secret_app.client_id, "not-" + secret_app.secret)

    result = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert "access_token" not in result, result
    assert result.get("error") == "invalid_client", result
    assert 7000215 in result.get("error_codes", []), result
    assert result.get("error_description", "").startswith("AADSTS7000215"), result
