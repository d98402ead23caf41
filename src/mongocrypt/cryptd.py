"""``mongocrypt-cryptd``: a mongocryptd-compatible daemon built on the embedded analyzer.

It speaks the MongoDB wire protocol (OP_MSG, OP_QUERY for legacy handshakes, and OP_COMPRESSED
with the noop or zlib compressor; another compressor gets an error reply), answers
``hello``/``isMaster`` as mongocryptd does (``iscryptd: true``), and answers marking commands with
:func:`mongocrypt.analysis.analyze`. Replies carry their own ``requestID`` (one counter for the
process) and the request's id as ``responseTo``. It takes mongocryptd's command-line options, so
a driver configured to spawn mongocryptd can spawn it instead (``mongocryptd_spawn_path``):

    mongocrypt-cryptd [--port N] [--idleShutdownTimeoutSecs N] [--pidfilepath FILE]
                      [--bind_ip HOST[,HOST...]] [--logpath FILE]

It exits after ``--idleShutdownTimeoutSecs`` (default 60) without a request. Options mongocryptd
has but this daemon does not need are accepted and ignored, with a note on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
import socket
import socketserver
import struct
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from typing import Any, Optional

import bson
from bson.codec_options import CodecOptions

from mongocrypt.analysis._hello import HELLO_NAMES, MAX_MESSAGE_SIZE, hello_reply
from mongocrypt.errors import MongoCryptError

__all__ = ["main", "serve"]

LOGGER = logging.getLogger("mongocrypt.cryptd")
OP_REPLY, OP_COMPRESSED, OP_QUERY, OP_MSG = 1, 2012, 2004, 2013
_NOOP, _ZLIB = 0, 2  # OP_COMPRESSED compressor ids this daemon decompresses
_CHECKSUM_PRESENT, _MORE_TO_COME = 1, 2  # OP_MSG flag bits
RAW: CodecOptions[dict[str, Any]] = CodecOptions(
    uuid_representation=bson.binary.UuidRepresentation.UNSPECIFIED
)
_GENERIC_FIELDS = (
    "$db",
    "lsid",
    "$clusterTime",
    "$readPreference",
    "apiVersion",
    "apiStrict",
    "apiDeprecationErrors",
)
#: Reply request ids, one sequence for the whole process (as a server numbers its messages).
_REQUEST_IDS = itertools.count()
_REQUEST_IDS_LOCK = threading.Lock()


def _next_request_id() -> int:
    with _REQUEST_IDS_LOCK:
        return next(_REQUEST_IDS) % 0x7FFFFFFF + 1  # positive int32, wrapping


def answer(command: dict[str, Any]) -> dict[str, Any]:
    """The reply to one command document."""
    first = next(iter(command), "")
    name = first.lower()
    if name in HELLO_NAMES:
        return hello_reply(first)
    if name in ("ping", "endsessions"):
        return {"ok": 1.0}
    if name == "buildinfo":
        return {"version": "8.2.0", "versionArray": [8, 2, 0, 0], "ok": 1.0}
    from mongocrypt.analysis import analyze

    for field in _GENERIC_FIELDS:
        command.pop(field, None)
    try:
        return analyze(command)
    except MongoCryptError as exc:
        return {"ok": 0.0, "errmsg": str(exc), "code": exc.code or 1, "codeName": "QueryAnalysis"}


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def _read(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.request.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def handle(self) -> None:
        try:
            while True:
                length, request_id, _, op_code = struct.unpack("<iiii", self._read(16))
                body = self._read(length - 16)
                self.server.clock.touch()
                try:
                    if op_code == OP_COMPRESSED:
                        op_code, body = _decompressed(body)
                    if op_code not in (OP_MSG, OP_QUERY):
                        return  # an opcode mongocryptd does not take either
                    reply = _reply(op_code, body)
                except _Unreadable as exc:
                    reply = _error_reply(exc.op_code, str(exc))
                if reply is not None:
                    self.request.sendall(_message(request_id, *reply))
        except (EOFError, ConnectionError):
            return


class _Unreadable(Exception):
    """A message this daemon cannot read; answered with an error reply in the form of
    ``op_code``'s replies, and the connection kept."""

    def __init__(self, op_code: int, message: str) -> None:
        super().__init__(message)
        self.op_code = op_code


def _decompressed(body: bytes) -> tuple[int, bytes]:
    """The original opcode and body of an OP_COMPRESSED message.

    :raises _Unreadable: for a compressor this daemon does not have (snappy, zstd: mongocryptd
        advertises no compression, so a driver that follows the handshake never compresses) or
        a body that does not inflate to the announced size.
    """
    op_code, size, compressor = struct.unpack_from("<iiB", body)
    data = body[9:]
    if not 0 <= size <= MAX_MESSAGE_SIZE:
        raise _Unreadable(op_code, f"OP_COMPRESSED: an uncompressed size of {size} bytes")
    if compressor == _ZLIB:
        try:  # never more than the announced size: a small message cannot inflate to gigabytes
            data = zlib.decompressobj().decompress(data, size + 1)
        except zlib.error as exc:
            raise _Unreadable(op_code, f"OP_COMPRESSED: the zlib data is invalid ({exc})") from None
    elif compressor != _NOOP:
        raise _Unreadable(op_code, f"OP_COMPRESSED: compressor id {compressor} is not supported")
    if len(data) != size:
        raise _Unreadable(op_code, f"OP_COMPRESSED: {len(data)} bytes where {size} were announced")
    return op_code, data


