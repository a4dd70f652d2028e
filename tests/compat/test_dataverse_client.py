"""powerplatform-dataverse-client (Microsoft's Dataverse SDK for Python), unmodified, against a Keyway
environment's Web API, authenticated by azure-identity against Keyway's token endpoint.

Setup goes through Keyway's admin API (the "environments" contract):
    POST {baseUrl}/v1.0/environments {"name": ...}                       -> 201 {"id","name","url","tenantId"}
    POST {baseUrl}/v1.0/environments/{id}/addAppUser
         {"servicePrincipalAppId": appId, "roles": ["System Administrator"]} -> 201 systemuser {"systemuserid", ...}
The whole module is skipped while `GET {baseUrl}/v1.0/environments` answers 404 (the feature is not built
yet), and while addAppUser or the environment's Web API hit Keyway's "No such route" fallback (built in
steps). Any other failure fails the tests.

DATAVERSE_CLIENT.md beside this file describes what the client sends and expects.
"""

from __future__ import annotations

import re
import uuid

import pytest
import requests
from azure.identity import ClientSecretCredential
from PowerPlatform.Dataverse import __version__ as DATAVERSE_CLIENT_VERSION
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.errors import HttpError

from keyway_server import HTTP_TIMEOUT, Graph, GraphError, KeywayServer, RegisteredApp, assert_app_token, unique_name

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
RECORD_NOT_FOUND = "0x80040217"

# Seven accounts, inserted in an order that is neither name order nor employee order, so a server that
# ignores $orderby (and returns insertion order) fails the ordering assertions.
SEVEN = [("d", 30), ("a", 50), ("g", 10), ("c", 70), ("f", 20), ("b", 60), ("e", 40)]


# --------------------------------------------------------------------------------------------
# Is the feature there?

# Keyway's router fallback: a 404 whose body says this, for a path no handler serves.
NO_ROUTE = "No such route"


def route_missing(response: requests.Response) -> bool:
    """The endpoint is not built at all (as opposed to built and answering 404 for a missing thing)."""
    return response.status_code == 404 and NO_ROUTE in response.text


def environments_supported(graph: Graph) -> bool:
    """True when Keyway serves the environments admin API; False when it answers 404 (not built yet).

    Any other answer is a broken server, not a missing feature, and fails loudly.
    """
    url = f"{graph.server.base_url}/v1.0/environments"
    response = graph.session.get(url, timeout=HTTP_TIMEOUT)
    if response.status_code == 404:
        return False
    if response.status_code != 200:
        raise GraphError("GET", url, response)
    return True


@pytest.fixture(scope="module", autouse=True)
def _environments_feature(graph: Graph) -> None:
    # The probe needs the running server (a session fixture), so the module-level skip is taken here
    # rather than in a collection-time `pytestmark = pytest.mark.skipif(...)`.
    if not environments_supported(graph):
        pytest.skip("Keyway has no environments API yet: GET /v1.0/environments answered 404")


# --------------------------------------------------------------------------------------------
# One environment, one application user, one client for the module


@pytest.fixture(scope="module")
def dataverse_app(graph: Graph) -> RegisteredApp:
    """An app registration with a secret and a service principal (made through the Graph API)."""
    return graph.register_app(unique_name("compat-dataverse"))


@pytest.fixture(scope="module")
def environment(graph: Graph, dataverse_app: RegisteredApp) -> dict:
    """A new environment in which `dataverse_app` is a System Administrator application user."""
    name = f"compat{uuid.uuid4().hex[:10]}"
    env = graph.call("POST", "environments", {"name": name}, expect=201)

    url = f"{graph.server.base_url}/v1.0/environments/{env['id']}/addAppUser"
    body = {"servicePrincipalAppId": dataverse_app.client_id, "roles": ["System Administrator"]}
    response = graph.session.post(url, json=body, timeout=HTTP_TIMEOUT)
    if route_missing(response):
        pytest.skip("Keyway has environments but no addAppUser yet (No such route)")
    if response.status_code != 201:
        raise GraphError("POST", url, response)
    user = response.json()

    service_document = f"{env['url'].rstrip('/')}/api/data/v9.2/"
    if route_missing(requests.get(service_document, timeout=HTTP_TIMEOUT)):
        pytest.skip(f"Keyway does not serve the Web API at {service_document} yet (No such route)")
    return {**env, "requested_name": name, "app_user": user}


