"""The sandbox's HTTP server: small, narrow, and bounded wherever a client could hold it.

The sandbox first ran on http.server's ThreadingHTTPServer, which gives each connection a
thread for as long as the client likes: 400 idle clients made 401 threads, and a request
declaring a body it never sent held its thread for ever. Here a connection is an asyncio
task (an idle one costs a few KiB and no thread), answers are computed by a fixed pool of
`workers` threads, and every wait on a client has a deadline (see Limits).

It serves what a REST client of Binance's public API sends, and answers anything else at
once with a JSON error in Binance's format:
- GET only (405), HTTP/1.0 or 1.1 (HTTP/0.9 and malformed requests: 400; other versions:
  505), one request per connection: the answer says `Connection: close`, and requests
  pipelined after the first are dropped unanswered.
- No request body: parameters come in the query string, as for Binance's GET endpoints. A
  declared body gets 413 (a malformed Content-Length 400) without waiting for it. After
  any answer the server half-closes and discards what the client still sends, up to
  `linger_bytes` for `linger_seconds`, so that a client still sending reads the answer
  rather than a connection reset.
- Every request gets one log line, written and flushed before its answer is sent, so that
  whoever holds an answer finds its line in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, TextIO
from urllib.parse import parse_qsl


class ApiError(Exception):
    """An answer in Binance's error format: {"code": -1121, "msg": "Invalid symbol."}."""

    def __init__(self, status: int, code: int, msg: str):
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass(frozen=True)
class Limits:
    """What a client can make the server hold, and what it gets beyond that."""

    max_connections: int = 512  # open at once; one more gets 503 at once
    head_bytes: int = 16 * 1024  # request line and headers: 414 or 431 beyond
    max_headers: int = 100  # header lines: 431 beyond
    head_seconds: float = 10.0  # to send the whole head, however slowly: 408 after
    write_seconds: float = 10.0  # to take the answer: the connection is cut after
    linger_seconds: float = 2.0  # after the answer, to close: the server closes after
    linger_bytes: int = 64 * 1024  # discarded meanwhile, at most (an unread body)
    stop_seconds: float = 3.0  # on stop(), for answers under way to go out
    workers: int = 4  # threads computing answers: the only ones but the event loop's


App = Callable[[str, dict[str, str]], Any]  # (path, parameters) -> JSON; raises ApiError
_Answer = tuple[int, bytes]  # HTTP status, JSON body
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a method or header name (RFC 9110)
BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")
PRINTABLE = re.compile(rb"[\x20-\x7e]+")  # a request line: printable ASCII
PARTIAL_LINE = re.compile(rb"[\x20-\x7e\r]*")  # the beginning of one
BLANK_LINE = re.compile(rb"\n\r?\n")  # the end of a request's head
VERSIONS = ("HTTP/1.0", "HTTP/1.1")
UNKNOWN = -1000  # Binance's code for errors without a code of their own


class _ClientGone(Exception):
    """The client closed the connection before its request was complete."""


@dataclass
class _Request:
    """What is known of one request so far; the log shows '-' for what is not."""

    method: str = "-"
    path: str = "-"
    query: str = ""
    params: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)


