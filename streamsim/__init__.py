"""streamsim: a bounded asyncio priority broker, and the harness that measures how
any configuration of it behaves."""

from __future__ import annotations

from .broker import Broker, BrokerStatistics
from .clock import VirtualEventLoop, loop_factory
from .config import Scenario, Sweep, load_sweep, parse_scenario
from .errors import (
    BrokerClosed,
    BrokerFull,
    ConfigError,
    IncompatibleReports,
    InvariantViolation,
    StreamsimError,
)
from .events import Event
from .policies import Overflow
from .report import Report, read_report
from .runner import RunResult, run_scenario

__all__ = (
    "Broker",
    "BrokerClosed",
    "BrokerFull",
    "BrokerStatistics",
    "ConfigError",
    "Event",
    "IncompatibleReports",
    "InvariantViolation",
    "Overflow",
    "Report",
    "RunResult",
    "Scenario",
    "StreamsimError",
    "Sweep",
    "VirtualEventLoop",
    "load_sweep",
    "loop_factory",
    "parse_scenario",
    "read_report",
    "run_scenario",
)
