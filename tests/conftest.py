"""Shared test configuration: one event-loop matrix for every async test.

Every test marked ``@pytest.mark.asyncio`` runs once per loop in ``streamsim.clock.LOOPS``
(``asyncio`` and ``uvloop``), with ids ``[asyncio]`` and ``[uvloop]``. The loops come from
the same factories the product uses (``streamsim.clock.loop_factory``), through the
``pytest_asyncio_loop_factories`` hook of pytest-asyncio >= 1.4: no event-loop policy is
touched, so nothing here is deprecated on Python 3.11 to 3.14. A loop that is not
installed (uvloop on Windows) is reported as skipped, with the install hint as reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from streamsim.clock import LOOPS, loop_factory
from streamsim.errors import ConfigError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Mapping


def _factory_or_skip(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The factory for loop ``name``, or one that skips the test when it is missing.

    The parameter stays in the matrix either way, so a machine without uvloop shows
    ``SKIPPED [uvloop]`` instead of silently running half the matrix.
    """
    try:
        return loop_factory(name)
    except ConfigError as exc:
        reason = str(exc)

    def unavailable() -> asyncio.AbstractEventLoop:
        pytest.skip(reason)

    return unavailable


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Parametrize every asyncio test over the loop matrix."""
    return {name: _factory_or_skip(name) for name in LOOPS}
