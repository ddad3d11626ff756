"""The event model producers hand to a broker through the public API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ("Event",)


class Event(BaseModel):
    """One event. Validated on construction; the broker checks ``priority < levels``.

    The scenario runner uses a lighter internal record on its hot path (a pydantic
    model costs about 1.4 us to build, five times a slotted object); anything with
    ``priority`` and ``deadline_ns`` attributes can go through a ``Broker``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    priority: int = Field(ge=0, description="0 is most urgent")
    created_ns: int = Field(description="clock time the event was created, ns")
    intended_ns: int | None = Field(default=None, description="scheduled send time (open loop), ns")
    deadline_ns: int | None = Field(default=None, description="clock time after which it expires, ns")
    payload: Any = None
