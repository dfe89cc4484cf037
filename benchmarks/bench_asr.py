"""Benchmark of the DNN-HMM recognizer: PER, the member gap, training throughput, decoding RTF.

For a synthetic corpus (prepared manifest, with alignments) and speechocean762-dev
(transcript-only), the speakers are shuffled with the seed and split into training speakers
and unseen speakers; :func:`models.asr.train.train_recognizer` trains on the former (holding
out ``heldout_utterances_per_speaker`` per speaker), then PER and mean ``log_like_per_frame``
are measured on (a) training utterances, (b) held-out utterances of training speakers and
(c) unseen speakers. It also measures training frames/s against a bare forward+backward+step
of the same MLP on random tensors, decoding RTF of a 3 s utterance on 1 and 2 threads, the
checkpoint size and, optionally, the wall time of ``device-sim train`` on the whole synthetic
corpus. Prints a table and appends a section to ``BENCHMARKS.md``.

    python benchmarks/bench_asr.py --synth /tmp/synth60_prep --so762 ../shared/data/speechocean762-dev
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from models.asr.config import resolve_config
from models.asr.evaluate import evaluate_recognizer
from models.asr.network import FrameMlp
from models.asr.recognizer import load_recognizer
from models.asr.train import train_recognizer
from models.audio import read_audio
from models.manifest import manifest_path, read_manifest

REPO = Path(__file__).resolve().parents[1]


def speaker_split(utts, n_unseen: int, seed: int):
    speakers = sorted({u.speaker for u in utts})
    order = [speakers[i] for i in np.random.default_rng(seed).permutation(len(speakers))]
    unseen = set(order[:n_unseen])
    return [u for u in utts if u.speaker not in unseen], [u for u in utts if u.speaker in unseen]


def member_gap(
    name: str, utts, n_unseen: int, config: dict, seed: int, work: Path, cache: Path
) -> dict:
    """Train on the member speakers, evaluate the three conditions; return figures."""
    members, unseen = speaker_split(utts, n_unseen, seed)
    out = work / f"{name}_ckpt"
    t0 = time.perf_counter()
    rec, report = train_recognizer(
        members, config, seed=seed, out_dir=out, cache_dir=cache, progress=True
    )
    train_s = time.perf_counter() - t0
    data = json.loads((out / "data.json").read_text())
    by_id = {u.utt_id: u for u in members}
    rows = {}
    for cond, subset in (
        ("training utterances", [by_id[i] for i in data["train"]]),
        ("unseen utts of members", [by_id[i] for i in data["heldout"]]),
        ("unseen speakers", unseen),
    ):
        o = evaluate_recognizer(rec, subset, progress=False)["overall"]
        rows[cond] = {
            "utterances": o["utterances"],
            "per": o["per"],
            "log_like_per_frame": o["mean_log_like_per_frame"],
        }
    return {
        "name": name,
        "member_speakers": len({u.speaker for u in members}),
        "unseen_speakers": len({u.speaker for u in unseen}),
        "train_utterances": report["data"]["train"],
        "train_frames": rec.meta["train_frames"],
        "targets": report["targets"],
        "epochs": len(report["epochs"]),
        "train_seconds": train_s,
        "train_frames_per_second": report["train_frames_per_second"],
        "decoding": report["decoding"],
        "rows": rows,
        "ckpt": out,
        "hidden": config["network"]["hidden"],
    }


def bare_throughput(input_dim: int, n_states: int, config: dict, batches: int = 300) -> float:
    """Frames/s of forward+backward+Adam step of the same MLP on random tensors."""
    net = FrameMlp(
        input_dim, n_states, list(config["network"]["hidden"]), config["network"]["dropout"]
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    bs = int(config["training"]["batch_size"])
    x = torch.randn(bs, input_dim)
    y = torch.randint(0, n_states, (bs,))
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    for i in range(batches + 20):
        if i == 20:
            t0 = time.perf_counter()
        loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batches * bs / (time.perf_counter() - t0)


def decoding_rtf(ckpt: Path, utts, threads: int, repeats: int = 10) -> float:
    """Real-time factor of transcribe() (features + network + Viterbi) on a 3.0 s utterance."""
    u = min(utts, key=lambda u: abs(u.duration - 3.0) if u.duration >= 3.0 else 99.0)
    samples, sr = read_audio(u.path)
    samples = samples[: 3 * sr]
    rec = load_recognizer(ckpt, threads=threads)
    rec.transcribe(samples, sr)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        rec.transcribe(samples, sr)
    return (time.perf_counter() - t0) / repeats / (samples.size / sr)


def full_cli_train(manifest: Path, work: Path, seed: int, threads: int) -> float:
    """Wall seconds of ``device-sim train`` on every speaker of the manifest."""
    cmd = [
        sys.executable,
        "-m",
        "device_sim.cli",
        "train",
        "--manifest",
        str(manifest),
        "--out",
        str(work / "full_ckpt"),
        "--seed",
        str(seed),
        "--threads",
        str(threads),
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=REPO)
    return time.perf_counter() - t0


def format_section(args, results: list[dict], extra: dict) -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        f"## bench_asr: DNN-HMM phone recognizer ({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"- machine: {torch.get_num_threads()} torch threads, `nproc` = {extra['nproc']}, CPU {cpu}; "
        "other processes (other engineers' jobs) may have been running at the same time",
        f"- versions: python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}",
        f"- command: `{' '.join(['python', *sys.argv])}`",
        f"- seed {args.seed}; network hidden {results[0]['hidden'] if results else '-'}; "
        "PER on the 39-phone folding; log_like_per_frame = best-path score / frames",
        "",
        "| corpus | targets | train speakers / utts / frames | epochs | train wall s | condition | utts | PER % | log_like/frame |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for cond, row in r["rows"].items():
            lines.append(
                f"| {r['name']} | {r['targets']} | {r['member_speakers']} / {r['train_utterances']} / "
                f"{r['train_frames']} | {r['epochs']} | {r['train_seconds']:.0f} | {cond} | "
                f"{row['utterances']} | {100 * row['per']:.1f} | {row['log_like_per_frame']:.3f} |"
            )
    lines += ["", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in extra["table"].items()]
    return "\n".join(lines) + "\n\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", type=Path, help="prepared synthetic corpus (folder or manifest)")
    ap.add_argument("--so762", type=Path, help="speechocean762-dev Kaldi data dir")
    ap.add_argument("--synth-unseen", type=int, default=12, help="unseen synthetic speakers")
    ap.add_argument("--so762-unseen", type=int, default=15, help="unseen speechocean762 speakers")
    ap.add_argument("--config", type=Path, help="YAML of config overrides")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--full-cli", action="store_true", help="also time device-sim train on all synth speakers"
    )
    ap.add_argument(
        "--work", type=Path, default=None, help="folder for checkpoints (default: a temp dir)"
    )
    ap.add_argument("--out-md", type=Path, default=REPO / "BENCHMARKS.md")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    from models.asr.config import load_config

    config = load_config(args.config) if args.config else resolve_config()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_asr_"))
    work.mkdir(parents=True, exist_ok=True)
    results, table = [], {}
    if args.synth:
        m = manifest_path(args.synth)
        utts = read_manifest(m)
        results.append(
            member_gap(
                "synthetic", utts, args.synth_unseen, config, args.seed, work, m.parent / "features"
            )
        )
    if args.so762:
        from auditor.corpora.prepare import prepare_corpus

        prepared = prepare_corpus(args.so762, "kaldi", work / "so762_prep", progress=False)
        utts = read_manifest(prepared.manifest)
        results.append(
            member_gap(
                "speechocean762-dev",
                utts,
                args.so762_unseen,
                config,
                args.seed,
                work,
                work / "so762_prep" / "features",
            )
        )
    if results:
        first = results[0]
        rec = load_recognizer(first["ckpt"])
        arch = rec.network.arch
        bare = bare_throughput(arch["input_dim"], arch["n_states"], config)
        table[f"training frames/s (pipeline, {first['name']})"] = (
            f"{first['train_frames_per_second']:.0f}"
        )
        table["bare forward+backward+step frames/s (same MLP, random tensors)"] = f"{bare:.0f}"
        table["pipeline / bare ratio"] = f"{first['train_frames_per_second'] / bare:.2f}"
        eval_utts = read_manifest(manifest_path(args.synth)) if args.synth else utts
        for threads in (1, 2):
            table[f"decoding RTF, 3 s utterance, {threads} thread(s)"] = (
                f"{decoding_rtf(first['ckpt'], eval_utts, threads):.4f}"
            )
        size = sum(p.stat().st_size for p in first["ckpt"].iterdir() if p.name.startswith("model."))
        table["checkpoint size (model.safetensors + model.json)"] = f"{size / 1e6:.2f} MB"
        torch.set_num_threads(args.threads)
    if args.full_cli and args.synth:
        secs = full_cli_train(manifest_path(args.synth), work, args.seed, args.threads)
        n = len({u.speaker for u in read_manifest(manifest_path(args.synth))})
        table[f"`device-sim train` wall time, all {n} synthetic speakers, default config"] = (
            f"{secs:.0f} s"
        )
    extra = {
        "nproc": subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip(),
        "table": table,
    }
    section = format_section(args, results, extra)
    print(section)
    with args.out_md.open("a", encoding="utf-8") as f:
        f.write(section)


if __name__ == "__main__":
    main()
