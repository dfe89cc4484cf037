"""``device-sim serve | query | broker``: run the smart speaker, ask it something, run a broker.

Each command is a thin wrapper: ``serve`` over :func:`device_sim.server.serve_device`,
``query`` over :class:`device_sim.client.DeviceClient`, ``broker`` over
:class:`device_sim.brokers.EmbeddedBroker`. ``serve`` and ``broker`` run until SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import click

from common.cli_options import (
    click_errors,
    existing_dir_option,
    retries_option,
    timeout_option,
)
from device_sim.profiles import PROFILES
from models.privacy.serving import parse_output_policy

_password_option = click.option(
    "--password", default=None, envvar="DEVICE_SIM_PASSWORD", help="Or $DEVICE_SIM_PASSWORD."
)


def _protocol_option(help: str | None = None):
    """``--protocol``: the MQTT version to speak, or ``auto``."""
    return click.option(
        "--protocol",
        type=click.Choice(["auto", "5", "3.1.1"]),
        default="auto",
        show_default=True,
        help=help,
    )


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum, frame):
        click.echo(f"received {signal.Signals(signum).name}, shutting down", err=True)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _check_output(ctx, param, value: str) -> str:
    with click_errors(ValueError, kind=click.BadParameter):
        parse_output_policy(value)
    return value


@click.command()
@existing_dir_option("--model", help="Checkpoint dir.")
@click.option("--device-id", required=True, help="Device id: topics are voice/<id>/...")
@click.option("--broker", default=None, help="mqtt://HOST:PORT; omitted: start a private broker.")
@click.option(
    "--broker-kind",
    type=click.Choice(["auto", "mosquitto", "amqtt"]),
    default="auto",
    show_default=True,
    help="Private broker to start without --broker (auto: mosquitto if installed).",
)
@click.option("--profile", type=click.Choice(list(PROFILES)), default="host", show_default=True)
@click.option(
    "--quantize/--no-quantize", default=None, help="Override the profile's int8 quantization."
)
@click.option(
    "--username", default=None, help="Broker user (the ACL's device user is device-<id>)."
)
@_password_option
@click.option(
    "--collect",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep audio as a Kaldi data dir.",
)
@click.option(
    "--output",
    default="full",
    show_default=True,
    callback=_check_output,
    help="Output policy: full | topk:k=K | rounding:decimals=D | label_only.",
)
@click.option(
    "--rate-limit", default=None, help="Per-client query limit, e.g. 10/min or 2/s:5 (burst)."
)
@_protocol_option("MQTT version.")
@click.option("-v", "--verbose", is_flag=True, help="Log every request.")
def serve(
    model,
    device_id,
    broker,
    broker_kind,
    profile,
    quantize,
    username,
    password,
    collect,
    output,
    rate_limit,
    protocol,
    verbose,
):
    """Serve a recognizer checkpoint as a smart speaker over MQTT until SIGINT/SIGTERM."""
    from device_sim.server import serve_device

    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    stats = serve_device(
        model,
        device_id,
        broker=broker,
        broker_kind=broker_kind,
        profile=profile,
        quantize=quantize,
        username=username,
        password=password,
        collect=collect,
        output=output,
        rate_limit=rate_limit,
        protocol=protocol,
        stop=_stop_on_signals(),
        announce=lambda line: click.echo(line, err=True),
    )
    click.echo(f"served: {json.dumps(dict(stats), sort_keys=True)}", err=True)


@click.command()
@click.option("--device-id", required=True)
@click.option("--broker", required=True, help="mqtt://HOST:PORT")
@click.option("--client-id", default=None, help="MQTT client id (with an ACL: your username).")
@click.option("--username", default=None)
@_password_option
@timeout_option("Seconds per attempt.")
@retries_option
@click.option(
    "--top-k", type=int, default=None, help="Ask for the top-k state posteriors per frame."
)
@click.option("--text", default=None, help="What the audio says (kept by a collecting device).")
@_protocol_option()
@click.argument("audio", type=click.Path(exists=True, dir_okay=False))
def query(
    device_id,
    broker,
    client_id,
    username,
    password,
    timeout_s,
    retries,
    top_k,
    text,
    protocol,
    audio,
):
    """Send AUDIO (WAV/FLAC) to a device and print its JSON answer (exit 1 on an error answer)."""
    from device_sim.client import DeviceClient
    from device_sim.contract import DeviceError

    options = {k: v for k, v in (("top_k", top_k), ("text", text)) if v is not None}
    client = DeviceClient(
        broker,
        device_id,
        client_id=client_id,
        username=username,
        password=password,
        timeout_s=timeout_s,
        retries=retries,
        protocol=protocol,
    )
    with click_errors(ConnectionError, TimeoutError, ValueError):
        try:
            with client:
                answer = client.transcribe_file(audio, options)
        except DeviceError as e:
            click.echo(json.dumps(e.answer, indent=1))
            sys.exit(1)
    click.echo(json.dumps(answer, indent=1))


@click.command()
@click.option("--port", type=int, default=1883, show_default=True, help="TCP port on 127.0.0.1.")
def broker(port):
    """Run the embedded amqtt broker (MQTT 3.1.1, anonymous) on 127.0.0.1 until SIGINT/SIGTERM."""
    from device_sim.brokers import EmbeddedBroker

    stop = _stop_on_signals()
    with EmbeddedBroker(port) as b:
        click.echo(f"amqtt broker listening at {b.url}", err=True)
        stop.wait()
