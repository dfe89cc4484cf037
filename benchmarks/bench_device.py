"""Benchmark of the smart-speaker device: MQTT round trips, profiles, int8 quantization.

1. **Round trips.** For each profile and each broker (a private mosquitto, the embedded amqtt
   broker), ``device-sim serve`` runs as its own process and 1, 4 and 16 concurrent
   :class:`~device_sim.client.DeviceClient` threads each send 3-second utterances. The
   figures are requests/s, p50/p95 round-trip latency, and the ratio of the p50 round trip to
   the same profile's in-process ``Recognizer.transcribe`` time, measured in the same run.
   The serving process's resident memory (VmRSS after loading, VmHWM after the load) is read
   from ``/proc``.
2. **Profiles and quantization.** For each profile, and for float vs int8 at equal thread
   counts, in this process: model bytes, decoding RTF of a 3-second utterance (median of
   ``--rtf-reps``) and PER on utterances of speakers the model never saw.

Without ``--model`` it trains a small recognizer itself on ``--manifest`` (a prepared
synthetic corpus), holding out ``--unseen`` speakers for the PER. Prints tables and appends
a section to ``BENCHMARKS.md``:

    python benchmarks/bench_device.py --manifest /tmp/synth60_prep --work /tmp/bench_device
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from corpora.audio import read_audio
from corpora.manifest import read_manifest
from corpora.phones import fold_48_to_39
from device_sim.client import DeviceClient
from device_sim.contract import encode_audio
from device_sim.launch import serve_in_subprocess
from device_sim.profiles import apply_profile, get_profile
from models.asr.recognizer import load_recognizer
from models.asr.scoring import per, sum_counts
from models.asr.train import train_recognizer

REPO = Path(__file__).resolve().parents[1]
RATE = 16000
DEFAULT_THREADS = torch.get_num_threads()
#: Small and quick to train on two shared cores; the device figures do not need a big model.
BENCH_CONFIG = {
    "network": {"hidden": [512, 512]},
    "training": {"epochs": 4, "realign_iterations": 0},
}


def split_speakers(utts, n_unseen: int, seed: int):
    speakers = sorted({u.speaker for u in utts})
    order = [speakers[i] for i in np.random.default_rng(seed).permutation(len(speakers))]
    unseen = set(order[:n_unseen])
    return [u for u in utts if u.speaker not in unseen], [u for u in utts if u.speaker in unseen]


def get_model(args, utts) -> tuple[Path, list]:
    """The checkpoint to serve and the test utterances (speakers it never trained on)."""
    if args.model is not None:
        trained = set(json.loads((args.model / "data.json").read_text())["speakers"])
        unseen = [u for u in utts if u.speaker not in trained]
        if not unseen:
            raise SystemExit(
                f"{args.manifest}: every speaker was trained on by {args.model}; no PER test set"
            )
        return args.model, unseen
    members, unseen = split_speakers(utts, args.unseen, args.seed)
    out = args.work / "model"
    if not (out / "model.json").exists():
        print(f"training the benchmark model on {len(members)} utterances ...", file=sys.stderr)
        train_recognizer(members, BENCH_CONFIG, seed=args.seed, out_dir=out, progress=True)
    return out, unseen


def three_seconds(utts) -> np.ndarray:
    """The first utterance of at least 3 s, cut to 3.000 s: (48000,) float32."""
    for u in utts:
        x, sr = read_audio(u.path)
        if sr == RATE and len(x) >= 3 * RATE:
            return x[: 3 * RATE]
    raise SystemExit("no utterance of at least 3 s in the manifest")


def time_decode(rec, x: np.ndarray, reps: int) -> float:
    """Median seconds of one in-process ``transcribe`` of ``x`` (after one warm-up)."""
    rec.transcribe(x, RATE)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        rec.transcribe(x, RATE)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def corpus_per(rec, test) -> float:
    results = []
    for u in test:
        x, sr = read_audio(u.path)
        results.append(per(fold_48_to_39(list(u.phones)), rec.transcribe(x, sr).phones39))
    return sum_counts(results)["per"]


def load_profile(model: Path, profile: str, quantize: bool | None = None):
    """Load the checkpoint onto a profile; ``host`` gets torch's default thread count back."""
    torch.set_num_threads(DEFAULT_THREADS)
    rec = load_recognizer(model)
    return rec, apply_profile(rec, get_profile(profile, quantize=quantize))


