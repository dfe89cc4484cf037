"""The smart speaker: serves one recognizer over MQTT, answering every request it receives.

:class:`DeviceServer` connects to a broker with a persistent session and a retained last-will
``offline`` status, publishes a retained ``online`` status (model id, profile, output policy,
limits), and subscribes to every client's request topic. The MQTT network thread only checks
the cheap parts of a request (rate limit, framing, header) and queues it; one worker thread
decodes audio, runs the recognizer, hardens the answer and publishes it on the sender's
response topic. Every failure becomes an error answer with a distinct code
(:class:`device_sim.contract.ErrorCode`); nothing a client sends stops the device. paho
reconnects by itself after a broker restart, and QoS 1 answers queued while disconnected are
sent when the connection is back.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from device_sim.acl import device_username
from device_sim.audio_input import decode_audio
from device_sim.collect import KaldiCollector
from device_sim.contract import (
    DEFAULT_LIMITS,
    QOS,
    SCHEMA_VERSION,
    ErrorCode,
    Limits,
    ProtocolError,
    client_id_from_request_topic,
    error_answer,
    parse_header,
    peek_correlation,
    request_subscription,
    response_topic,
    split_frame,
    status_topic,
)
from device_sim.ratelimit import RateLimiter
from device_sim.transport import connect_mqtt
from models.asr.recognizer import RecognizerInputError
from models.privacy.serving import OutputPolicy, parse_output_policy

log = logging.getLogger(__name__)


@dataclass
class _Job:
    client_id: str
    correlation: str
    header: dict
    audio: bytes
    received: float  # time.monotonic() at arrival


class DeviceServer:
    """A recognizer behind MQTT.

    Parameters
    ----------
    recognizer : a loaded :class:`models.asr.recognizer.Recognizer` (already fitted to its profile).
    device_id : the device's id (its topics are ``voice/<device_id>/...``).
    broker : ``mqtt://HOST:PORT``.
    profile_report : what :func:`device_sim.profiles.apply_profile` returned (put in ``status``).
    output : output policy spec (:func:`models.privacy.serving.parse_output_policy`: ``full``,
        ``topk:k=K``, ``rounding:decimals=D`` or ``label_only``).
    rate_limiter : per-client token buckets, or ``None`` for no limit.
    collect_dir : Kaldi data dir to keep received audio in, or ``None``.
    username, password : broker credentials (the ACL's device user is ``device-<device_id>``).
    limits : what requests may be.
    protocol : ``auto``, ``5`` or ``3.1.1``.
    queue_size : requests waiting for the worker before new ones are answered ``busy``.
    """

    def __init__(
        self,
        recognizer,
        device_id: str,
        broker: str,
        *,
        profile_report: dict | None = None,
        output: str = "full",
        rate_limiter: RateLimiter | None = None,
        collect_dir=None,
        username: str | None = None,
        password: str | None = None,
        limits: Limits = DEFAULT_LIMITS,
        protocol: str = "auto",
        queue_size: int = 64,
    ):
        self.recognizer = recognizer
        self.device_id = device_id
        self.broker = broker
        self.profile_report = dict(profile_report or {})
        self.output: OutputPolicy = parse_output_policy(output)
        self.rate_limiter = rate_limiter
        self.collector = KaldiCollector(collect_dir) if collect_dir is not None else None
        self.username = username
        self.password = password
        self.limits = limits
        self.protocol = protocol
        self.stats: Counter[str] = Counter()
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._client: mqtt.Client | None = None
        self._is_v5 = False
        self._worker: threading.Thread | None = None
        self._stats_lock = threading.Lock()
        self._subscribed = threading.Event()
        self._sub_mid: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def status(self, state: str) -> dict:
        """The status message for ``state`` (``online`` or ``offline``)."""
        doc = {"state": state, "device_id": self.device_id, "schema_version": SCHEMA_VERSION}
        if state == "online":
            doc |= {
                "model_id": self.recognizer.model_id,
                "profile": self.profile_report,
                "output": self.output.spec,
                "rate_limit": None
                if self.rate_limiter is None
                else {"per_s": self.rate_limiter.rate_per_s, "burst": self.rate_limiter.burst},
                "collecting": self.collector is not None,
                "limits": self.limits.to_dict(),
            }
        return doc

    def start(self) -> DeviceServer:
        """Start the worker, connect, subscribe and announce ``online``."""
        self._worker = threading.Thread(
            target=self._work, name=f"device-{self.device_id}", daemon=True
        )
        self._worker.start()
        offline = json.dumps(self.status("offline")).encode()
        self._client, version = connect_mqtt(
            self.broker,
            device_username(self.device_id),
            protocol=self.protocol,
            username=self.username,
            password=self.password,
            clean=False,
            will=(status_topic(self.device_id), offline),
            on_connect=self._on_connect,
            on_message=self._on_message,
        )
        self._is_v5 = version == mqtt.MQTTv5
        if not self._subscribed.wait(10):
            self.stop()
            raise ConnectionError(
                f"device {self.device_id}: broker did not acknowledge the request subscription"
            )
        log.info(
            "device %s serving model %s on %s (MQTT %s)",
            self.device_id,
            self.recognizer.model_id,
            self.broker,
            "5" if self._is_v5 else "3.1.1",
        )
        return self

    def stop(self) -> None:
        """Publish ``offline``, finish queued work, disconnect."""
        if self._client is not None:
            info = self._client.publish(
                status_topic(self.device_id),
                json.dumps(self.status("offline")),
                qos=QOS,
                retain=True,
            )
            try:
                info.wait_for_publish(timeout=3)
            except RuntimeError:  # not connected: the broker publishes the last will instead
                pass
        if self._worker is not None:
            self._jobs.put(None)
            self._worker.join(30)
            self._worker = None
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
        log.info("device %s stopped: %s", self.device_id, dict(self.stats))

    def __enter__(self) -> DeviceServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- MQTT callbacks (network thread) -----------------------------------------------------
    def _on_connect(self, client: mqtt.Client, is_v5: bool) -> None:
        client.on_subscribe = self._on_subscribe
        _, self._sub_mid = client.subscribe(request_subscription(self.device_id), qos=QOS)
        client.publish(
            status_topic(self.device_id), json.dumps(self.status("online")), qos=QOS, retain=True
        )

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        if mid == self._sub_mid and not any(rc.is_failure for rc in reason_codes):
            self._subscribed.set()
        elif mid == self._sub_mid:
            log.error(
                "device %s: broker refused the request subscription %s",
                self.device_id,
                reason_codes,
            )

    def _on_message(self, client: mqtt.Client, userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            client_id = client_id_from_request_topic(msg.topic)
        except ValueError as e:  # no reply topic to answer on: dropped (and acknowledged)
            log.warning("request dropped: %s", e)
            self._count("dropped:bad_topic")
            return
        corr = _v5_correlation(msg)
        try:
            if self.rate_limiter is not None and not self.rate_limiter.allow(client_id):
                wait = self.rate_limiter.retry_after_s(client_id)
                raise ProtocolError(
                    ErrorCode.RATE_LIMITED, f"query budget spent; retry in {wait:.1f} s"
                )
            head, audio = split_frame(msg.payload, self.limits)
            header = parse_header(head, expected_reply_to=response_topic(self.device_id, client_id))
            corr = header["correlation"]
            self._jobs.put_nowait(_Job(client_id, corr, header, audio, time.monotonic()))
        except ProtocolError as e:
            self._answer_error(client_id, e.code, e.message, corr or peek_correlation(msg.payload))
        except queue.Full:
            self._answer_error(
                client_id, ErrorCode.BUSY, "request queue full; try again later", corr
            )
        except Exception as e:  # an exception here would stop paho's network thread
            log.exception("request from %s could not be checked", client_id)
            self._answer_error(client_id, ErrorCode.INTERNAL, f"{type(e).__name__}: {e}", corr)

    # -- worker thread -----------------------------------------------------------------------
    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._answer(job)
            except ProtocolError as e:
                self._answer_error(job.client_id, e.code, e.message, job.correlation)
            except RecognizerInputError as e:
                self._answer_error(job.client_id, ErrorCode(e.code), str(e), job.correlation)
            except Exception as e:  # the device keeps serving whatever happens
                log.exception("request %s from %s failed", job.correlation, job.client_id)
                self._answer_error(
                    job.client_id, ErrorCode.INTERNAL, f"{type(e).__name__}: {e}", job.correlation
                )

    def _answer(self, job: _Job) -> None:
        samples = decode_audio(job.audio, job.header["sample_rate"], self.limits)  # (n,) float32
        options = job.header["options"]
        hyp = self.recognizer.transcribe(
            samples, self.limits.sample_rate, top_k=self.output.cap_top_k(options.get("top_k"))
        )
        answer = {
            "schema_version": SCHEMA_VERSION,
            "correlation": job.correlation,
            "model_id": self.recognizer.model_id,
        }
        answer |= hyp.to_dict()
        answer["latency_ms"] = round(1000.0 * (time.monotonic() - job.received), 3)
        self._publish(job.client_id, self.output.harden_answer(answer), job.correlation)
        self._count("answered")
        if self.collector is not None:
            self._collect(job, samples, hyp.phones, options.get("text"))

    def _collect(self, job: _Job, samples: np.ndarray, phones: list[str], text: str | None) -> None:
        utt_id = self.collector.add(job.client_id, samples, self.limits.sample_rate, phones, text)
        if utt_id is None:
            log.info(
                "collect: %s from %s not kept (silence, no text)", job.correlation, job.client_id
            )
            self._count("collect_skipped_silence")
        else:
            self._count("collected")

    def _answer_error(
        self, client_id: str, code: ErrorCode, message: str, corr: str | None
    ) -> None:
        log.info("error %s to %s (%s): %s", code, client_id, corr, message)
        self._count(f"error:{code}")
        self._publish(client_id, error_answer(code, message, corr), corr)

    def _publish(self, client_id: str, answer: dict, corr: str | None) -> None:
        """Send an answer; one that cannot be sent is logged and dropped, never raised into
        paho's network thread or the worker (either would stop the device answering)."""
        try:
            props = None
            if self._is_v5 and corr is not None:
                props = Properties(PacketTypes.PUBLISH)
                props.CorrelationData = corr.encode("utf-8", "replace")
            topic = response_topic(self.device_id, client_id)
            self._client.publish(topic, json.dumps(answer), qos=QOS, properties=props)
        except Exception:
            log.exception("answer to %s (%s) could not be sent; dropped", client_id, corr)
            self._count("dropped:unsendable")

    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1


def _v5_correlation(msg: mqtt.MQTTMessage) -> str | None:
    """The MQTT v5 ``CorrelationData`` of a request, when it has one and it is text."""
    data = getattr(getattr(msg, "properties", None), "CorrelationData", None)
    if not data:
        return None
    try:
        return bytes(data).decode("utf-8")[:128]
    except UnicodeDecodeError:
        return None


def serve_device(
    model: str,
    device_id: str,
    *,
    broker: str | None = None,
    broker_kind: str = "auto",
    profile: str = "host",
    quantize: bool | None = None,
    username: str | None = None,
    password: str | None = None,
    collect: str | None = None,
    output: str = "full",
    rate_limit: str | None = None,
    protocol: str = "auto",
    stop: threading.Event | None = None,
    announce=print,
) -> Counter[str]:
    """Load a checkpoint onto a profile and serve it until ``stop`` is set; returns the counters.

    Parameters
    ----------
    model : recognizer checkpoint directory.
    device_id : the device's id.
    broker : ``mqtt://HOST:PORT``; ``None`` starts a private broker (see ``broker_kind``).
    broker_kind : ``auto`` (mosquitto if installed, else amqtt), ``mosquitto`` or ``amqtt``;
        used only without ``broker``.
    profile : device profile name (:data:`device_sim.profiles.PROFILES`).
    quantize : override the profile's int8 quantization (``None``: the profile decides).
    username, password : broker credentials.
    collect : Kaldi data dir to keep received audio in (collection mode).
    output : output policy spec (as for :class:`DeviceServer`).
    rate_limit : per-client limit such as ``10/min`` or ``2/s:5``; ``None`` for none.
    protocol : MQTT version, ``auto``, ``5`` or ``3.1.1``.
    stop : event that ends serving (the CLI sets it on SIGINT/SIGTERM).
    announce : where the human-readable start lines go.
    """
    from device_sim.brokers import start_local_broker
    from device_sim.profiles import apply_profile, get_profile
    from device_sim.ratelimit import parse_rate_limit
    from models.asr.recognizer import load_recognizer

    device_profile = get_profile(profile, quantize=quantize)
    parse_output_policy(output)  # refuse a bad spec before loading anything
    limiter = parse_rate_limit(rate_limit) if rate_limit else None
    recognizer = load_recognizer(model)
    report = apply_profile(recognizer, device_profile)
    announce(
        f"model {recognizer.model_id} on profile {device_profile.name}: "
        f"{report['model_bytes'] / 2**20:.2f} MiB{' (int8)' if report['quantized'] else ''}"
    )
    local = None
    if broker is None:
        local = start_local_broker(broker_kind)
        broker = local.url
        announce(f"started private {local.kind} broker at {broker}")
    stop = stop or threading.Event()
    server = DeviceServer(
        recognizer,
        device_id,
        broker,
        profile_report=report
        | {"threads": device_profile.threads, "description": device_profile.description},
        output=output,
        rate_limiter=limiter,
        collect_dir=collect,
        username=username,
        password=password,
        protocol=protocol,
    )
    try:
        server.start()
        announce(
            f"device {device_id} online at {broker}; "
            f"requests on voice/{device_id}/asr/request/<client-id>"
        )
        stop.wait()
    finally:
        server.stop()
        if local is not None:
            local.stop()
    return server.stats
