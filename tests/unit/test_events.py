"""events.py: the publisher, listeners, the event types, and listeners that fail."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from mongocrypt.events import (
    EncryptionEventListener,
    Event,
    EventPublisher,
    KeyVaultOperationFailed,
    KeyVaultOperationStarted,
    KeyVaultOperationSucceeded,
    KmsRequestFailed,
    KmsRequestStarted,
    KmsRequestSucceeded,
)

EVENTS: list[tuple[Event, str]] = [
    (KmsRequestStarted("aws", "kms.example:443", 1), "kms_request_started"),
    (KmsRequestSucceeded("aws", "kms.example:443", 1, 0.5), "kms_request_succeeded"),
    (
        KmsRequestFailed("kmip:backup", "localhost:5696", 2, 0.1, "OSError: reset", True),
        "kms_request_failed",
    ),
    (KeyVaultOperationStarted("find", "keyvault.datakeys"), "key_vault_operation_started"),
    (
        KeyVaultOperationSucceeded("insert", "keyvault.datakeys", 0.2, 1),
        "key_vault_operation_succeeded",
    ),
    (
        KeyVaultOperationFailed("find", "keyvault.datakeys", 0.3, "KeyVaultError: down"),
        "key_vault_operation_failed",
    ),
]


class Recorder(EncryptionEventListener):
    """Records every event with the name of the method that received it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, object]] = []

    def kms_request_started(self, event: KmsRequestStarted) -> None:
        self.received.append(("kms_request_started", event))

    def kms_request_succeeded(self, event: KmsRequestSucceeded) -> None:
        self.received.append(("kms_request_succeeded", event))

    def kms_request_failed(self, event: KmsRequestFailed) -> None:
        self.received.append(("kms_request_failed", event))

    def key_vault_operation_started(self, event: KeyVaultOperationStarted) -> None:
        self.received.append(("key_vault_operation_started", event))

    def key_vault_operation_succeeded(self, event: KeyVaultOperationSucceeded) -> None:
        self.received.append(("key_vault_operation_succeeded", event))

    def key_vault_operation_failed(self, event: KeyVaultOperationFailed) -> None:
        self.received.append(("key_vault_operation_failed", event))


def test_each_event_reaches_its_method_on_every_listener_in_order() -> None:
    first, second = Recorder(), Recorder()
    publisher = EventPublisher([first, second])
    for event, _ in EVENTS:
        publisher.publish(event)
    expected = [(method, event) for event, method in EVENTS]
    assert first.received == expected
    assert second.received == expected


def test_a_listener_overriding_nothing_receives_everything_silently() -> None:
    publisher = EventPublisher([EncryptionEventListener()])
    for event, _ in EVENTS:
        publisher.publish(event)  # the base class's methods accept every event


def test_the_publisher_is_false_without_listeners() -> None:
    assert not EventPublisher()
    assert not EventPublisher([])
    assert EventPublisher([Recorder()])
    assert isinstance(EventPublisher([Recorder()]).listeners, tuple)


def test_listeners_must_be_encryption_event_listeners() -> None:
    class Duck:
        def kms_request_started(self, event: KmsRequestStarted) -> None:
            pass

    with pytest.raises(TypeError, match="must be EncryptionEventListener instances, not Duck"):
        EventPublisher([Recorder(), Duck()])  # type: ignore[list-item]  # a wrong type on purpose


def test_a_failing_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(EncryptionEventListener):
        def kms_request_started(self, event: KmsRequestStarted) -> None:
            raise RuntimeError("listener bug")

    after = Recorder()
    event = EVENTS[0][0]
    with caplog.at_level(logging.ERROR, logger="mongocrypt.events"):
        EventPublisher([Broken(), after]).publish(event)
    assert after.received == [("kms_request_started", event)]
    (record,) = caplog.records
    assert "failed on KmsRequestStarted" in record.getMessage()
    assert record.exc_info is not None and "listener bug" in str(record.exc_info[1])


def test_events_are_frozen() -> None:
    event = KmsRequestStarted("aws", "kms.example:443", 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.attempt = 2  # type: ignore[misc]  # assigning a frozen field on purpose


def test_events_carry_traffic_fields_only() -> None:
    fields = {f.name for event, _ in EVENTS for f in dataclasses.fields(event)}
    assert fields == {
        "provider",
        "endpoint",
        "attempt",
        "duration",
        "failure",
        "retrying",
        "operation",
        "namespace",
        "documents",
    }
