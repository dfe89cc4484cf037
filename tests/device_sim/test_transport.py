"""Broker connections: URL parsing (no broker needed; connecting is tested with the devices)."""

from __future__ import annotations

import pytest

from device_sim.transport import parse_broker_url


def test_parse_broker_url():
    assert parse_broker_url("mqtt://127.0.0.1:1999").port == 1999
    assert parse_broker_url("localhost").port == 1883
    with pytest.raises(ValueError, match="mqtt://"):
        parse_broker_url("http://x:1")
    with pytest.raises(ValueError, match="username"):
        parse_broker_url("mqtt://u:p@x:1")
