"""Concurrency and lifecycle on the real peers: 8 threads sharing one MongoClient and one
ClientEncryption (plus one auto-decrypting client) with every result checked, many asyncio tasks
on one AsyncClientEncryption, fork after use, use after close(), and interpreter shutdown with
everything left open.

``MONGOCRYPT_CONCURRENCY_SECONDS`` sets how long the threads run (default 10).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import pymongo
import pytest

from conftest import RANDOM, present, v
from mongocrypt import (
    Algorithm,
    AsyncClientEncryption,
    ClientEncryption,
    DataKeyOpts,
    EncryptOpts,
    MongoCryptClosedError,
    RewrapManyDataKeyOpts,
)
from mongocrypt.auto_encryption import AutoEncryptionOpts
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import AutoEncrypter, ExplicitEncryptOptions, MongoCrypt, MongoCryptOptions
from mongocrypt.engine.native import live_objects
from mongocrypt.io.memory import InMemoryIO
from mongocrypt.options import AlgorithmName

THREADS = 8
SECONDS = float(os.environ.get("MONGOCRYPT_CONCURRENCY_SECONDS", "10"))
TASKS = 1000


@pytest.fixture
def database(mongodb_uri: str) -> Iterator[str]:
    name = f"conc_{uuid.uuid4().hex[:8]}"
    yield name
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        client.drop_database(name)


def providers(kms_setup: Any) -> dict[str, Any]:
    return {name: kms_setup.providers[name] for name in ("local", "aws:mock")}


# -- threads ---------------------------------------------------------------------------------


def test_eight_threads_share_one_client_and_one_client_encryption(
    mongodb_uri: str, kms_setup: Any, database: str
) -> None:
    """Mixed explicit encryption (FLE1 and QE algorithms, local and KMS keys), decryption, key
    creation and automatic decryption through one client each, for a bounded time."""
    namespace = f"{database}.keys"
    kms = providers(kms_setup)
    opts = AutoEncryptionOpts(
        kms, namespace, bypass_auto_encryption=True, kms_tls_options=kms_setup.tls_options
    )
    with (
        pymongo.MongoClient[Any](mongodb_uri, maxPoolSize=THREADS) as client,
        pymongo.MongoClient[Any](mongodb_uri, auto_encryption_opts=opts) as reader,
        ClientEncryption(
            kms,
            namespace,
            client,
            kms_tls_options=kms_setup.tls_options,
            key_expiration_ms=250,  # keys leave the cache: KMS requests keep happening
        ) as ce,
    ):
        local = ce.create_data_key("local", DataKeyOpts(key_alt_names=["local"]))
        aws = ce.create_data_key(
            "aws:mock", DataKeyOpts(kms_setup.master_keys["aws:mock"], key_alt_names=["aws"])
        )
        people = client[database].people
        encrypted_reads = reader[database].people
        counts: Counter[str] = Counter()
        errors: list[BaseException] = []
        barrier = threading.Barrier(THREADS)
        deadline = time.monotonic() + SECONDS

        def work(worker: int) -> None:
            rng = random.Random(worker)
            seen: Counter[str] = Counter()
            barrier.wait()
            n = 0
            try:
                while time.monotonic() < deadline:
                    n += 1
                    value = f"t{worker}-{n}-{rng.random()}"
                    op = rng.choice(["det", "random", "qe", "auto", "auto", "key"])
                    if op == "det":
                        opts_ = EncryptOpts(Algorithm.DETERMINISTIC, key_alt_name="local")
                        first, second = ce.encrypt(value, opts_), ce.encrypt(value, opts_)
                        assert first == second and ce.decrypt(first) == value
                    elif op == "random":
                        ciphertext = ce.encrypt(value, EncryptOpts(Algorithm.RANDOM, key_id=aws))
                        assert ce.decrypt(ciphertext) == value
                    elif op == "qe":
                        opts_ = EncryptOpts(Algorithm.INDEXED, key_id=local, contention_factor=0)
                        assert ce.decrypt(ce.encrypt(value, opts_)) == value
                    elif op == "auto":
                        key = aws if n % 2 else local
                        secret = ce.encrypt(value, EncryptOpts(Algorithm.RANDOM, key_id=key))
                        _id = f"{worker}-{n}"
                        people.insert_one({"_id": _id, "v": secret, "n": n})
                        document = encrypted_reads.find_one({"_id": _id})
                        assert document == {"_id": _id, "v": value, "n": n}, document
                    else:
                        name = f"key-{worker}-{n}"
                        key_id = ce.create_data_key("local", DataKeyOpts(key_alt_names=[name]))
                        assert present(ce.get_key_by_alt_name(name))["_id"] == key_id
                    seen[op] += 1
            except BaseException as exc:
                errors.append(exc)
                raise
            finally:
                with lock:
                    counts.update(seen)

        lock = threading.Lock()
        workers = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(SECONDS + 60)
        assert not any(w.is_alive() for w in workers), "a worker is stuck"
        assert not errors, errors[0]
        total = sum(counts.values())
        print(f"{THREADS} threads, {SECONDS:.0f} s: {total} operations {dict(counts)}")
        assert all(counts[op] > 0 for op in ("det", "random", "qe", "auto", "key")), counts
        assert people.count_documents({}) == counts["auto"]
        assert client[database].keys.count_documents({}) == 2 + counts["key"]


# -- asyncio ---------------------------------------------------------------------------------


def test_many_asyncio_tasks_on_one_async_client_encryption(
    mongodb_uri: str, kms_setup: Any, database: str
) -> None:
    async def scenario() -> Counter[str]:
        client: pymongo.AsyncMongoClient[Any] = pymongo.AsyncMongoClient(mongodb_uri)
        try:
            return await run(client)
        finally:
            await client.close()

    async def run(client: Any) -> Counter[str]:
        counts: Counter[str] = Counter()
        async with AsyncClientEncryption(
            providers(kms_setup),
            f"{database}.keys",
            client,
            kms_tls_options=kms_setup.tls_options,
            key_expiration_ms=100,
        ) as ace:
            local = await ace.create_data_key("local")
            aws = await ace.create_data_key(
                "aws:mock", DataKeyOpts(kms_setup.master_keys["aws:mock"])
            )

            async def task(i: int) -> None:
                if i % 20 == 0:
                    key_id = await ace.create_data_key(
                        "local", DataKeyOpts(key_alt_names=[f"k{i}"])
                    )
                    assert present(await ace.get_key_by_alt_name(f"k{i}"))["_id"] == key_id
                    counts["key"] += 1
                    return
                key = aws if i % 3 == 0 else local
                deterministic = i % 2 == 1
                algorithm: AlgorithmName = (
                    Algorithm.DETERMINISTIC if deterministic else Algorithm.RANDOM
                )
                value: Any = f"v{i}" if deterministic else {"task": i, "payload": f"v{i}"}
                ciphertext = await ace.encrypt(value, EncryptOpts(algorithm, key_id=key))
                await asyncio.sleep(0)
                assert await ace.decrypt(ciphertext) == value
                counts["aws" if key == aws else "local"] += 1

            await asyncio.gather(*(task(i) for i in range(TASKS)))
            result = await ace.rewrap_many_data_key({}, RewrapManyDataKeyOpts("local"))
            assert present(result.bulk_write_result).modified_count == 2 + counts["key"]
        return counts

    counts = asyncio.run(scenario())
    print(f"{TASKS} concurrent tasks: {dict(counts)}")
    assert sum(counts.values()) == TASKS


# -- fork ------------------------------------------------------------------------------------

_FORK_SCRIPT = """
import json, os, signal, sys, warnings
import pymongo
from mongocrypt import Algorithm, ClientEncryption, EncryptOpts, MongoCryptError

