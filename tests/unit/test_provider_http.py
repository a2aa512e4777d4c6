"""The providers' HTTP client (gatewayz.chat.provider_http, through gatewayz.chat.upstream)
against servers on real sockets that answer with exact bytes: the framings a provider may
use, keep-alive, a silent or vanishing provider, a header that would split the request,
compression, TLS, and a connection a server closed while the event loop was frozen."""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import pytest
import uvloop

from gatewayz.chat import upstream

if TYPE_CHECKING:
    from pathlib import Path

LIMITS = upstream.Limits(connect_s=2, read_s=2)
BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-test"}
ANSWER = b'{"id":"chatcmpl-1","object":"chat.completion"}'


def whole(body: bytes, *, status: bytes = b"200 OK", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 %s\r\ncontent-type: application/json\r\n%scontent-length: %d\r\n\r\n%s" % (
        status,
        extra,
        len(body),
        body,
    )


def chunked_head(extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n%s" % extra + (
        b"transfer-encoding: chunked\r\n\r\n"
    )


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    found = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    assert found is not None, head
    return head + await reader.readexactly(int(found.group(1)))


Answer = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A server on this event loop; each connection runs `answer`."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        port = self._server.sockets[0].getsockname()[1]
        scheme = "https" if self.tls else "http"
        self.base_url = f"{scheme}://{'localhost' if self.tls else '127.0.0.1'}:{port}/api"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await upstream.close_pool()
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.answer(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def post(self, headers: dict[str, str] = HEADERS) -> upstream.Reply:
        return await upstream.post(self.base_url, "/v1/chat/completions", BODY, headers, LIMITS)


def answering(*answers: bytes, close: bool = False) -> Answer:
    """Each request on a connection gets the next answer (the last one repeats)."""

    async def answer(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        for index in range(1_000):
            server.requests.append(await read_request(reader))
            writer.write(answers[min(index, len(answers) - 1)])
            await writer.drain()
            if close:
                return

    return answer


async def test_a_request_is_sent_whole_and_its_connection_serves_the_next() -> None:
    async with Server(answering(whole(ANSWER))) as server:
        for _ in range(3):
            reply = await server.post()
            assert (reply.status, await reply.read()) == (200, ANSWER)
            await reply.close()
    assert server.connections == 1
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /api/v1/chat/completions HTTP/1.1"
    assert b"host: 127.0.0.1:%d" % int(server.base_url.split(":")[2][:-4]) in lines
    assert b"authorization: Bearer sk-test" in lines
    assert b"content-length: %d" % len(BODY) in lines
    assert body == BODY


async def test_a_chunked_stream_arrives_as_it_is_written_then_the_connection_is_reused() -> None:
    events = [b'data: {"n": %d}\n\n' % n for n in range(5)] + [b"data: [DONE]\n\n"]

    async def answer(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        while True:
            server.requests.append(await read_request(reader))
            writer.write(chunked_head())
            for event in events:
                writer.write(chunk(event))
                await writer.drain()
                await asyncio.sleep(0.01)
            writer.write(b"0\r\n\r\n")

    async with Server(answer) as server:
        for _ in range(2):
            reply = await server.post()
            pieces = [piece async for piece in reply.chunks()]
            await reply.close()
            assert b"".join(pieces) == b"".join(events)
            assert len(pieces) > 1  # handed on as they came, not at the end
    assert server.connections == 1


async def test_a_body_without_a_length_ends_with_the_connection() -> None:
    no_length = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n" + ANSWER
    async with Server(answering(no_length, close=True)) as server:
        for _ in range(2):
            reply = await server.post()
            assert await reply.read() == ANSWER
            await reply.close()
    assert server.connections == 2  # such a connection is never reused


async def test_a_provider_that_goes_silent_times_out() -> None:
    async def mid_stream(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        await read_request(reader)
        writer.write(chunked_head() + chunk(b"data: {}\n\n"))
        await asyncio.sleep(5)

    async def before_headers(
        server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ):
        await read_request(reader)
        await asyncio.sleep(5)

    quick = upstream.Limits(connect_s=2, read_s=0.2)
    async with Server(mid_stream) as server:
        reply = await upstream.post(server.base_url, "/x", BODY, HEADERS, quick)
        chunks = reply.chunks()
        assert await anext(chunks) == b"data: {}\n\n"
        started = time.monotonic()
        with pytest.raises(upstream.Timeout):
            await anext(chunks)
        assert 0.15 < time.monotonic() - started < 1.5
        await reply.close()
    async with Server(before_headers) as server:
        with pytest.raises(upstream.Timeout):
            await upstream.post(server.base_url, "/x", BODY, HEADERS, quick)


async def test_a_stream_read_slower_than_the_limit_is_not_a_timeout() -> None:
    async def answer(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await read_request(reader)
        writer.write(chunked_head() + chunk(b"x" * (1 << 20)) + chunk(b"end") + b"0\r\n\r\n")
        await writer.drain()

    async with Server(answer) as server:
        reply = await upstream.post(
            server.base_url, "/x", BODY, HEADERS, upstream.Limits(connect_s=2, read_s=0.1)
        )
        received = b""
        async for piece in reply.chunks():
            received += piece
            await asyncio.sleep(0.15)  # the reader is behind: the provider is not silent
        await reply.close()
    assert received == b"x" * (1 << 20) + b"end"


async def test_the_silence_after_a_slow_reader_catches_up_counts_from_then() -> None:
    # The limit is 0.4 s; the reader sits on 300 KB (reading paused past 256 KiB) until
    # 0.6 s; the provider sends the rest at 0.9 s: 0.3 s after the reader caught up.
    async def answer(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await read_request(reader)
        begun = asyncio.get_running_loop().time()
        writer.write(chunked_head() + chunk(b"x" * 300_000))
        await writer.drain()
        await asyncio.sleep(max(0.0, begun + 0.9 - asyncio.get_running_loop().time()))
        writer.write(chunk(b"end") + b"0\r\n\r\n")
        await writer.drain()

    async with Server(answer) as server:
        reply = await upstream.post(
            server.base_url, "/x", BODY, HEADERS, upstream.Limits(connect_s=2, read_s=0.4)
        )
        await asyncio.sleep(0.6)  # behind: everything sent so far is buffered, unread
        received = b"".join([piece async for piece in reply.chunks()])
        await reply.close()
    assert received == b"x" * 300_000 + b"end"


async def test_a_connection_lost_mid_body_is_broken_and_not_reused() -> None:
    async def answer(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await read_request(reader)
        if server.connections == 1:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + ANSWER[:10])
        else:
            writer.write(whole(ANSWER))
        await writer.drain()

    async with Server(answer) as server:
        reply = await server.post()
        with pytest.raises(upstream.Broken):
            await reply.read()
        await reply.close()
        reply = await server.post()
        assert await reply.read() == ANSWER
        await reply.close()
    assert server.connections == 2


async def test_an_answer_that_is_not_http_is_broken() -> None:
    async with Server(answering(b"SSH-2.0-OpenSSH_9.6\r\n")) as server:
        with pytest.raises(upstream.Broken):
            await server.post()


async def test_a_refused_connection_is_broken() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(upstream.Broken):
        await upstream.post(f"http://127.0.0.1:{port}", "/x", BODY, HEADERS, LIMITS)
    await upstream.close_pool()


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": "Bearer sk-own\r\nx-injected: 1"},
        {"authorization": "Bearer sk-own\nx-injected: 1"},
        {"x-title\r\nx-injected": "1"},
        {"authorization": "Bearer sk-\u20ac"},
    ],
)
async def test_a_header_that_would_split_the_request_is_refused_before_connecting(
    headers: dict[str, str],
) -> None:
    async with Server(answering(whole(ANSWER))) as server:
        with pytest.raises(upstream.Broken):
            await server.post(headers)
    assert server.connections == 0


async def test_a_compressed_answer_is_decompressed() -> None:
    packed = gzip.compress(ANSWER * 50)
    answer = whole(packed, extra=b"content-encoding: gzip\r\n")
    async with Server(answering(answer)) as server:
        reply = await server.post()
        assert await reply.read() == ANSWER * 50
        await reply.close()
        reply = await server.post()
        assert b"".join([piece async for piece in reply.chunks()]) == ANSWER * 50
        await reply.close()


async def test_an_interim_answer_is_skipped() -> None:
    async def answer(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)  # read on its own, before the real answer
        writer.write(whole(ANSWER))
        await writer.drain()
        await asyncio.sleep(1)

    async with Server(answer) as server:
        reply = await server.post()
        assert (reply.status, await reply.read()) == (200, ANSWER)
        await reply.close()


async def test_the_status_and_retry_after_of_a_refusal_reach_the_caller() -> None:
    busy = whole(b"{}", status=b"429 Too Many Requests", extra=b"Retry-After-Ms: 1500\r\n")
    async with Server(answering(busy)) as server:
        reply = await server.post()
        assert (reply.status, reply.retry_after_s) == (429, 1.5)
        await reply.close()


async def test_a_request_cancelled_before_its_answer_leaves_its_connection_closed() -> None:
    hung_up = asyncio.Event()

    async def answer(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        await read_request(reader)
        if server.connections == 1:  # never answers; sees the caller hang up
            if await reader.read(1) == b"":
                hung_up.set()
            return
        writer.write(whole(b'{"connection": %d}' % server.connections))
        await writer.drain()
        await reader.read(1)

    async with Server(answer) as server:
        patient = upstream.Limits(connect_s=2, read_s=30)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await upstream.post(server.base_url, "/x", BODY, HEADERS, patient)
        reply = await server.post()
        assert await reply.read() == b'{"connection": 2}'
        await reply.close()
        await asyncio.wait_for(hung_up.wait(), 1)  # the first connection was closed at once
    assert server.connections == 2


async def test_an_answer_left_unread_does_not_go_back_to_the_pool() -> None:
    async with Server(answering(whole(b"x" * (4 << 20)), whole(ANSWER))) as server:
        async with asyncio.timeout(10):
            reply = await server.post()
            await reply.close()
            reply = await server.post()
            assert await reply.read() == b"x" * (4 << 20)  # a new connection's first answer
            await reply.close()
    assert server.connections == 2


@pytest.mark.parametrize(
    ("loop", "tls"), [("asyncio", False), ("uvloop", False), ("uvloop", True)]
)  # uvloop: what run.sh serves on
def test_a_connection_the_server_closed_while_the_loop_was_frozen_is_not_used(
    loop: str, tls: bool, certificates: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A Lambda's event loop is frozen between invocations: the server's close of an idle
    # connection waits unread in the socket. The server runs in a thread, so it closes
    # while this test's loop is blocked.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    served: list[int] = []
    wrap = server_tls(certificates[1]).wrap_socket if tls else None
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates[0]))
    base_url = f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}"

    def serve() -> None:
        for number in (1, 2):
            raw, _ = listener.accept()
            conn = wrap(raw, server_side=True) if wrap else raw
            with conn:
                data = b""
                while not data.endswith(BODY):
                    data += conn.recv(65536)
                conn.sendall(whole(b'{"connection": %d}' % number))
                served.append(number)
                if number == 1:
                    time.sleep(0.05)  # then closes: the server's idle timeout
                else:
                    conn.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    async def main() -> list[bytes]:
        answers = []
        for _ in range(2):
            reply = await upstream.post(base_url, "/x", BODY, HEADERS, LIMITS)
            answers.append(await reply.read())
            await reply.close()
            time.sleep(1.2)  # noqa: ASYNC251 (frozen: no event loop turn sees the close)
        await upstream.close_pool()
        return answers

    try:
        factory = uvloop.new_event_loop if loop == "uvloop" else asyncio.new_event_loop
        answers = asyncio.run(main(), loop_factory=factory)
        assert answers == [b'{"connection": 1}', b'{"connection": 2}']
    finally:
        listener.close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A CA's certificate file, and a key-and-certificate file for localhost it signed."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(*[False] * 5, True, True, False, False), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + leaf.public_bytes(serialization.Encoding.PEM)
    )
    return folder / "ca.pem", folder / "server.pem"


def server_tls(server_pem: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(server_pem)
    return context


async def test_tls_to_a_provider_whose_certificate_the_system_trusts(
    certificates: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, server_pem = certificates
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # the system's CAs, as OpenSSL reads them
    async with Server(answering(whole(ANSWER)), tls=server_tls(server_pem)) as server:
        for _ in range(2):
            reply = await server.post()
            assert await reply.read() == ANSWER
            await reply.close()
    assert server.connections == 1


async def test_tls_to_a_certificate_nobody_trusts_is_broken(
    certificates: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, server_pem = certificates
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    async with Server(answering(whole(ANSWER)), tls=server_tls(server_pem)) as server:
        with pytest.raises(upstream.Broken, match="SSLCertVerificationError"):
            await server.post()
    assert server.requests == []
