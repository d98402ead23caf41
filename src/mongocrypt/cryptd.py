"""``mongocrypt-cryptd``: a mongocryptd-compatible daemon built on the embedded analyzer.

It speaks the MongoDB wire protocol on 127.0.0.1 (OP_MSG, and OP_QUERY for legacy handshakes),
answers ``hello``/``isMaster`` as mongocryptd does (``iscryptd: true``), and answers marking
commands with :func:`mongocrypt.analysis.analyze`. It takes mongocryptd's command-line options, so
a driver configured to spawn mongocryptd can spawn it instead (``mongocryptd_spawn_path``):

    mongocrypt-cryptd [--port N] [--idleShutdownTimeoutSecs N] [--pidfilepath FILE]
                      [--bind_ip HOST] [--logpath FILE]

It exits after ``--idleShutdownTimeoutSecs`` (default 60) without a request. Options mongocryptd
has but this daemon does not need are accepted and ignored, with a note on stderr.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Optional

import bson
from bson.codec_options import CodecOptions

from mongocrypt.errors import MongoCryptError

__all__ = ["main", "serve"]

LOGGER = logging.getLogger("mongocrypt.cryptd")
OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
MAX_WIRE_VERSION = 27  # what mongocryptd 8.2 reports; libmongocrypt needs 26 for multi-schema
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


def hello_reply() -> dict[str, Any]:
    return {
        "ismaster": True,
        "isWritablePrimary": True,
        "iscryptd": True,
        "maxBsonObjectSize": 16 * 1024 * 1024,
        "maxMessageSizeBytes": 48_000_000,
        "maxWriteBatchSize": 100_000,
        "localTime": datetime.datetime.now(datetime.timezone.utc),
        "maxWireVersion": MAX_WIRE_VERSION,
        "minWireVersion": 0,
        "ok": 1.0,
    }


def answer(command: dict[str, Any]) -> dict[str, Any]:
    """The reply to one command document."""
    name = next(iter(command), "").lower()
    if name in ("hello", "ismaster"):
        return hello_reply()
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
                header = self._read(16)
                length, request_id, _, op_code = struct.unpack("<iiii", header)
                body = self._read(length - 16)
                self.server.touch()
                if op_code == OP_MSG:
                    self.request.sendall(self._op_msg(request_id, body))
                elif op_code == OP_QUERY:
                    self.request.sendall(self._op_query(request_id, body))
                else:
                    return
        except (EOFError, ConnectionError):
            return

    @staticmethod
    def _op_msg(request_id: int, body: bytes) -> bytes:
        flags = struct.unpack_from("<I", body)[0]
        offset, command = 4, {}
        sequences: dict[str, list[Any]] = {}
        end = len(body) - (4 if flags & 1 else 0)  # checksum present
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
        reply = bson.encode(answer(command))
        payload = struct.pack("<I", 0) + b"\x00" + reply
        return struct.pack("<iiii", 16 + len(payload), 0, request_id, OP_MSG) + payload

    @staticmethod
    def _op_query(request_id: int, body: bytes) -> bytes:
        name_end = body.index(b"\x00", 4)
        offset = name_end + 1 + 8  # flags, collection name, skip and return counts
        size = struct.unpack_from("<i", body, offset)[0]
        command = bson.decode(body[offset : offset + size], codec_options=RAW)
        reply = bson.encode(answer(command))
        payload = struct.pack("<iqii", 0, 0, 0, 1) + reply
        return struct.pack("<iiii", 16 + len(payload), 0, request_id, OP_REPLY) + payload


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(address, _Handler)
        self.last_activity = time.monotonic()

    def touch(self) -> None:
        self.last_activity = time.monotonic()


def serve(
    host: str, port: int, idle_timeout: float, ready: Optional[threading.Event] = None
) -> None:
    """Serve until ``idle_timeout`` seconds pass without a request."""
    with _Server((host, port)) as server:
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        thread.start()
        if ready is not None:
            ready.set()
        LOGGER.info("listening on %s:%d, idle shutdown after %.0f s", host, port, idle_timeout)
        while time.monotonic() - server.last_activity < idle_timeout:
            time.sleep(min(1.0, idle_timeout / 10))
        LOGGER.info("idle for %.0f s: shutting down", idle_timeout)
        server.shutdown()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mongocrypt-cryptd", description="A mongocryptd-compatible query-analysis daemon."
    )
    parser.add_argument("--port", type=int, default=27020)
    parser.add_argument("--bind_ip", default="127.0.0.1")
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
    logging.basicConfig(
        filename=args.logpath, level=logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    if args.pidfilepath:
        with open(args.pidfilepath, "w") as pidfile:
            pidfile.write(f"{os.getpid()}\n")
    try:
        serve(args.bind_ip, args.port, args.idleShutdownTimeoutSecs)
    except OSError as exc:
        print(
            f"mongocrypt-cryptd: cannot listen on {args.bind_ip}:{args.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
