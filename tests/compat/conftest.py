"""Fixtures for the client-compatibility suite: one Keyway server per session, fresh apps per test.

Run through scripts/test, or by hand:
    KEYWAY_BIN=target/debug/keyway target/compat-venv/bin/python -m pytest tests/compat
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from keyway_server import ClientCertificate, Graph, KeywayServer, RegisteredApp, unique_name, write_ca_bundle

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT = 60  # seconds
TEST_TIMEOUT = 120  # seconds, for each test's own body and function-scoped fixtures

SERVER_KEY = pytest.StashKey[KeywayServer]()


# --------------------------------------------------------------------------------------------
# Session: the server, trust in its CA, and the admin's Graph client


@pytest.fixture(scope="session")
def keyway_bin() -> Path:
    binary = Path(os.environ.get("KEYWAY_BIN", REPO_ROOT / "target" / "debug" / "keyway"))
    if not binary.is_absolute():
        binary = REPO_ROOT / binary
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"no keyway binary at {binary} (build it with `cargo build -p keyway` or set KEYWAY_BIN)")
    return binary


@pytest.fixture(scope="session")
def keyway(request: pytest.FixtureRequest, keyway_bin: Path, tmp_path_factory: pytest.TempPathFactory):
    """A running Keyway server whose CA the whole test process trusts."""
    workdir = tmp_path_factory.mktemp("keyway")
    server = KeywayServer(keyway_bin, workdir / "data", workdir / "keyway-server.log")
    request.config.stash[SERVER_KEY] = server
    try:
        server.start(timeout=SERVER_START_TIMEOUT)
        bundle = write_ca_bundle(workdir / "ca-bundle.pem", server.info.ca_path)
        with pytest.MonkeyPatch.context() as env:
            # msal and azure-identity (through requests) read REQUESTS_CA_BUNDLE; OpenSSL reads SSL_CERT_FILE.
            env.setenv("REQUESTS_CA_BUNDLE", str(bundle))
            env.setenv("SSL_CERT_FILE", str(bundle))
            # Never send loopback traffic to a proxy the environment may name.
            no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
            env.setenv("NO_PROXY", no_proxy)
            env.setenv("no_proxy", no_proxy)
            server.ca_bundle = bundle
            yield server
    finally:
        code = server.stop()
        print(f"\nkeyway server stopped (exit status {code}); log: {server.log_path}")


@pytest.fixture(scope="session")
def graph(keyway: KeywayServer) -> Graph:
    return Graph(keyway, keyway.ca_bundle)


# --------------------------------------------------------------------------------------------
# Per test: fresh application registrations


@pytest.fixture
def secret_app(graph: Graph, request: pytest.FixtureRequest) -> RegisteredApp:
    """A client application with one client secret and its service principal."""
    return graph.register_app(unique_name(f"compat-client-{request.node.originalname}"))


@pytest.fixture
def api_app(graph: Graph) -> RegisteredApp:
    """An API (a resource) with a unique `api://` identifier URI and its service principal."""
    name = unique_name("compat-api")
    return graph.register_app(name, secret=False, identifier_uri=f"api://{name}")


@pytest.fixture
def client_certificate(request: pytest.FixtureRequest) -> ClientCertificate:
    return ClientCertificate.generate(unique_name("compat-client"))


@pytest.fixture
def cert_app(graph: Graph, client_certificate: ClientCertificate, request: pytest.FixtureRequest) -> RegisteredApp:
    """A client application whose only credential is `client_certificate`."""
    name = unique_name(f"compat-client-{request.node.originalname}")
    return graph.register_app(name, secret=False, certificate=client_certificate)


# --------------------------------------------------------------------------------------------
# Every wait is bounded; a failed test shows the server's log


class TestTimeout(Exception):
    __test__ = False


@pytest.fixture(autouse=True)
def _test_deadline():
    def expire(signum, frame):
        raise TestTimeout(f"test exceeded {TEST_TIMEOUT} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    server = item.config.stash.get(SERVER_KEY, None)
    # A server that failed to start already put its log in the error.
    if report.failed and server is not None and server.admin is not None:
        report.sections.append((f"keyway server log ({server.log_path})", server.log_tail()))
    return report