settings = json.loads(sys.argv[1])
providers = {"local": {"key": bytes.fromhex(settings["key"])}}
namespace = settings["namespace"]

def use(ce, label):
    key_id = ce.create_data_key("local")
    ciphertext = ce.encrypt(label, EncryptOpts(Algorithm.RANDOM, key_id=key_id))
    assert ce.decrypt(ciphertext) == label, label
    return key_id

client = pymongo.MongoClient(settings["uri"])
parent_ce = ClientEncryption(providers, namespace, client)
cached = parent_ce.encrypt("before fork", EncryptOpts(Algorithm.DETERMINISTIC,
                                                       key_id=use(parent_ce, "parent")))
pid = os.fork()
if pid == 0:
    signal.alarm(60)  # a hang in the child fails the test instead of blocking it
    warnings.simplefilter("ignore")  # pymongo warns about clients used across fork
    status = 0
    try:
        with pymongo.MongoClient(settings["uri"]) as child_client, \\
                ClientEncryption(providers, namespace, child_client) as child_ce:
            use(child_ce, "child")
            assert child_ce.decrypt(cached) == "before fork"
        print("child: new ClientEncryption works")
    except BaseException as exc:
        print(f"child: new ClientEncryption failed: {type(exc).__name__}: {exc}")
        status = 1
    # The inherited objects: work, or fail with a clear error (never crash or hang).
    try:
        assert parent_ce.decrypt(cached) == "before fork"
        use(parent_ce, "inherited")
        print("child: inherited ClientEncryption works")
    except (MongoCryptError, pymongo.errors.PyMongoError) as exc:
        print(f"child: inherited ClientEncryption failed clearly: {type(exc).__name__}: {exc}")
    sys.stdout.flush()
    os._exit(status)
