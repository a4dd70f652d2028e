"""azure-identity (the Azure SDK's credentials) against Keyway."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CertificateCredential, ClientSecretCredential

from keyway_server import (
    GRAPH_APP_ID,
    GRAPH_RESOURCE,
    GRAPH_SCOPE,
    HTTP_TIMEOUT,
    ClientCertificate,
    KeywayServer,
    RegisteredApp,
    assert_app_token,
)


def credential_options(keyway: KeywayServer) -> dict:
    return {
        "authority": keyway.base_url,  # the host only: azure-identity appends the tenant
        "disable_instance_discovery": True,
        "connection_timeout": HTTP_TIMEOUT,
        "read_timeout": HTTP_TIMEOUT,
    }


def get_token(credential, scope: str) -> str:
    token = credential.get_token(scope)
    assert token.token, token
    assert token.expires_on > time.time(), token.expires_on
    return token.token


def test_client_secret_credential_for_graph_and_an_api(
    keyway: KeywayServer, secret_app: RegisteredApp, api_app: RegisteredApp
):
    with ClientSecretCredential(
        keyway.tenant_id, secret_app.client_id, secret_app.secret, **credential_options(keyway)
    ) as credential:
        graph_token = get_token(credential, GRAPH_SCOPE)
        api_token = get_token(credential, api_app.default_scope)

    assert_app_token(
        graph_token,
        tenant_id=keyway.tenant_id,
        client_id=secret_app.client_id,
        resource=GRAPH_RESOURCE,
        resource_app_id=GRAPH_APP_ID,
        acr="1",
    )
    assert_app_token(
        api_token,
        tenant_id=keyway.tenant_id,
        client_id=secret_app.client_id,
        resource=api_app.identifier_uri,
        resource_app_id=api_app.client_id,
        acr="1",
    )


def test_certificate_credential_for_graph_and_an_api(
    keyway: KeywayServer,
    cert_app: RegisteredApp,
    client_certificate: ClientCertificate,
    api_app: RegisteredApp,
    tmp_path: Path,
):
    # One PEM file holding the private key and the certificate; the client signs RS256 with x5t (SHA-1).
    pem_path = client_certificate.write_pem(tmp_path / "client.pem")
    with CertificateCredential(
        keyway.tenant_id, cert_app.client_id, certificate_path=str(pem_path), **credential_options(keyway)
    ) as credential:
        graph_token = get_token(credential, GRAPH_SCOPE)
        api_token = get_token(credential, api_app.default_scope)

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


def test_wrong_secret_raises_client_authentication_error(keyway: KeywayServer, secret_app: RegisteredApp):
    with ClientSecretCredential(
        keyway.tenant_id, secret_app.client_id, "not-" + secret_app.secret, **credential_options(keyway)
    ) as credential:
        with pytest.raises(ClientAuthenticationError) as raised:
            credential.get_token(GRAPH_SCOPE)

    assert "AADSTS7000215" in str(raised.value), str(raised.value)