class HttpServer:
    """Serves an App on a listening socket. Like socketserver's servers: serve_forever()
    (in a thread, for tests), shutdown() from another thread, then server_close()."""

    def __init__(self, sock: socket.socket, app: App, log: TextIO | None, limits: Limits):
        self.socket, self.app, self.log, self.limits = sock, app, log, limits
        self.server_address: tuple[str, int] = sock.getsockname()[:2]
        self._stop_requested = threading.Event()
        self._finished = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._workers: ThreadPoolExecutor | None = None
        self._open: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}  # every connection
        self._reading: set[asyncio.Task[Any]] = set()  # those still sending their request
        self._refusing = 0  # those being answered 503

    def serve_forever(self) -> None:
        """Serve until stop() or shutdown(), in the calling thread."""
        try:
            asyncio.run(self._serve())
        finally:
            self._finished.set()

    def stop(self) -> None:
        """Make serve_forever return soon; safe from any thread and from a signal handler."""
        self._stop_requested.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                loop.call_soon_threadsafe(stopping.set)

    def shutdown(self) -> None:
        """stop(), and wait until serve_forever has returned."""
        self.stop()
        self._finished.wait()

    def server_close(self) -> None:
        self.socket.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stop_requested.is_set():  # stop() came before the loop did
            self._stopping.set()
        with ThreadPoolExecutor(self.limits.workers, "sandbox-answer") as self._workers:
            server = await asyncio.start_server(
                self._connection, sock=self.socket, limit=self.limits.head_bytes
            )
            await self._stopping.wait()
            server.close()  # no new connections
            # Connections still sending their request end without an answer; answers under
            # way get stop_seconds to go out. Transports are aborted rather than tasks
            # cancelled: in Python 3.11 a cancelled connection task prints a traceback.
            for task in self._reading:
                self._open[task].transport.abort()
            if self._open:
                await asyncio.wait(set(self._open), timeout=self.limits.stop_seconds)
            for writer in self._open.values():
                writer.transport.abort()
            # Wait for every task to end: those of connections accepted just before the
            # listening socket closed too, which _connection aborts at once.
            while tasks := asyncio.all_tasks() - {asyncio.current_task()}:
                await asyncio.wait(tasks)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: answer one request (or 503 beyond max_connections), close."""
        task = asyncio.current_task()
        assert task is not None and self._stopping is not None
        if self._stopping.is_set():
            writer.transport.abort()
            return
        self._open[task] = writer
        try:
            if len(self._open) - self._refusing > self.limits.max_connections:
                await self._refuse_busy(reader, writer)
            else:
                await self._serve_one(reader, writer, task)
        finally:
            del self._open[task]
            writer.transport.abort()  # the answer has gone out by now, or never will

    async def _serve_one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, task: asyncio.Task[Any]
    ) -> None:
        """Read one request, log it, answer it."""
        self._reading.add(task)
        request = _Request()
        try:
            answer = await self._read(reader, request)
            self._reading.discard(task)
            if answer is None:  # a request to serve
                loop = asyncio.get_running_loop()
                answer = await loop.run_in_executor(self._workers, self._compute, request)
            status, body = answer
            self._log_line(request, status)
            await self._send(reader, writer, status, body)
        except (_ClientGone, ConnectionError):
            pass  # nothing to answer
        except Exception:  # a bug: this connection fails, the server goes on
            traceback.print_exc(file=sys.stderr)
        finally:
            self._reading.discard(task)

    async def _refuse_busy(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Answer 503 without reading the request. The connection lingers like any other,
        or the client might get a reset instead of the 503, but at most max_connections
        of them at once: beyond, a connection is reset at once."""
        self._log_line(_Request(), 503)
        if self._refusing >= self.limits.max_connections:
            return
        self._refusing += 1
        try:
            msg = "Server is currently overloaded with other requests. Please try again later."
            await self._send(reader, writer, 503, _error(-1008, msg))
        finally:
            self._refusing -= 1

    async def _read(self, reader: asyncio.StreamReader, request: _Request) -> _Answer | None:
        """Read the request into request; None if it is to be served, else its refusal."""
        try:
            await asyncio.wait_for(
                _read_request(reader, self.limits, request), self.limits.head_seconds
            )
        except ApiError as exc:
            return exc.status, _error(exc.code, exc.msg)
        except TimeoutError:
            msg = f"The request did not arrive within {self.limits.head_seconds:g} s."
            return 408, _error(UNKNOWN, msg)
        return None

    def _compute(self, request: _Request) -> _Answer:
        """The app's answer (in a worker thread)."""
        try:
            return 200, _json(self.app(request.path, request.params))
        except ApiError as exc:
            return exc.status, _error(exc.code, exc.msg)
        except Exception as exc:  # a bug here must not look like a dead exchange
            traceback.print_exc(file=sys.stderr)
            return 500, _error(UNKNOWN, f"sandbox error: {exc!r}")

    async def _send(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, status: int, body: bytes
    ) -> None:
        """Send the answer, half-close, then discard what the client still sends until it
        closes: closing on unread bytes would reset the connection, and the client might
        lose its answer. Gives up on a client that takes too long or has gone."""

        async def discard(budget: int) -> None:
            while budget > 0 and (chunk := await reader.read(min(budget, 65536))):
                budget -= len(chunk)

        writer.transport.set_write_buffer_limits(high=0)  # drain(): all in the kernel's hands
        writer.write(_response(status, body))
        with contextlib.suppress(TimeoutError, ConnectionError):
            await asyncio.wait_for(writer.drain(), self.limits.write_seconds)
            writer.write_eof()
            await asyncio.wait_for(discard(self.limits.linger_bytes), self.limits.linger_seconds)

    def _log_line(self, request: _Request, status: int) -> None:
        """One line, flushed: time, method, path, query, status, duration."""
        if self.log is None:
            return
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        took = (time.monotonic() - request.started) * 1000
        query = request.query or "-"
        self.log.write(f"{stamp} {request.method} {request.path} {query} {status} {took:.0f}ms\n")
        self.log.flush()


