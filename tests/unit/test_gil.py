"""The GIL around native calls (bindings/csrc/gil.c): the fast path's short operations keep it,
everything else releases it, and libmongocrypt's log messages reach Python without deadlock."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator

import bson
import pytest

from conftest import DETERMINISTIC, RANDOM, unv, v
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import ExplicitEncryptOptions, MongoCrypt, MongoCryptOptions
from mongocrypt.engine.native import ffi, lib
from mongocrypt.io.memory import InMemoryIO

#: Large enough that encrypting it takes tens of milliseconds.
BIG = v("x" * (8 << 20))


@pytest.fixture
def crypt_and_key(local_key: bytes) -> Iterator[tuple[MongoCrypt, bytes]]:
    """A handle whose data key is cached."""
    io = InMemoryIO()
    options = MongoCryptOptions({"local": {"key": local_key}}, bypass_encryption=True)
    maker = ExplicitEncrypter(io, options)
    key_id = bytes(maker.create_data_key("local"))
    crypt = MongoCrypt(options)
    with crypt.explicit_encryption_context(
        v("x"), ExplicitEncryptOptions(RANDOM, key_id=key_id)
    ) as ctx:
        ctx.add_mongo_operation_result(io.keys[0])
        ctx.complete_mongo_operation()
        ctx.finish()
    yield crypt, key_id
    crypt.close()
    maker.close()


def other_thread_progress(call: Callable[[], object]) -> int:
    """How far a spinning Python thread gets while ``call`` runs on this one.

    The switch interval is raised well above the call's duration for the measurement, so the
    spinner cannot force a switch in the few bytecodes around the call: it can only run while
    this thread has released the GIL."""
    count = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            count[0] += 1

    interval = sys.getswitchinterval()
    spinner = threading.Thread(target=spin, daemon=True)
    sys.setswitchinterval(0.25)
    try:
        spinner.start()
        while count[0] == 0:
            time.sleep(0.001)  # lets the spinner start
        before = count[0]
        call()
        return count[0] - before
    finally:
        stop.set()
        sys.setswitchinterval(interval)
        spinner.join()


def explicit(crypt: MongoCrypt, key_id: bytes, function: Callable[..., object]) -> None:
    """Encrypt :data:`BIG` through ``function``, one of the two fast-path entry points."""
    capacity = len(BIG) + 512
    io = ffi.new("mongocrypt_py_explicit_t *", {"result": capacity})
    algorithm = DETERMINISTIC.encode()
    args = (ffi.NULL, ffi.NULL, 0, BIG, len(BIG), io, capacity)  # no query type, no Range
    native = function(crypt._live, 0, key_id, 16, algorithm, 0, 0, *args)
    assert native == ffi.NULL and io.state == lib.MONGOCRYPT_CTX_DONE  # encrypted, and freed


def test_a_gil_held_call_keeps_the_gil_and_the_usual_call_releases_it(
    crypt_and_key: tuple[MongoCrypt, bytes],
) -> None:
    crypt, key_id = crypt_and_key
    held = other_thread_progress(
        lambda: explicit(crypt, key_id, lib.mongocrypt_py_explicit_gil_held)
    )
    released = other_thread_progress(lambda: explicit(crypt, key_id, lib.mongocrypt_py_explicit))
    assert held == 0
    assert released > 0


def test_the_fast_path_keeps_the_gil_only_for_short_operations(
    crypt_and_key: tuple[MongoCrypt, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Which of the two entry points engine/handle.py picks, by algorithm and size."""
    from mongocrypt.engine import handle

    crypt, key_id = crypt_and_key
    chosen: list[str] = []

    class Recording:
        def __getattr__(self, name: str) -> object:
            if name.startswith("mongocrypt_py_explicit"):
                chosen.append(name)
            return getattr(lib, name)

    monkeypatch.setattr(handle, "lib", Recording())
    short = v("x" * 20)
    det = ExplicitEncryptOptions(DETERMINISTIC, key_id=key_id)
    ciphertext, _ = crypt.explicit_fast(short, det)
    assert ciphertext is not None
    crypt.explicit_fast(ciphertext)
    crypt.explicit_fast(v("x" * 4096), det)
    crypt.explicit_fast(
        bson.encode({"v": 5}),
        ExplicitEncryptOptions(
            "Range",
            key_id=key_id,
            contention_factor=0,
            range_opts=bson.encode({"min": 0, "max": 10, "sparsity": bson.Int64(1)}),
        ),
    )
    held, released = "mongocrypt_py_explicit_gil_held", "mongocrypt_py_explicit"
    assert chosen == [held, held, released, released]


def test_queued_log_messages_reach_python_in_order_on_their_own_thread(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """libmongocrypt's log handler only queues (so no thread waits for the GIL under
    libmongocrypt's log mutex); each call hands its thread's queue to Python when it returns.
    Called here directly from several threads at once; tests/unit/test_native.py sees a real
    libmongocrypt warning arrive the same way."""
    caplog.set_level(logging.DEBUG, logger="mongocrypt.libmongocrypt")
    start = threading.Barrier(4)

    def log(name: str) -> None:
        start.wait()
        for index in range(200):
            text = f"{name} {index}".encode()
            lib.mongocrypt_py_log_queue(lib.MONGOCRYPT_LOG_LEVEL_WARNING, text, len(text), ffi.NULL)

    threads = [threading.Thread(target=log, args=(f"t{i}",), name=f"t{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = [r for r in caplog.records if r.name == "mongocrypt.libmongocrypt"]
    assert len(records) == 800 and all(r.levelno == logging.WARNING for r in records)
    for i in range(4):
        mine = [r.getMessage() for r in records if r.threadName == f"t{i}"]
        assert mine == [f"t{i} {index}" for index in range(200)]


def test_short_and_long_operations_on_one_handle_from_two_threads(
    crypt_and_key: tuple[MongoCrypt, bytes],
) -> None:
    """One thread's calls keep the GIL while the other's release it, on the same handle; both
    get every result right."""
    crypt, key_id = crypt_and_key
    det = ExplicitEncryptOptions(DETERMINISTIC, key_id=key_id)
    deadline = time.monotonic() + 0.5
    done = []

    def loop(text: str) -> None:
        while time.monotonic() < deadline:
            ciphertext, _ = crypt.explicit_fast(v(text), det)
            assert ciphertext is not None
            plaintext, _ = crypt.explicit_fast(ciphertext)
            assert plaintext is not None and unv(plaintext) == text
        done.append(text)

    threads = [threading.Thread(target=loop, args=(s,), daemon=True) for s in ("x", "x" * 8192)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(done) == 2, "a thread is stuck or failed"