def rss_mib(pid: int) -> dict:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024  # kB -> MiB
    return fields


def load_test(url: str, audio: bytes, clients: int, requests: int) -> dict:
    """``clients`` threads, each with its own connection, send ``requests`` requests in turn."""

    def user(i: int) -> list[float]:
        with DeviceClient(url, "bench", client_id=f"bench{i}", timeout_s=120, retries=0) as dev:
            dev.request(audio, RATE)  # warm-up, not timed
            out = []
            for _ in range(requests):
                t0 = time.perf_counter()
                answer = dev.request(audio, RATE)
                rtt = time.perf_counter() - t0
                if "error" in answer:
                    raise RuntimeError(f"device error during the benchmark: {answer['error']}")
                out.append(
                    (rtt, rtt - answer["latency_ms"] / 1000)
                )  # (round trip, outside the device)
            return out

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        pairs = [x for chunk in pool.map(user, range(clients)) for x in chunk]
    wall = time.perf_counter() - t0
    lat = [rtt for rtt, _ in pairs]
    return {
        "requests": len(lat),
        "req_per_s": len(lat) / wall,
        "p50_ms": 1000 * float(np.percentile(lat, 50)),
        "p95_ms": 1000 * float(np.percentile(lat, 95)),
        "transport_ms": 1000 * float(np.percentile([t for _, t in pairs], 50)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--manifest", type=Path, required=True, help="prepared synthetic corpus")
    ap.add_argument("--model", type=Path, default=None, help="checkpoint (default: train one)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_device"))
    ap.add_argument("--unseen", type=int, default=12, help="speakers held out for PER (own model)")
    ap.add_argument("--per-utts", type=int, default=60, help="test utterances for PER")
    ap.add_argument(
        "--requests", type=int, default=32, help="timed requests per load level, split over clients"
    )
    ap.add_argument("--rtf-reps", type=int, default=10)
    ap.add_argument("--profiles", default="rpi3,rpi4,rpi5,host")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-md", type=Path, default=REPO / "BENCHMARKS.md")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    profiles = args.profiles.split(",")
    for p in profiles:
        get_profile(p)

    utts = read_manifest(args.manifest)
    model, unseen = get_model(args, utts)
    test = unseen[: args.per_utts]
    x3 = three_seconds(test)
    audio = encode_audio(x3, RATE)

    # -- profiles and quantization, in process ----------------------------------------------
    prof_rows = []
    in_process_s = {}
    for p in profiles:
        rec, report = load_profile(model, p)
        dt = time_decode(rec, x3, args.rtf_reps)
        in_process_s[p] = dt
        prof_rows.append(
            {
                "profile": p,
                "threads": torch.get_num_threads(),
                "int8": report["quantized"],
                "model_mib": report["model_bytes"] / 2**20,
                "rtf": dt / 3.0,
                "per": corpus_per(rec, test),
            }
        )
    quant_rows = []
    for threads in (1, 2):
        for q in (False, True):
            rec, report = load_profile(model, "host", quantize=q)
            torch.set_num_threads(threads)
            quant_rows.append(
                {
                    "threads": threads,
                    "int8": q,
                    "model_mib": report["model_bytes"] / 2**20,
                    "rtf": time_decode(rec, x3, args.rtf_reps) / 3.0,
                    "per": corpus_per(rec, test),
                }
            )

    # -- MQTT round trips, device in its own process ------------------------------------------
    rt_rows = []
    for p in profiles:
        rec, _ = load_profile(model, p)
        for kind in ("mosquitto", "amqtt"):
            in_process = time_decode(
                rec, x3, args.rtf_reps
            )  # same profile, just before the round trips
            log = Path(tempfile.mkdtemp()) / "device.log"
            with serve_in_subprocess(
                model, "bench", broker_kind=kind, profile=p, log_path=log
            ) as device:
                mem_loaded = rss_mib(device.pid)
                for clients in (1, 4, 16):
                    r = load_test(device.url, audio, clients, max(1, args.requests // clients))
                    r |= {
                        "profile": p,
                        "broker": kind,
                        "clients": clients,
                        "in_process_ms": 1000 * in_process,
                        "overhead": r["p50_ms"] / 1000 / in_process,
                    }
                    rt_rows.append(r)
                    print(r, file=sys.stderr)
                mem = rss_mib(device.pid)
            for row in prof_rows:
                if row["profile"] == p:
                    row[f"rss_{kind}_mib"] = mem_loaded["VmRSS"]
                    row[f"peak_{kind}_mib"] = mem["VmHWM"]

    write_report(args, model, len(test), prof_rows, quant_rows, rt_rows, in_process_s)


def write_report(args, model, n_test, prof_rows, quant_rows, rt_rows, in_process_s) -> None:
    lines = [
        "| profile | broker | clients | requests | req/s | p50 ms | p95 ms | in-process ms | p50 / in-process "
        "| outside-device ms (p50) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rt_rows:
        lines.append(
            f"| {r['profile']} | {r['broker']} | {r['clients']} | {r['requests']} | {r['req_per_s']:.1f} | "
            f"{r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['in_process_ms']:.1f} | {r['overhead']:.2f} | "
            f"{r['transport_ms']:.1f} |"
        )
    rt_table = "\n".join(lines)
    lines = [
        "| profile | threads | int8 | model MiB | device RSS MiB (mosquitto / amqtt) | peak RSS MiB | "
        "in-process ms per 3 s | RTF | PER (unseen speakers) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in prof_rows:
        lines.append(
            f"| {r['profile']} | {r['threads']} | {'yes' if r['int8'] else 'no'} | {r['model_mib']:.2f} | "
            f"{r['rss_mosquitto_mib']:.0f} / {r['rss_amqtt_mib']:.0f} | "
            f"{r['peak_mosquitto_mib']:.0f} / {r['peak_amqtt_mib']:.0f} | "
            f"{1000 * in_process_s[r['profile']]:.1f} | {r['rtf']:.4f} | {100 * r['per']:.2f}% |"
        )
    prof_table = "\n".join(lines)
    lines = [
        "| threads | int8 | model MiB | RTF | PER (unseen speakers) |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in quant_rows:
        lines.append(
            f"| {r['threads']} | {'yes' if r['int8'] else 'no'} | {r['model_mib']:.2f} | {r['rtf']:.4f} | "
            f"{100 * r['per']:.2f}% |"
        )
    quant_table = "\n".join(lines)
    print(rt_table, prof_table, quant_table, sep="\n\n")

    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in ln
        ),
        platform.processor(),
    )
    nproc = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    import amqtt
    import paho.mqtt

    mosq = subprocess.run(
        ["bash", "-c", "mosquitto -h | head -1"], capture_output=True, text=True
    ).stdout.strip()
    model_doc = json.loads((model / "model.json").read_text())
    section = f"""
## Device simulator (`benchmarks/bench_device.py`), {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC

- command: `{" ".join([Path(sys.executable).name, *sys.argv])}`
- machine: `nproc` = {nproc}, CPU {cpu}; shared with other processes (other helpers' jobs may have been running)
- versions: Python {platform.python_version()}, torch {torch.__version__}, paho-mqtt {paho.mqtt.__version__}, amqtt {amqtt.__version__}, {mosq}
- model: `{model}` (id {model_doc.get("model_id")}, network {model_doc["config"]["network"]["hidden"]}), trained on a synthetic corpus (`{args.manifest}`); PER on {n_test} utterances of speakers it never saw
- round trips: `device-sim serve` in its own process (amqtt runs inside that process; mosquitto is a separate process), clients in the benchmark process, each with its own MQTT connection; 3.000 s utterances (16-bit WAV, 96 kB); one warm-up request per client not timed. The device decodes one request at a time, so req/s is bounded by 1 / decode time. "in-process ms" is the median in-process `transcribe` time of the same utterance on the same profile, measured just before that block; "p50 / in-process" divides the p50 round trip by it. "outside-device ms" is the p50 of (round trip - the device's own `latency_ms`): MQTT, framing, WAV coding and client-side waiting.
- profiles only set threads, a model-memory ceiling and int8; CPU speed is this host's, not a Raspberry Pi's.

### Round trips
{rt_table}

### Profiles
{prof_table}

### int8 dynamic quantization (host profile, equal threads)
{quant_table}
"""
    with args.out_md.open("a") as f:
        f.write(section)
    print(f"appended to {args.out_md}", file=sys.stderr)


if __name__ == "__main__":
    main()
