"""MSAL's refresh-token path: a user signs in with username and password (msal adds
offline_access, openid and profile), msal keeps the account and its refresh token, and
acquire_token_silent(force_refresh=True) redeems the refresh token for a new access token and a
rotated refresh token; the rotated-out one is refused with Entra's invalid_grant."""

from __future__ import annotations

import msal
import requests

from keyway_server import GRAPH_SCOPE, HTTP_TIMEOUT, Graph, KeywayServer, decode_jwt, unique_name

PASSWORD = "correct horse battery staple"


def test_msal_refreshes_a_users_token_with_its_rotating_refresh_token(keyway: KeywayServer, graph: Graph):
    alias = unique_name("rita")
    upn = f"{alias}@keyway.local"
    user = graph.call(
        "POST",
        "users",
        {"displayName": "Rita", "userPrincipalName": upn, "passwordProfile": {"password": PASSWORD}},
        expect=201,
    )
    client = graph.call(
        "POST",
        "applications",
        {"displayName": unique_name("compat-public"), "isFallbackPublicClient": True},
        expect=201,
    )
    graph.create_service_principal(client["appId"])

    # msal asks https://<hostname>/common/userrealm/<user> before a password grant, dropping the
    # authority's port (see test_guests.py): give it the answer Keyway gives (not federated).
    session = requests.Session()
    session.verify = str(keyway.ca_bundle)
    realm = session.get(f"{keyway.base_url}/common/userrealm/{upn}?api-version=1.0", timeout=HTTP_TIMEOUT)
    assert realm.status_code == 404, realm.text
    msal.authority.Authority._domains_without_user_realm_discovery.add("127.0.0.1")

    app = msal.PublicClientApplication(
        client["appId"],
        authority=keyway.authority,
        instance_discovery=False,
        timeout=HTTP_TIMEOUT,
    )
    first = app.acquire_token_by_username_password(upn, PASSWORD, scopes=[GRAPH_SCOPE])
    assert "access_token" in first, f"msal got no token: {first}"
    assert first.get("refresh_token"), f"no refresh token for offline_access: {sorted(first)}"
    assert first["id_token_claims"]["oid"] == user["id"], first["id_token_claims"]
    old_refresh_token = first["refresh_token"]

    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == [upn], accounts
    assert accounts[0]["home_account_id"] == f"{user['id']}.{keyway.tenant_id}", accounts

    # The cached access token is fresh: force msal to use the refresh token.
    second = app.acquire_token_silent([GRAPH_SCOPE], account=accounts[0], force_refresh=True)
    assert second and "access_token" in second, f"msal could not refresh: {second}"
    assert second["access_token"] != first["access_token"]
    _, claims = decode_jwt(second["access_token"])
    assert claims["oid"] == user["id"] and claims["tid"] == keyway.tenant_id, claims
    assert claims["aud"] == "https://graph.microsoft.com", claims

    # msal stored the rotated refresh token in place of the old one.
    cached = [rt["secret"] for rt in app.token_cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)]
    assert len(cached) == 1 and cached[0] != old_refresh_token, "the refresh token did not rotate"
    third = app.acquire_token_silent([GRAPH_SCOPE], account=accounts[0], force_refresh=True)
    assert third and "access_token" in third, f"msal could not refresh with the rotated token: {third}"

    # The rotated-out token is good for nothing now.
    reused = app.acquire_token_by_refresh_token(old_refresh_token, scopes=[GRAPH_SCOPE])
    assert reused.get("error") == "invalid_grant", reused
    assert 70008 in reused.get("error_codes", []), reused
