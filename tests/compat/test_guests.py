"""MSAL's username/password flow for a guest: a user of tenant B, invited into tenant A, signs in at
A's authority with their home password and gets A's token about the guest object."""

from __future__ import annotations

import msal
import requests

from keyway_server import GRAPH_SCOPE, HTTP_TIMEOUT, Graph, KeywayServer, decode_jwt, unique_name

PASSWORD = "correct horse battery staple"


def test_guest_signs_in_with_msal_at_the_inviting_tenant(keyway: KeywayServer, graph: Graph):
    domain = f"{unique_name('contoso')}.example"
    created = graph.call("POST", "tenants", {"displayName": "Contoso", "domains": [domain]}, expect=201)
    tenant_b = created["tenant"]["id"]

    # Tenant B's administrator makes the home user.
    session = requests.Session()
    session.verify = str(keyway.ca_bundle)
    response = session.post(
        f"{keyway.base_url}/{tenant_b}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created["administrator"]["clientId"],
            "client_secret": created["administrator"]["clientSecret"],
            "scope": GRAPH_SCOPE,
        },
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    response = session.post(
        f"{keyway.base_url}/v1.0/users",
        json={
            "displayName": "Alice",
            "userPrincipalName": f"alice@{domain}",
            "passwordProfile": {"password": PASSWORD},
        },
        headers={"Authorization": f"Bearer {response.json()['access_token']}"},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 201, response.text

    # Tenant A (the server's own) invites her, and registers a public client.
    invitation = graph.call(
        "POST",
        "invitations",
        {"invitedUserEmailAddress": f"alice@{domain}", "inviteRedirectUrl": "https://myapps.example"},
        expect=201,
    )
    assert invitation["status"] == "Completed", invitation
    client = graph.call(
        "POST",
        "applications",
        {"displayName": unique_name("compat-public"), "isFallbackPublicClient": True},
        expect=201,
    )
    graph.create_service_principal(client["appId"])

    # Before a password grant msal asks https://<hostname>/common/userrealm/<user> whether the
    # account is federated, dropping the authority's port, so on a test port it never reaches
    # Keyway. Keyway answers that path 404 (not federated), which msal remembers per host: ask
    # Keyway ourselves, then give msal the answer it would have cached.
    realm = session.get(f"{keyway.base_url}/common/userrealm/alice@{domain}?api-version=1.0", timeout=HTTP_TIMEOUT)
    assert realm.status_code == 404, realm.text
    msal.authority.Authority._domains_without_user_realm_discovery.add("127.0.0.1")

    app = msal.PublicClientApplication(
        client["appId"],
        authority=keyway.authority,
        instance_discovery=False,  # otherwise msal asks login.microsoftonline.com first
        timeout=HTTP_TIMEOUT,
    )
    result = app.acquire_token_by_username_password(f"alice@{domain}", PASSWORD, scopes=[GRAPH_SCOPE])
    assert "access_token" in result, f"msal got no token for the guest: {result}"
    _, claims = decode_jwt(result["access_token"])
    assert claims["tid"] == keyway.tenant_id, claims
    assert claims["iss"] == f"{keyway.base_url}/{keyway.tenant_id}/v2.0", claims
    assert claims["oid"] == invitation["invitedUser"]["id"], claims
    assert claims["idp"] == f"{keyway.base_url}/{tenant_b}/v2.0", claims
    assert claims["acct"] == 1, claims

    wrong = app.acquire_token_by_username_password(f"alice@{domain}", "not her password", scopes=[GRAPH_SCOPE])
    assert wrong.get("error") == "invalid_grant" and 50126 in wrong.get("error_codes", []), wrong
