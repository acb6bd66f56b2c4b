"""TLS for real: the kiosk talks HTTPS to a TLS-terminating proxy (as nginx or Caddy would sit
in front of the central store) whose certificate comes from a throwaway CA made with openssl.
Without the CA the handshake is refused and nothing is marked sent; with ``ca_file`` the
events are stored."""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sync.client import SyncClient
from tests.support.waiting import wait_until
from tests.sync.conftest import TEST_TIMEOUTS, tap
from tests.sync.scripted_server import Forwarder, ScriptedServer, dropped_when_reused, trickled


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory) -> Path:
    """ca.pem, and server.pem/server.key for 127.0.0.1 signed by it."""
    folder = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-days", "2", "-subj", "/CN=Clinic test CA", cwd=folder)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
             "-out", "server.csr", "-subj", "/CN=127.0.0.1", cwd=folder)
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext",
             cwd=folder)
    return folder


class TlsProxy:
    """HTTPS on 127.0.0.1 in front of a plain-HTTP server: one thread per connection."""

    def __init__(self, certificates: Path, upstream: str):
        target = urlsplit(upstream)
        self.upstream = (target.hostname, target.port)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificates / "server.pem", certificates / "server.key")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"https://127.0.0.1:{self.listener.getsockname()[1]}"
        self.refused_handshakes = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            secure = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused_handshakes += 1
            raw.close()
            return
        with secure, socket.create_connection(self.upstream) as plain:
            threading.Thread(target=_pipe, args=(plain, secure), daemon=True).start()
            _pipe(secure, plain)

    def close(self) -> None:
        self.listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def tls_proxy(certificates, central_server) -> Iterator[TlsProxy]:  # noqa: F811
    proxy = TlsProxy(certificates, central_server.base_url)
    yield proxy
    proxy.close()


def test_an_unknown_certificate_is_refused_and_nothing_is_marked_sent(
    kiosk_store, device, tls_proxy, central_server
):
    tap(kiosk_store)
    client = SyncClient(kiosk_store, tls_proxy.url, device.token, timeouts=TEST_TIMEOUTS)
    try:
        result = client.sync_once()
    finally:
        client.close()
    assert not result.ok and "certificate" in result.error.lower()
    wait_until(lambda: tls_proxy.refused_handshakes >= 1, what="the proxy saw the refusal")
    assert kiosk_store.sync_status().backlog == 1
    assert central_server.rows("SELECT COUNT(*) AS n FROM events") == [{"n": 0}]


def test_the_clinics_own_ca_file_makes_the_store_trusted(
    kiosk_store, device, tls_proxy, central_server, certificates
):
    sent = tap(kiosk_store)
    client = SyncClient(kiosk_store, tls_proxy.url, device.token, timeouts=TEST_TIMEOUTS,
                        ca_file=str(certificates / "ca.pem"))
    try:
        result = client.sync_once()
    finally:
        client.close()
    assert result.ok and result.stored == 1
    assert central_server.rows("SELECT id FROM events") == [{"id": sent.id}]
    assert kiosk_store.sync_status().backlog == 0


def test_a_ca_file_gone_since_the_start_is_a_failed_pass_that_says_so(
    kiosk_store, device, tls_proxy, central_server, certificates, tmp_path
):
    """ca_file is checked at start; should it go meanwhile (a configuration tool rewriting
    it), requests raises a plain OSError, not one of its own errors: the pass fails with a
    sentence naming ca_file, nothing is marked sent, and the next pass delivers once it is
    back."""
    bundle = tmp_path / "clinic-ca.pem"
    bundle.write_bytes((certificates / "ca.pem").read_bytes())
    sent = tap(kiosk_store)
    client = SyncClient(kiosk_store, tls_proxy.url, device.token, timeouts=TEST_TIMEOUTS,
                        ca_file=str(bundle))
    try:
        content = bundle.read_bytes()
        bundle.unlink()
        gone = client.sync_once()
        assert not gone.ok and "ca_file" in gone.error and str(bundle) in gone.error
        assert kiosk_store.sync_status().backlog == 1
        bundle.write_bytes(content)
        back = client.sync_once()
    finally:
        client.close()
    assert back.ok and back.stored == 1
    assert central_server.rows("SELECT id FROM events") == [{"id": sent.id}]


def test_a_kept_alive_tls_connection_closed_as_it_is_reused_is_sent_again(
    kiosk_store, device, central_server, certificates
):
    """The proxy closes an idle connection (nginx after its keepalive_timeout) just as the
    kiosk reuses it: the batch goes again on a new connection, not reported as a certificate
    problem or as "cannot reach"."""
    scripted = ScriptedServer(Forwarder(central_server.base_url))
    scripted.script(dropped_when_reused())
    proxy = TlsProxy(certificates, scripted.url)
    client = SyncClient(kiosk_store, proxy.url, device.token, timeouts=TEST_TIMEOUTS,
                        ca_file=str(certificates / "ca.pem"))
    try:
        first = tap(kiosk_store)
        assert client.sync_once().stored == 1
        second = tap(kiosk_store)
        result = client.sync_once()
    finally:
        client.close()
        proxy.close()
        scripted.close()
    assert (result.ok, result.stored) == (True, 1), result.error
    assert len(scripted.event_posts()) == 3
    assert [row["id"] for row in central_server.rows("SELECT id FROM events ORDER BY device_seq")
            ] == [first.id, second.id]


def test_a_tls_answer_trickling_in_is_given_up_after_its_deadline(
    kiosk_store, device, central_server, certificates
):
    """The answer's deadline ends a read waiting inside TLS too, and says why (not a
    certificate problem); the batch the store took goes again as a duplicate."""
    scripted = ScriptedServer(Forwarder(central_server.base_url))
    scripted.script(trickled(every_s=0.2))
    proxy = TlsProxy(certificates, scripted.url)
    client = SyncClient(kiosk_store, proxy.url, device.token, timeouts=TEST_TIMEOUTS,
                        ca_file=str(certificates / "ca.pem"))
    client.session.answer_within_s = 1.0
    try:
        sent = tap(kiosk_store)
        result = client.sync_once()
        again = client.sync_once()
    finally:
        client.close()
        proxy.close()
        scripted.close()
    assert "did not arrive whole within 1 s" in result.error
    assert "certificate" not in result.error
    assert (again.ok, again.duplicate) == (True, 1), again.error
    assert central_server.rows("SELECT id FROM events") == [{"id": sent.id}]