def credential_for(keyway: KeywayServer, app: RegisteredApp) -> ClientSecretCredential:
    return ClientSecretCredential(
        keyway.tenant_id,
        app.client_id,
        app.secret,
        authority=keyway.base_url,  # the host only: azure-identity appends the tenant
        disable_instance_discovery=True,
        connection_timeout=HTTP_TIMEOUT,
        read_timeout=HTTP_TIMEOUT,
    )


@pytest.fixture(scope="module")
def credential(keyway: KeywayServer, dataverse_app: RegisteredApp):
    with credential_for(keyway, dataverse_app) as cred:
        yield cred


@pytest.fixture(scope="module")
def client(environment: dict, credential: ClientSecretCredential):
    # The environment URL exactly as Keyway reports it; the client appends /api/data/v9.2 and asks
    # the credential for "{url}/.default".
    with DataverseClient(environment["url"], credential) as dataverse:
        yield dataverse


@pytest.fixture
def tag() -> str:
    """A value for `accountnumber` that isolates one test's rows from every other test's."""
    return f"kw-{uuid.uuid4().hex[:12]}"


def create_seven(client: DataverseClient, tag: str) -> dict[str, str]:
    """The SEVEN accounts, one create each, tagged; returns {letter: id}."""
    ids = {}
    for letter, employees in SEVEN:
        ids[letter] = client.records.create(
            "account",
            {"name": f"{tag}-{letter}", "accountnumber": tag, "numberofemployees": employees},
        )
    return ids


def tagged(client: DataverseClient, tag: str, **options) -> list:
    return list(client.records.list("account", filter=f"accountnumber eq '{tag}'", **options))


def letters(records) -> list[str]:
    return [r["name"].rsplit("-", 1)[1] for r in records]


def same_guid(a: str, b: str) -> bool:
    return a.lower() == b.lower()


# --------------------------------------------------------------------------------------------
# Setup contract


def test_client_version_is_the_pinned_one():
    # DATAVERSE_CLIENT.md describes this version's wire behaviour; a different one needs a re-read.
    assert DATAVERSE_CLIENT_VERSION == "1.1.0", DATAVERSE_CLIENT_VERSION


def test_environment_and_application_user(
    keyway: KeywayServer, environment: dict, dataverse_app: RegisteredApp, credential: ClientSecretCredential
):
    assert environment["name"] == environment["requested_name"], environment
    assert GUID.match(environment["id"]), environment
    assert environment["tenantId"] == keyway.tenant_id, environment
    assert environment["url"].rstrip("/") == f"{keyway.base_url}/env/{environment['requested_name']}", environment

    user = environment["app_user"]
    assert GUID.match(user.get("systemuserid", "")), user

    # The token the client will ask for: scope "{envUrl}/.default", audience the environment URL.
    env_url = environment["url"].rstrip("/")
    token = credential.get_token(f"{env_url}/.default").token
    assert_app_token(
        token, tenant_id=keyway.tenant_id, client_id=dataverse_app.client_id, resource=env_url, acr="1"
    )


def test_app_without_application_user_is_refused(
    keyway: KeywayServer, graph: Graph, environment: dict, tag: str
):
    # Registered in the tenant and able to get a token for the environment, but not a user in it.
    outsider = graph.register_app(unique_name("compat-dataverse-outsider"))
    with credential_for(keyway, outsider) as cred, DataverseClient(environment["url"], cred) as stranger:
        with pytest.raises(HttpError) as refused:
            stranger.records.create("account", {"name": f"{tag}-intruder", "accountnumber": tag})
    assert refused.value.status_code in (401, 403), refused.value.to_dict()