async def _read_request(reader: asyncio.StreamReader, limits: Limits, request: _Request) -> None:
    """Read the request line and headers and fill in request; raise ApiError for anything
    not served (in this order: malformed 400, other methods 405, bodies 413, parameters).

    Each byte is looked at once or twice, however slowly they come: a client sending its
    head byte by byte costs no more than one sending it at once."""
    head = bytearray()
    line_complete = False
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            raise _ClientGone
        new = max(0, len(head) - 2)  # a blank line may straddle two chunks
        head += chunk
        line_complete = line_complete or _check_request_line(head, new, request)
        if blank_line := BLANK_LINE.search(head, new):
            break
        if len(head) > limits.head_bytes:
            raise _too_long(head, limits)
    if blank_line.start() > limits.head_bytes:
        raise _too_long(head, limits)
    lines = [line.removesuffix(b"\r") for line in head[: blank_line.start()].split(b"\n")]
    if len(lines) - 1 > limits.max_headers:
        raise ApiError(431, UNKNOWN, f"More than {limits.max_headers} header lines.")
    has_body = _declares_a_body([_parse_header(bytes(line)) for line in lines[1:]])
    if request.method != "GET":
        msg = f"botpool sandbox exchange does not serve {request.method} {request.path}: GET only."
        raise ApiError(405, UNKNOWN, msg)
    if has_body:
        msg = "The sandbox reads no request body: send parameters in the query string."
        raise ApiError(413, UNKNOWN, msg)
    request.params = _parse_query(request.query)


def _check_request_line(head: bytearray, new: int, request: _Request) -> bool:
    """Whether the request line is complete (and parsed into request); refuses at once one
    that cannot become a line we serve (HTTP/0.9, a TLS handshake...), even unfinished."""
    newline = head.find(b"\n", new)
    if newline < 0:
        if not PARTIAL_LINE.fullmatch(head, new):
            raise _malformed()
        return False
    _parse_request_line(bytes(head[:newline]).removesuffix(b"\r"), request)
    return True


def _too_long(head: bytearray, limits: Limits) -> ApiError:
    newline = head.find(b"\n")
    status = 414 if not 0 <= newline <= limits.head_bytes else 431  # the line, or headers
    return ApiError(status, UNKNOWN, f"The request is over {limits.head_bytes} bytes.")


def _parse_request_line(raw: bytes, request: _Request) -> None:
    """Method, path and query of `GET /path?query HTTP/1.1`, printable ASCII only."""
    parts = raw.decode("latin-1").split(" ")
    if not PRINTABLE.fullmatch(raw) or not all(parts) or len(parts) not in (2, 3):
        raise _malformed()
    if len(parts) == 2:
        raise ApiError(400, UNKNOWN, "HTTP/0.9 is not served: send 'GET /path HTTP/1.1'.")
    method, target, version = parts
    if not TOKEN.fullmatch(method) or not target.startswith("/"):
        raise _malformed()
    request.method = method
    request.path, _, request.query = target.partition("?")
    if version not in VERSIONS:
        status = 505 if re.fullmatch(r"HTTP/[0-9](\.[0-9])?", version) else 400
        raise ApiError(status, UNKNOWN, f"{version} is not served: HTTP/1.0 or HTTP/1.1 only.")


def _malformed() -> ApiError:
    return ApiError(400, UNKNOWN, "Malformed request line: expected 'GET /path HTTP/1.1'.")


def _parse_header(raw: bytes) -> tuple[str, str]:
    """(lower-case name, value) of a `Name: value` line."""
    name, colon, value = raw.decode("latin-1").partition(":")
    if not colon or not TOKEN.fullmatch(name):
        raise ApiError(400, UNKNOWN, "Malformed header line: expected 'Name: value'.")
    return name.lower(), value.strip(" \t")


def _declares_a_body(headers: list[tuple[str, str]]) -> bool:
    """Whether the request says a body follows; its length must be unambiguous, even when
    the body is to be refused."""
    lengths = {value for name, value in headers if name == "content-length"}
    chunked = any(name == "transfer-encoding" for name, _ in headers)
    if len(lengths) > 1 or not all(CONTENT_LENGTH.fullmatch(length) for length in lengths):
        raise ApiError(400, UNKNOWN, "Invalid Content-Length header.")
    if lengths and chunked:
        raise ApiError(400, UNKNOWN, "Content-Length and Transfer-Encoding together.")
    return chunked or any(int(length) > 0 for length in lengths)


def _parse_query(query: str) -> dict[str, str]:
    """The parameters, percent-decoded as UTF-8; each may appear once, as on Binance."""
    try:
        if BAD_ESCAPE.search(query):
            raise ValueError
        pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, -1100, "Illegal characters found in a parameter.") from None
    params = dict(pairs)
    if len(params) != len(pairs):
        raise ApiError(400, -1101, "Duplicate values for a parameter detected.")
    return params


def _json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def _error(code: int, msg: str) -> bytes:
    return _json({"code": code, "msg": msg})


def _response(status: int, body: bytes) -> bytes:
    head = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        f"Date: {formatdate(usegmt=True)}",
        "Server: botpool-sandbox",
    ]
    if status == 405:
        head.append("Allow: GET")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body