_, status = os.waitpid(pid, 0)
print("parent: child exit status", os.waitstatus_to_exitcode(status))
use(parent_ce, "parent after fork")
print("parent: still works")
parent_ce.close()
client.close()
sys.exit(os.waitstatus_to_exitcode(status))
"""


def test_fork_after_use(mongodb_uri: str, database: str, tmp_path: Path) -> None:
    script = tmp_path / "fork.py"
    script.write_text(textwrap.dedent(_FORK_SCRIPT))
    settings = {"uri": mongodb_uri, "key": os.urandom(96).hex(), "namespace": f"{database}.keys"}
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(settings)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "child: new ClientEncryption works" in output
    assert "child: inherited ClientEncryption" in output  # worked or failed clearly
    assert "parent: still works" in output


# -- close() then use ------------------------------------------------------------------------


def test_engine_objects_refuse_use_after_close() -> None:
    options = MongoCryptOptions({"local": {"key": os.urandom(96)}}, bypass_encryption=True)
    crypt = MongoCrypt(options)
    crypt.close()
    crypt.close()  # idempotent
    with pytest.raises(MongoCryptClosedError, match="handle is closed"):
        crypt.explicit_decryption_context(v(1))
    with pytest.raises(MongoCryptClosedError):
        crypt.crypt_shared_lib_version  # noqa: B018

    explicit = ExplicitEncrypter(InMemoryIO(), options)
    key_id = explicit.create_data_key("local")
    ciphertext = explicit.encrypt(v("x"), RANDOM, key_id=key_id)
    explicit.close()
    for call in (
        lambda: explicit.encrypt(v("x"), RANDOM, key_id=key_id),
        lambda: explicit.decrypt(ciphertext),
        lambda: explicit.create_data_key("local"),
        lambda: explicit.rewrap_many_data_key({}),
    ):
        with pytest.raises(MongoCryptClosedError):
            call()

    auto = AutoEncrypter(InMemoryIO(), MongoCryptOptions({"local": {"key": os.urandom(96)}}))
    auto.close()
    with pytest.raises(MongoCryptClosedError):
        auto.decrypt(bson.encode({"ok": 1}))

    crypt = MongoCrypt(options)
    context = crypt.explicit_encryption_context(
        v(1), ExplicitEncryptOptions(RANDOM, key_id=bytes(16))
    )
    context.close()
    context.close()
    for use in (lambda: context.state, context.mongo_operation, context.finish):
        with pytest.raises(MongoCryptClosedError, match="context is closed"):
            use()
    crypt.close()


def test_client_encryption_refuses_use_after_close(mongodb_uri: str, database: str) -> None:
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        ce = ClientEncryption({"local": {"key": os.urandom(96)}}, f"{database}.keys", client)
        key_id = ce.create_data_key("local")
        ciphertext = ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
        ce.close()
        ce.close()
        for call in (
            lambda: ce.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=key_id)),
            lambda: ce.decrypt(ciphertext),
            lambda: ce.create_data_key("local"),
            lambda: ce.rewrap_many_data_key({}),
        ):
            with pytest.raises(MongoCryptClosedError, match="closed"):
                call()
        # Key-vault management needs no handle: the key vault client is the caller's.
        assert present(ce.get_key(key_id))["_id"] == key_id

    async def async_scenario() -> None:
        client: pymongo.AsyncMongoClient[Any] = pymongo.AsyncMongoClient(mongodb_uri)
        ace = AsyncClientEncryption({"local": {"key": os.urandom(96)}}, f"{database}.keys", client)
        key_id = await ace.create_data_key("local")
        await ace.close()
        with pytest.raises(MongoCryptClosedError):
            await ace.encrypt("x", EncryptOpts(Algorithm.RANDOM, key_id=key_id))
        await client.close()

    asyncio.run(async_scenario())


def test_close_while_other_threads_are_mid_operation(mongodb_uri: str, database: str) -> None:
    """Operations in flight when close() is called finish (or fail closed); every later one
    raises MongoCryptClosedError; no native object outlives the operations."""
    import gc

    gc.collect()
    baseline = live_objects()
    errors: list[BaseException] = []
    outcomes: Counter[str] = Counter()
    with pymongo.MongoClient[Any](mongodb_uri) as client:
        ce = ClientEncryption({"local": {"key": os.urandom(96)}}, f"{database}.keys", client)
        key_id = ce.create_data_key("local")
        start = threading.Barrier(5)

        def work() -> None:
            start.wait()
            deadline, i = time.monotonic() + 5, 0
            while time.monotonic() < deadline and outcomes["closed"] < 20:
                i += 1
                try:
                    value = f"v{i}"
                    assert (
                        ce.decrypt(ce.encrypt(value, EncryptOpts(Algorithm.RANDOM, key_id=key_id)))
                        == value
                    )
                    outcomes["ok"] += 1
                except MongoCryptClosedError:
                    outcomes["closed"] += 1
                except BaseException as exc:
                    errors.append(exc)
                    return

        workers = [threading.Thread(target=work) for _ in range(4)]
        for worker in workers:
            worker.start()
        start.wait()
        time.sleep(0.2)
        ce.close()
        for worker in workers:
            worker.join(60)
    assert not errors, errors[0]
    assert outcomes["closed"] > 0, outcomes
    gc.collect()
    assert live_objects() == baseline


# -- interpreter shutdown --------------------------------------------------------------------

_SHUTDOWN_SCRIPT = """
import asyncio, json, os, sys
import bson, pymongo
from mongocrypt import (Algorithm, AsyncClientEncryption, ClientEncryption, DataKeyOpts,
                        EncryptOpts, RewrapManyDataKeyOpts)