# --------------------------------------------------------------------------------------------
# Records


def test_create_and_retrieve_with_select(client: DataverseClient, tag: str):
    account_id = client.records.create(
        "account",
        {
            "name": f"{tag} Contoso",
            "accountnumber": tag,
            "numberofemployees": 120,
            "revenue": 1250000.5,
            "description": "made by the Dataverse SDK for Python",
        },
    )
    assert isinstance(account_id, str) and GUID.match(account_id), account_id

    record = client.records.retrieve("account", account_id, select=["name", "numberofemployees", "revenue"])
    assert record is not None
    assert record["name"] == f"{tag} Contoso"
    assert record["numberofemployees"] == 120
    assert record["revenue"] == pytest.approx(1250000.5)
    # The primary key always comes back; unselected columns do not.
    assert same_guid(record["accountid"], account_id), record.data
    assert "description" not in record and "accountnumber" not in record, record.data
    assert record.etag and record.etag.startswith('W/"'), record.etag

    everything = client.records.retrieve("account", account_id)
    assert everything["description"] == "made by the Dataverse SDK for Python", everything.data
    assert everything["accountnumber"] == tag, everything.data


def test_create_many_returns_ids_in_input_order(client: DataverseClient, tag: str):
    payloads = [
        {"name": f"{tag}-bulk-{i}", "accountnumber": tag, "numberofemployees": i, "description": f"row {i}"}
        for i in range(5)
    ]
    ids = client.records.create("account", payloads)

    assert len(ids) == 5 and all(GUID.match(i) for i in ids), ids
    assert len({i.lower() for i in ids}) == 5, ids
    for i, account_id in enumerate(ids):
        record = client.records.retrieve("account", account_id, select=["name", "description"])
        assert record is not None, f"CreateMultiple id {account_id} (#{i}) does not exist"
        assert record["name"] == f"{tag}-bulk-{i}" and record["description"] == f"row {i}", record.data

    listed = tagged(client, tag, select=["name"])
    assert sorted(r["accountid"].lower() for r in listed) == sorted(i.lower() for i in ids)


def test_list_with_filter_select_and_orderby(client: DataverseClient, tag: str):
    create_seven(client, tag)
    # Decoy rows the filter must exclude: a longer accountnumber that starts with the tag, and another one.
    # (accountnumber holds at most 20 characters; tags have 15.)
    client.records.create("account", {"name": f"{tag}-z", "accountnumber": f"{tag}x", "numberofemployees": 99})
    client.records.create("account", {"name": f"{tag}-y", "accountnumber": "other", "numberofemployees": 99})

    by_employees = client.records.list(
        "account",
        filter=f"accountnumber eq '{tag}' and numberofemployees ge 30",
        select=["name", "numberofemployees"],
        orderby=["numberofemployees desc"],
    )
    assert letters(by_employees) == ["c", "b", "a", "e", "d"]
    assert [r["numberofemployees"] for r in by_employees] == [70, 60, 50, 40, 30]
    for r in by_employees:
        assert set(r.keys()) == {"accountid", "name", "numberofemployees"}, r.data

    by_name = tagged(client, tag, select=["name"], orderby=["name asc"])
    assert letters(by_name) == list("abcdefg")

    # A string literal with a doubled quote, '&', ',', '%' and '+' must survive the query encoding.
    awkward = f"{tag}: O'Brien & Sons, 100% + more"
    awkward_id = client.records.create("account", {"name": awkward})  # no accountnumber: not one of the seven
    literal = awkward.replace("'", "''")
    found = client.records.list("account", filter=f"name eq '{literal}'", select=["name"])
    assert [r["accountid"].lower() for r in found] == [awkward_id.lower()]
    assert found[0]["name"] == awkward


def test_list_with_top(client: DataverseClient, tag: str):
    create_seven(client, tag)
    fewest = tagged(client, tag, select=["name", "numberofemployees"], orderby=["numberofemployees asc"], top=3)
    assert letters(fewest) == ["g", "f", "d"]


