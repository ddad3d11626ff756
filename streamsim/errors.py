"""The one family of errors streamsim raises on purpose."""

from __future__ import annotations

__all__ = (
    "BrokerClosed",
    "BrokerFull",
    "ConfigError",
    "IncompatibleReports",
    "InvariantViolation",
    "StreamsimError",
)


class StreamsimError(Exception):
    """Base class of every error streamsim raises on purpose."""


class BrokerFull(StreamsimError):
    """Raised by ``put_nowait`` (any policy that would wait) or by ``put`` under the
    ``reject`` policy when the buffer holds ``maxsize`` events.

    The event was not admitted and is counted as rejected; the producer decides
    whether to retry, slow down or give up.
    """


class BrokerClosed(StreamsimError):
    """Raised by ``put`` once ``close()`` was called, including for producers that were
    blocked at that moment, and by ``get`` once the broker is closed and drained.

    A rejected put is counted; stop producing. A consumer seeing it should stop.
    """


class ConfigError(StreamsimError):
    """Raised for an invalid scenario, sweep file, trace or budget, and by the broker for
    invalid arguments (``maxsize < 1``, an event priority outside ``[0, levels)``).

    The message names the field and the bad value; fix the input and rerun.
    """


class IncompatibleReports(StreamsimError):
    """Raised when two reports cannot be compared (different schema version or sweep
    definition). Rerun both sides with the same streamsim and sweep file.
    """


class InvariantViolation(StreamsimError):
    """Raised when a run's per-priority accounting does not add up
    (offered != processed + dropped + rejected + evicted + expired + dead_lettered + abandoned).

    This is a bug in streamsim: report it with the scenario that produced it.
    """
