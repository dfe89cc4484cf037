"""``device-sim serve | query | broker``: run the smart speaker, ask it something, run a broker.

Each command is a thin wrapper: ``serve`` over :func:`device_sim.server.serve_device`,
``query`` over :class:`device_sim.protocol.DeviceClient`, ``broker`` over
:class:`device_sim.brokers.EmbeddedBroker`. ``serve`` and ``broker`` run until SIGINT/SIGTERM.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

import click

from device_sim.profiles import PROFILES
from models.privacy.serving import parse_output_policy

_PROTOCOLS = click.Choice(["auto", "5", "3.1.1"])


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum, frame):
        click.echo(f"received {signal.Signals(signum).name}, shutting down", err=True)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _check_output(ctx, param, value: str) -> str:
    try:
        parse_output_policy(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from e
    return value


@click.command()
@click.option(
    "--model", required=True, type=click.Path(exists=True, file_okay=False), help="Checkpoint dir."
)
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
@click.option(
    "--password", default=None, envvar="DEVICE_SIM_PASSWORD", help="Or $DEVICE_SIM_PASSWORD."
)
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
@click.option(
    "--protocol", type=_PROTOCOLS, default="auto", show_default=True, help="MQTT version."
)
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
@click.option(
    "--password", default=None, envvar="DEVICE_SIM_PASSWORD", help="Or $DEVICE_SIM_PASSWORD."
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds per attempt.",
)
@click.option("--retries", type=int, default=2, show_default=True)
@click.option(
    "--top-k", type=int, default=None, help="Ask for the top-k state posteriors per frame."
)
@click.option("--text", default=None, help="What the audio says (kept by a collecting device).")
@click.option("--protocol", type=_PROTOCOLS, default="auto", show_default=True)
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
    from device_sim.protocol import DeviceClient, DeviceError

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
    try:
        with client:
            answer = client.transcribe_file(audio, options)
    except DeviceError as e:
        click.echo(json.dumps(e.answer, indent=1))
        sys.exit(1)
    except (ConnectionError, TimeoutError, ValueError) as e:
        raise click.ClickException(str(e)) from e
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