def _reply(op_code: int, body: bytes) -> Optional[tuple[int, bytes]]:
    """The reply (opcode, payload) to an OP_QUERY or OP_MSG body; None for an OP_MSG with the
    moreToCome flag (the client wants no reply)."""
    if op_code == OP_QUERY:
        name_end = body.index(b"\x00", 4)
        offset = name_end + 1 + 8  # flags, collection name, skip and return counts
        size = struct.unpack_from("<i", body, offset)[0]
        command = bson.decode(body[offset : offset + size], codec_options=RAW)
        return _query_reply(answer(command))
    flags = struct.unpack_from("<I", body)[0]
    offset, command = 4, {}
    sequences: dict[str, list[Any]] = {}
    end = len(body) - (4 if flags & _CHECKSUM_PRESENT else 0)
    while offset < end:
        kind = body[offset]
        offset += 1
        size = struct.unpack_from("<i", body, offset)[0]
        if kind == 0:
            command = bson.decode(body[offset : offset + size], codec_options=RAW)
        else:  # a document sequence: belongs in the command under its identifier
            name_end = body.index(b"\x00", offset + 4)
            identifier = body[offset + 4 : name_end].decode()
            sequences[identifier] = bson.decode_all(body[name_end + 1 : offset + size], RAW)
        offset += size
    command.update(sequences)
    reply = answer(command)
    return None if flags & _MORE_TO_COME else _msg_reply(reply)


def _msg_reply(reply: dict[str, Any]) -> tuple[int, bytes]:
    return OP_MSG, struct.pack("<I", 0) + b"\x00" + bson.encode(reply)


def _query_reply(reply: dict[str, Any]) -> tuple[int, bytes]:
    return OP_REPLY, struct.pack("<iqii", 0, 0, 0, 1) + bson.encode(reply)


def _error_reply(op_code: int, message: str) -> tuple[int, bytes]:
    """An error reply in the form of ``op_code``'s replies."""
    error = {"ok": 0.0, "errmsg": message, "code": 2, "codeName": "BadValue"}
    return _query_reply(error) if op_code == OP_QUERY else _msg_reply(error)


def _message(response_to: int, op_code: int, payload: bytes) -> bytes:
    header = struct.pack("<iiii", 16 + len(payload), _next_request_id(), response_to, op_code)
    return header + payload


class _Clock:
    """When the last request arrived, on any of the daemon's addresses."""

    def __init__(self) -> None:
        self.last_activity = time.monotonic()

    def touch(self) -> None:
        self.last_activity = time.monotonic()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], clock: _Clock) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.clock = clock


def serve(
    hosts: Sequence[str], port: int, idle_timeout: float, ready: Optional[threading.Event] = None
) -> None:
    """Serve on ``port`` of every address in ``hosts`` until ``idle_timeout`` seconds pass
    without a request on any of them.

    :param hosts: the addresses to listen on (IPv4, IPv6 or names), as ``--bind_ip`` lists them.
    :raises OSError: when one of them cannot be listened on (none is served then).
    """
    clock = _Clock()
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(_Server((host, port), clock)) for host in hosts]
        for server in servers:
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
            ).start()
            stack.callback(server.shutdown)
        if ready is not None:
            ready.set()
        LOGGER.info(
            "listening on %s port %d, idle shutdown after %.0f s",
            ",".join(hosts),
            port,
            idle_timeout,
        )
        while time.monotonic() - clock.last_activity < idle_timeout:
            time.sleep(min(1.0, idle_timeout / 10))
        LOGGER.info("idle for %.0f s: shutting down", idle_timeout)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mongocrypt-cryptd", description="A mongocryptd-compatible query-analysis daemon."
    )
    parser.add_argument("--port", type=int, default=27020)
    parser.add_argument(
        "--bind_ip", default="127.0.0.1", help="comma-separated addresses to listen on"
    )
    parser.add_argument("--idleShutdownTimeoutSecs", type=int, default=60)
    parser.add_argument("--pidfilepath")
    parser.add_argument("--logpath")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The console entry point."""
    args, ignored = _parser().parse_known_args(argv)
    if ignored:
        print(
            f"mongocrypt-cryptd: ignoring options it does not need: {' '.join(ignored)}",
            file=sys.stderr,
        )
    if args.idleShutdownTimeoutSecs <= 0:
        print("mongocrypt-cryptd: --idleShutdownTimeoutSecs must be > 0", file=sys.stderr)
        return 2
    hosts = [host.strip() for host in args.bind_ip.split(",")]
    if not all(hosts):
        print(
            f"mongocrypt-cryptd: --bind_ip has an empty address: {args.bind_ip!r}", file=sys.stderr
        )
        return 2
    logging.basicConfig(
        filename=args.logpath, level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    if args.pidfilepath:
        with open(args.pidfilepath, "w") as pidfile:
            pidfile.write(f"{os.getpid()}\n")
    try:
        serve(hosts, args.port, args.idleShutdownTimeoutSecs)
    except OSError as exc:
        print(
            f"mongocrypt-cryptd: cannot listen on {args.bind_ip}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