from mongocrypt.auto_encryption import AutoEncryptionOpts
from mongocrypt.dropin.synchronous import ExplicitEncrypter
from mongocrypt.engine import ExplicitEncryptOptions, MongoCryptOptions
from mongocrypt.io.memory import InMemoryIO

settings = json.loads(sys.argv[1])
providers = {
    "local": {"key": os.urandom(96)},
    "aws": {"accessKeyId": "a", "secretAccessKey": "b"},
}
tls = {"aws": {"tlsCAFile": settings["ca"]}}
master_key = {"region": "us-east-1", "key": "arn:aws:kms:us-east-1:1:key/k",
              "endpoint": settings["kms"]}
ns = settings["namespace"]

# Everything below is left open on purpose: no close(), no context managers.
client = pymongo.MongoClient(settings["uri"])
ce = ClientEncryption(providers, ns, client, kms_tls_options=tls)
ids = [ce.create_data_key("aws", DataKeyOpts(master_key)) for _ in range(3)]
ce.rewrap_many_data_key({}, RewrapManyDataKeyOpts("aws", master_key))  # KMS thread pool
secret = ce.encrypt("left open", EncryptOpts(Algorithm.RANDOM, key_id=ids[0]))
client[ns.split(".")[0]].people.insert_one({"_id": 1, "v": secret})
opts = AutoEncryptionOpts(providers, ns, bypass_auto_encryption=True, kms_tls_options=tls)
reader = pymongo.MongoClient(settings["uri"], auto_encryption_opts=opts)
assert reader[ns.split(".")[0]].people.find_one()["v"] == "left open"
engine = ExplicitEncrypter(InMemoryIO(), MongoCryptOptions(providers, bypass_encryption=True))
key = engine.create_data_key("local")
open_context = engine.mongocrypt.explicit_encryption_context(
    bson.encode({"v": 1}),
    ExplicitEncryptOptions("AEAD_AES_256_CBC_HMAC_SHA_512-Random", key_id=bytes(key)))

