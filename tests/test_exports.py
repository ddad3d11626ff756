from __future__ import annotations

import importlib.util

import streamsim


def test_every_name_in_all_is_importable() -> None:
    for name in streamsim.__all__:
        assert getattr(streamsim, name) is not None, name


def test_all_is_sorted_and_unique() -> None:
    assert list(streamsim.__all__) == sorted(set(streamsim.__all__))


def test_python_dash_m_entry_point_exists() -> None:
    assert importlib.util.find_spec("streamsim.__main__") is not None