def test_list_with_page_size_follows_next_links(client: DataverseClient, tag: str):
    create_seven(client, tag)

    pages = list(
        client.records.list_pages(
            "account", filter=f"accountnumber eq '{tag}'", select=["name"], orderby=["name asc"], page_size=3
        )
    )
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [letter for page in pages for letter in letters(page)] == list("abcdefg")

    # records.list collects every page into one result.
    assert letters(tagged(client, tag, select=["name"], orderby=["name asc"], page_size=2)) == list("abcdefg")


def test_count_is_the_total_match_count_not_the_page_size(client: DataverseClient, tag: str):
    create_seven(client, tag)
    # records.list sends $count=true but drops @odata.count; a batched GET hands back the raw body.
    batch = client.batch.new()
    batch.records.list(
        "account", filter=f"accountnumber eq '{tag}'", select=["name"], orderby=["name asc"], count=True, page_size=2
    )
    result = batch.execute()

    assert len(result.responses) == 1, result
    response = result.responses[0]
    assert response.status_code == 200, response
    assert response.data["@odata.count"] == 7, response.data
    assert [r["name"] for r in response.data["value"]] == [f"{tag}-a", f"{tag}-b"], response.data
    assert "@odata.nextLink" in response.data, response.data

    # The same query outside a batch still yields every row.
    assert len(tagged(client, tag, select=["name"], count=True)) == 7


def test_update_changes_only_the_given_columns(client: DataverseClient, tag: str):
    account_id = client.records.create(
        "account",
        {"name": f"{tag} before", "accountnumber": tag, "numberofemployees": 5, "revenue": 10.25, "description": "kept"},
    )
    before = client.records.retrieve("account", account_id)

    client.records.update("account", account_id, {"name": f"{tag} after", "numberofemployees": 6, "revenue": 99.75})

    after = client.records.retrieve("account", account_id)
    assert after["name"] == f"{tag} after"
    assert after["numberofemployees"] == 6
    assert after["revenue"] == pytest.approx(99.75)
    assert after["description"] == "kept" and after["accountnumber"] == tag, after.data
    assert before.etag and after.etag and before.etag != after.etag, (before.etag, after.etag)


def test_update_of_a_missing_record_is_404_not_an_upsert(client: DataverseClient, tag: str):
    missing = str(uuid.uuid4())
    # The client sends If-Match: * on update, which forbids creating the row.
    with pytest.raises(HttpError) as raised:
        client.records.update("account", missing, {"name": f"{tag} ghost"})
    assert raised.value.status_code == 404, raised.value.to_dict()
    assert raised.value.details.get("service_error_code") == RECORD_NOT_FOUND, raised.value.to_dict()
    assert client.records.retrieve("account", missing) is None


def test_delete_then_the_record_is_gone(client: DataverseClient, tag: str):
    account_id = client.records.create("account", {"name": f"{tag} doomed", "accountnumber": tag})
    keeper_id = client.records.create("account", {"name": f"{tag} keeper", "accountnumber": tag})

    assert client.records.delete("account", account_id) is None

    assert client.records.retrieve("account", account_id) is None  # the client maps 404 to None
    with pytest.raises(HttpError) as raised:
        client.records.delete("account", account_id)
    error = raised.value
    assert error.status_code == 404, error.to_dict()
    assert error.subcode == "http_404" and not error.is_transient, error.to_dict()
    assert error.details.get("service_error_code") == RECORD_NOT_FOUND, error.to_dict()
    assert error.message and error.message != "HTTP 404", error.to_dict()  # the service's message

    remaining = tagged(client, tag, select=["name"])
    assert [r["accountid"].lower() for r in remaining] == [keeper_id.lower()]


# --------------------------------------------------------------------------------------------
# Metadata