async def leave_async_open():
    aclient = pymongo.AsyncMongoClient(settings["uri"])
    ace = AsyncClientEncryption(providers, ns, aclient, kms_tls_options=tls)
    await ace.create_data_key("aws", DataKeyOpts(master_key))
    return aclient, ace

async_objects = asyncio.run(leave_async_open())
print("done")
"""


def test_interpreter_shutdown_with_everything_open(
    mongodb_uri: str, database: str, tls: Any, cloud_kms: Any, tmp_path: Path
) -> None:
    script = tmp_path / "shutdown.py"
    script.write_text(textwrap.dedent(_SHUTDOWN_SCRIPT))
    settings = {
        "uri": mongodb_uri,
        "namespace": f"{database}.keys",
        "ca": str(tls.ca),
        "kms": cloud_kms.endpoint,
    }
    done = subprocess.run(
        [sys.executable, str(script), json.dumps(settings)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert done.stderr == ""


def test_interpreter_shutdown_mid_kms_request(tmp_path: Path, black_hole: str) -> None:
    """A daemon thread stuck in a KMS request when the interpreter exits: no error output."""
    script = tmp_path / "stuck.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import threading, time
            from mongocrypt.dropin.synchronous import ExplicitEncrypter
            from mongocrypt.engine import MongoCryptOptions
            from mongocrypt.io.kms import KmsTransport
            from mongocrypt.io.memory import InMemoryIO

            class Io(InMemoryIO):
                transport = KmsTransport()
                def kms_request(self, kms_context):
                    self.transport.attempt(kms_context)

            providers = {{"aws": {{"accessKeyId": "a", "secretAccessKey": "b"}}}}
            engine = ExplicitEncrypter(Io(), MongoCryptOptions(providers, bypass_encryption=True))
            key = {{"region": "us-east-1", "key": "arn:aws:kms:us-east-1:1:key/k",
                   "endpoint": "{black_hole}"}}
            threading.Thread(target=engine.create_data_key, args=("aws", key), daemon=True).start()
            time.sleep(0.5)
            print("exiting")
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "exiting"
    assert done.stderr == ""
