"""Connecting to an MQTT broker: used by both the device (:mod:`device_sim.server`) and the
client (:mod:`device_sim.client`).

:func:`connect_mqtt` starts a paho client (callback API v2) with MQTT v5 or 3.1.1, falling
back from v5 to 3.1.1 in ``auto`` mode when the broker refuses it (amqtt 0.12 does); paho
reconnects by itself after a broker restart. What goes over the connection is
:mod:`device_sim.contract`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device_sim.contract import QOS

log = logging.getLogger(__name__)

#: Default MQTT port when a broker URL names none.
DEFAULT_PORT = 1883
#: Seconds the ``auto`` protocol choice waits for a v5 CONNACK before trying MQTT 3.1.1.
AUTO_V5_CONNACK_S = 2.0


@dataclass(frozen=True)
class BrokerAddress:
    """Host and port of a broker parsed from ``mqtt://HOST[:PORT]``."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://HOST[:PORT]`` (or ``HOST:PORT``); credentials go in their own options."""
    parsed = urlparse(url if "://" in url else f"mqtt://{url}")
    if parsed.scheme not in ("mqtt", "tcp") or not parsed.hostname:
        raise ValueError(f"broker URL {url!r} must look like mqtt://HOST:PORT")
    if parsed.username or parsed.password:
        raise ValueError("put broker credentials in --username/--password, not in the URL")
    return BrokerAddress(parsed.hostname, parsed.port or DEFAULT_PORT)


class _ConnectFailed(ConnectionError):
    def __init__(self, reason: str, unsupported: bool):
        super().__init__(reason)
        self.unsupported = unsupported


def connect_mqtt(
    broker: str | BrokerAddress,
    client_id: str,
    *,
    protocol: str = "auto",
    username: str | None = None,
    password: str | None = None,
    clean: bool = True,
    will: tuple[str, bytes] | None = None,
    on_connect=None,
    on_message=None,
    timeout_s: float = 10.0,
) -> tuple[mqtt.Client, int]:
    """Connect a paho client (callback API v2) and start its network thread.

    Parameters
    ----------
    broker : ``mqtt://HOST:PORT`` or a parsed address.
    client_id : MQTT client id (also the last level of this client's topics).
    protocol : ``"5"``, ``"3.1.1"`` or ``"auto"`` (try v5, fall back to 3.1.1 when the broker
        refuses it or sends no CONNACK within :data:`AUTO_V5_CONNACK_S`, as amqtt 0.12 does).
    clean : ``False`` asks for a persistent session (QoS 1 messages survive a reconnect).
    will : ``(topic, payload)`` published retained by the broker if this client vanishes.
    on_connect : ``f(client, is_v5)`` called after every (re)connection, e.g. to subscribe.
    on_message : paho ``on_message`` callback.
    timeout_s : seconds to wait for CONNACK.

    Returns
    -------
    (client, protocol) with ``protocol`` ``mqtt.MQTTv5`` or ``mqtt.MQTTv311``. paho reconnects
    by itself after a broker restart.
    """
    addr = broker if isinstance(broker, BrokerAddress) else parse_broker_url(broker)
    choices = {"auto": [mqtt.MQTTv5, mqtt.MQTTv311], "5": [mqtt.MQTTv5], "3.1.1": [mqtt.MQTTv311]}
    if protocol not in choices:
        raise ValueError(f"protocol must be one of {sorted(choices)}, got {protocol!r}")
    last: _ConnectFailed | None = None
    versions = choices[protocol]
    for version in versions:
        # amqtt never answers a v5 CONNECT that carries a will: in auto mode the v5 attempt gets
        # a short CONNACK wait (a reachable broker answers in milliseconds); 3.1.1 works anyway
        wait_s = (
            min(timeout_s, AUTO_V5_CONNACK_S)
            if len(versions) > 1 and version == mqtt.MQTTv5
            else timeout_s
        )
        try:
            client = _connect_once(
                addr,
                client_id,
                version,
                username,
                password,
                clean,
                will,
                on_connect,
                on_message,
                wait_s,
            )
            return client, version
        except _ConnectFailed as e:
            last = e
            if not e.unsupported:
                break
    raise ConnectionError(f"cannot connect to {addr.url} as {client_id!r}: {last}")