def test_tables_list_and_get(client: DataverseClient):
    tables = client.tables.list()
    by_name = {t.get("LogicalName"): t for t in tables}
    assert "account" in by_name, sorted(filter(None, by_name))
    account = by_name["account"]
    assert account["EntitySetName"] == "accounts", account
    assert account["PrimaryIdAttribute"] == "accountid", account
    assert account["PrimaryNameAttribute"] == "name", account
    # The client always filters "IsPrivate eq false"; without $select every property comes back.
    not_public = [t.get("LogicalName") for t in tables if t.get("IsPrivate") is not False]
    assert not_public == [], not_public

    narrowed = client.tables.list(filter="LogicalName eq 'account'", select=["LogicalName", "EntitySetName"])
    assert len(narrowed) == 1, narrowed
    assert {k for k in narrowed[0] if not k.startswith("@")} <= {"LogicalName", "EntitySetName", "MetadataId"}, narrowed
    assert narrowed[0]["EntitySetName"] == "accounts", narrowed

    info = client.tables.get("account")
    assert info is not None
    assert info.entity_set_name == "accounts" and info.logical_name == "account", info
    assert info.primary_id_attribute == "accountid" and info.primary_name_attribute == "name", info
    assert GUID.match(info.metadata_id or ""), info
    assert client.tables.get(f"kwnosuchtable{uuid.uuid4().hex[:8]}") is None


# --------------------------------------------------------------------------------------------
# $batch


def test_batch_with_a_changeset(client: DataverseClient, tag: str):
    batch = client.batch.new()
    batch.records.create("account", {"name": f"{tag}-a outside", "accountnumber": tag})
    with batch.changeset() as changeset:
        first = changeset.records.create("account", {"name": f"{tag}-b inside", "accountnumber": tag})
        changeset.records.update("account", first, {"description": "updated through $1"})
        changeset.records.create("account", {"name": f"{tag}-c inside", "accountnumber": tag, "numberofemployees": 3})
    batch.records.list("account", filter=f"accountnumber eq '{tag}'", select=["name", "description"], orderby=["name asc"])
    assert first == "$1"

    result = batch.execute()

    statuses = [r.status_code for r in result.responses]
    assert len(result.responses) == 5, statuses
    assert not result.has_errors, [(r.status_code, r.error_code, r.error_message) for r in result.failed]
    outside, created_b, updated_b, created_c, listing = result.responses

    assert outside.content_id is None and GUID.match(outside.entity_id or ""), outside
    # Content-IDs come back on the changeset's parts, numbered as sent.
    assert [created_b.content_id, updated_b.content_id, created_c.content_id] == ["1", "2", "3"], result.responses
    assert GUID.match(created_b.entity_id or "") and GUID.match(created_c.entity_id or ""), result.responses
    assert len({outside.entity_id.lower(), created_b.entity_id.lower(), created_c.entity_id.lower()}) == 3

    # The GET after the changeset sees its committed writes, including the update through "$1".
    assert listing.status_code == 200, listing
    rows = listing.data["value"]
    assert [r["name"] for r in rows] == [f"{tag}-a outside", f"{tag}-b inside", f"{tag}-c inside"], rows
    assert rows[1]["description"] == "updated through $1", rows
    assert rows[1]["accountid"].lower() == created_b.entity_id.lower(), rows

    again = client.records.retrieve("account", created_b.entity_id, select=["description"])
    assert again["description"] == "updated through $1", again.data


def test_failed_changeset_is_rolled_back(client: DataverseClient, tag: str):
    batch = client.batch.new()
    with batch.changeset() as changeset:
        changeset.records.create("account", {"name": f"{tag}-rolled-back", "accountnumber": tag})
        changeset.records.update("account", str(uuid.uuid4()), {"description": "no such row"})

    result = batch.execute()

    assert result.has_errors, result
    failures = [(r.status_code, r.error_code) for r in result.failed]
    assert (404, RECORD_NOT_FOUND) in failures, result.responses
    assert tagged(client, tag, select=["name"]) == [], "the changeset's create survived its failure"
