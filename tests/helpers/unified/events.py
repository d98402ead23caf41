"""Command monitoring for client entities, and the ``expectEvents`` assertions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

from pymongo import monitoring

from .matching import UnsupportedFeature, assert_matches

__all__ = ["CommandRecorder", "assert_events"]

CommandEvent = Union[
    monitoring.CommandStartedEvent, monitoring.CommandSucceededEvent, monitoring.CommandFailedEvent
]

#: Commands the Command Logging and Monitoring spec calls sensitive (compared lower-cased).
SENSITIVE = frozenset(
    {
        "authenticate",
        "saslstart",
        "saslcontinue",
        "getnonce",
        "createuser",
        "updateuser",
        "copydbgetnonce",
        "copydbsaslstart",
        "copydb",
    }
)
COMMAND_EVENTS = ("commandStartedEvent", "commandSucceededEvent", "commandFailedEvent")


class CommandRecorder(monitoring.CommandListener):
    """Records the command events a client entity observes, in order.

    Ignored, as the format says: event types not in ``observeEvents``, the commands in
    ``ignoreCommandMonitoringEvents``, ``configureFailPoint``, and sensitive commands (a hello
    carrying speculative authentication is recognized by its redacted command).
    """

    def __init__(
        self,
        observe: Iterable[str],
        ignore: Iterable[str] = (),
        observe_sensitive: bool = False,
    ) -> None:
        self.observe = frozenset(observe)
        unknown = self.observe - set(COMMAND_EVENTS)
        if unknown:
            raise UnsupportedFeature(f"observeEvents {sorted(unknown)}")
        self.ignore = frozenset({"configureFailPoint", *ignore})
        self.observe_sensitive = observe_sensitive
        self.events: list[tuple[str, CommandEvent]] = []
        self.enabled = True
        self._sensitive_requests: set[int] = set()

    def _sensitive(self, event: monitoring.CommandStartedEvent) -> bool:
        name = event.command_name.lower()
        if name in ("hello", "ismaster"):
            return not event.command  # pymongo redacts it when it authenticates speculatively
        return name in SENSITIVE

    def _record(self, kind: str, event: CommandEvent) -> None:
        if not self.enabled or event.command_name in self.ignore:
            return
        if kind == "commandStartedEvent":
            assert isinstance(event, monitoring.CommandStartedEvent)
            if not self.observe_sensitive and self._sensitive(event):
                self._sensitive_requests.add(event.request_id)
                return
        elif event.request_id in self._sensitive_requests:
            return
        if kind in self.observe:
            self.events.append((kind, event))

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self._record("commandStartedEvent", event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._record("commandSucceededEvent", event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._record("commandFailedEvent", event)


def _describe(events: Sequence[tuple[str, CommandEvent]]) -> str:
    return ", ".join(f"{kind}({event.command_name})" for kind, event in events) or "none"


def _assert_event(expected: Mapping[str, Any], kind: str, event: CommandEvent) -> None:
    if len(expected) != 1:
        raise UnsupportedFeature(f"expected event {expected!r} has not exactly one type")
    ((want_kind, fields),) = expected.items()
    assert want_kind == kind, f"{kind}({event.command_name}) observed, {want_kind} expected"
    for field, value in fields.items():
        if field == "command":
            assert isinstance(event, monitoring.CommandStartedEvent)
            assert_matches(value, event.command)
        elif field == "reply":
            assert isinstance(event, monitoring.CommandSucceededEvent)
            assert_matches(value, event.reply)
        elif field == "commandName":
            assert event.command_name == value, f"command {event.command_name}, not {value}"
        elif field == "databaseName":
            assert event.database_name == value, f"database {event.database_name}, not {value}"
        elif field == "hasServiceId":
            assert (event.service_id is not None) == value, f"service id {event.service_id}"
        elif field == "hasServerConnectionId":
            has_id = event.server_connection_id is not None
            assert has_id == value, f"server connection id {event.server_connection_id}"
        else:
            raise UnsupportedFeature(f"{want_kind}.{field}")


def assert_events(
    expected: Mapping[str, Any], observed: Sequence[tuple[str, CommandEvent]]
) -> None:
    """Assert one ``expectedEventsForClient`` object against the events a client observed."""
    if expected.get("eventType", "command") != "command":
        raise UnsupportedFeature(f"eventType {expected['eventType']}")
    wanted = expected["events"]
    if expected.get("ignoreExtraEvents", False):
        observed = observed[: len(wanted)]
    assert len(observed) == len(wanted), (
        f"{len(wanted)} events expected, observed {len(observed)}: {_describe(observed)}"
    )
    for index, (want, (kind, event)) in enumerate(zip(wanted, observed)):
        try:
            _assert_event(want, kind, event)
        except AssertionError as error:
            raise AssertionError(
                f"event {index} of {_describe(observed)} does not match: {error}"
            ) from None