def _connect_once(
    addr, client_id, version, username, password, clean, will, on_connect, on_message, timeout_s
):
    """One attempt with MQTT ``version``: the started client; raises :class:`_ConnectFailed`."""
    is_v5 = version == mqtt.MQTTv5
    client = _new_client(client_id, version, username, password, clean, will)
    first = threading.Event()
    outcome: dict = {}
    client.on_connect, client.on_disconnect = _connection_callbacks(
        client_id, addr, is_v5, on_connect, first, outcome
    )
    if on_message is not None:
        client.on_message = on_message
    try:
        client.connect(
            addr.host,
            addr.port,
            keepalive=30,
            clean_start=clean if is_v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=_connect_properties(is_v5, clean),
        )
    except OSError as e:
        raise _ConnectFailed(f"{addr.url}: {e}", unsupported=False) from e
    client.loop_start()
    _await_connack(client, first, outcome, timeout_s, is_v5)
    return client


def _new_client(client_id, version, username, password, clean, will) -> mqtt.Client:
    """A paho client (callback API v2) with its reconnect delays, credentials and will set."""
    is_v5 = version == mqtt.MQTTv5
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=version,
        clean_session=None if is_v5 else clean,
    )
    client.reconnect_delay_set(min_delay=1, max_delay=4)
    if username is not None:
        client.username_pw_set(username, password)
    if will is not None:
        client.will_set(will[0], will[1], qos=QOS, retain=True)
    return client


def _connection_callbacks(client_id, addr, is_v5, on_connect, first, outcome):
    """paho ``(on_connect, on_disconnect)`` callbacks of one connection attempt.

    The first CONNACK or disconnection sets ``first``, a failure noted as ``outcome["error"]``;
    later ones are logged (paho reconnects by itself). ``on_connect(client, is_v5)`` runs after
    every successful connection.
    """

    def _on_connect(c, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            if not first.is_set():
                outcome["error"] = str(reason_code)
                first.set()
            log.warning("%s: connection refused: %s", client_id, reason_code)
            return
        if on_connect is not None:
            on_connect(c, is_v5)
        if not first.is_set():
            first.set()
        else:
            log.info("%s: reconnected to %s", client_id, addr.url)

    def _on_disconnect(c, userdata, flags, reason_code, properties):
        if not first.is_set():
            outcome["error"] = f"disconnected before CONNACK ({reason_code})"
            first.set()
        elif reason_code != 0:
            log.warning("%s: lost connection (%s); paho will reconnect", client_id, reason_code)

    return _on_connect, _on_disconnect


def _connect_properties(is_v5: bool, clean: bool) -> Properties | None:
    """CONNECT properties: a one-hour session expiry for a persistent v5 session, else none."""
    if not is_v5 or clean:
        return None
    connect_props = Properties(PacketTypes.CONNECT)
    connect_props.SessionExpiryInterval = 3600
    return connect_props


def _await_connack(client, first, outcome, timeout_s, is_v5) -> None:
    """Wait for the first CONNACK; on a refusal or timeout stop ``client``, raise _ConnectFailed."""
    if not first.wait(timeout_s) or "error" in outcome:
        client.loop_stop()
        client.disconnect()
        reason = outcome.get("error", f"no CONNACK within {timeout_s} s")
        # amqtt answers a v5 CONNECT with "Unsupported protocol version" or, when the CONNECT
        # carries v5 properties, by closing the connection: both mean "try 3.1.1"
        refused_v5 = "Unsupported protocol" in reason or "CONNACK" in reason
        raise _ConnectFailed(reason, unsupported=is_v5 and refused_v5)
