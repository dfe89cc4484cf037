"""Benchmark of the DNN-HMM recognizer: PER, the member gap, training speed, decoding RTF.

For a prepared synthetic corpus (with alignments) and speechocean762-dev (transcript-only),
the speakers are shuffled with the seed into member speakers and unseen speakers; a splits
file is written and ``device-sim train --splits S --split target_members`` is run and timed
(so the wall time is that of the real command). PER and mean ``log_like_per_frame`` are then
measured on (a) the training utterances, (b) the held-out utterances of member speakers and
(c) the unseen speakers. Also: training frames/s (from the training report) against a bare
forward+backward+step of the same MLP on random tensors, decoding RTF of a 3 s utterance on 1
and 2 threads, and the checkpoint size. Prints a table and appends a section to BENCHMARKS.md.

    python benchmarks/bench_asr.py --synth /tmp/synth72_prep --so762 ../shared/data/speechocean762-dev
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from publish import publish  # benchmarks/publish.py

from corpora.audio import read_audio
from corpora.manifest import Utterance, manifest_path, read_manifest
from models.asr.evaluate import evaluate_recognizer
from models.asr.network import FrameMlp
from models.asr.recognizer import load_recognizer

REPO = Path(__file__).resolve().parents[1]


def speaker_split(utts: list[Utterance], n_unseen: int, seed: int) -> tuple[list[str], list[str]]:
    """(member speakers, unseen speakers) from a seeded shuffle."""
    speakers = sorted({u.speaker for u in utts})
    order = [speakers[i] for i in np.random.default_rng(seed).permutation(len(speakers))]
    return sorted(order[n_unseen:]), sorted(order[:n_unseen])


def member_gap(name: str, manifest: Path, n_unseen: int, args, work: Path) -> dict:
    """Time ``device-sim train`` on the member speakers, then evaluate the three conditions."""
    utts = read_manifest(manifest)
    members, unseen = speaker_split(utts, n_unseen, args.seed)
    splits = work / f"{name}_splits.json"
    doc = {"seed": args.seed, "splits": {"target_members": members, "target_nonmembers": unseen}}
    splits.write_text(json.dumps(doc))
    out = work / f"{name}_ckpt"
    cli = ["train", "--manifest", str(manifest), "--out", str(out), "--splits", str(splits)]
    cli += ["--split", "target_members", "--seed", str(args.seed), "--threads", str(args.threads)]
    if args.config:
        cli += ["--config", str(args.config)]
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "device_sim.cli", *cli], check=True, cwd=REPO)
    train_s = time.perf_counter() - t0
    report = json.loads((out / "train_report.json").read_text())
    data = json.loads((out / "data.json").read_text())
    rec = load_recognizer(out, threads=args.threads)
    by_id = {u.utt_id: u for u in utts}
    rows = {}
    for cond, subset in (
        ("training utterances", [by_id[i] for i in data["train"]]),
        ("unseen utts of members", [by_id[i] for i in data["heldout"]]),
        ("unseen speakers", [u for u in utts if u.speaker in set(unseen)]),
    ):
        o = evaluate_recognizer(rec, subset, progress=False)["overall"]
        rows[cond] = {
            "utterances": o["utterances"],
            "per": o["per"],
            "log_like_per_frame": o["mean_log_like_per_frame"],
        }
    return {
        "name": name,
        "command": "device-sim " + " ".join(cli),
        "member_speakers": len(members),
        "unseen_speakers": len(unseen),
        "train_utterances": report["data"]["train"],
        "train_frames": rec.meta["train_frames"],
        "targets": report["targets"],
        "epochs": len(report["epochs"]),
        "train_seconds": train_s,
        "train_frames_per_second": report["train_frames_per_second"],
        "decoding": report["decoding"],
        "rows": rows,
        "ckpt": out,
        "utts": utts,
        "hidden": rec.config["network"]["hidden"],
        "batch_size": rec.config["training"]["batch_size"],
    }


def bare_throughput(arch: dict, batch_size: int, batches: int = 200) -> float:
    """Frames/s of forward+backward+Adam step of the same MLP on random tensors."""
    net = FrameMlp(**arch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(batch_size, arch["input_dim"])
    y = torch.randint(0, arch["n_states"], (batch_size,))
    loss_fn = torch.nn.CrossEntropyLoss()
    net.train()
    for i in range(batches + 20):
        if i == 20:
            t0 = time.perf_counter()
        loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batches * batch_size / (time.perf_counter() - t0)


def decoding_rtf(ckpt: Path, utts: list[Utterance], threads: int, repeats: int = 20) -> float:
    """Real-time factor of ``transcribe`` (features + network + Viterbi) on 3.0 s of audio."""
    u = min(utts, key=lambda u: abs(u.duration - 3.0) if u.duration >= 3.0 else 99.0)
    samples, sr = read_audio(u.path)
    samples = samples[: 3 * sr]
    rec = load_recognizer(ckpt, threads=threads)
    rec.transcribe(samples, sr)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        rec.transcribe(samples, sr)
    return (time.perf_counter() - t0) / repeats / (samples.size / sr)


def format_section(args, results: list[dict], table: dict) -> str:
    """The BENCHMARKS.md section: machine, versions, command, figures."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    now = datetime.datetime.now(datetime.UTC)
    lines = [
        f"## bench_asr: DNN-HMM phone recognizer ({now:%Y-%m-%d %H:%M} UTC)",
        "",
        f"- machine: `nproc` = {os.cpu_count()}, CPU {cpu}; torch threads {args.threads}; load "
        f"average at start {args.load_at_start}; other engineers' jobs may have been running",
        f"- versions: python {platform.python_version()}, torch {torch.__version__}, "
        f"numpy {np.__version__}",
        f"- command: `python {' '.join(sys.argv)}` (seed {args.seed})",
    ]
    for r in results:
        lines.append(
            f"- {r['name']}: `{r['command']}`; MLP hidden {r['hidden']}, batch {r['batch_size']}; "
            f"decoder after dev tuning: acoustic scale {r['decoding']['acoustic_scale']}, "
            f"insertion penalty {r['decoding']['insertion_penalty']}"
        )
    lines += [
        "- PER on the 39-phone folding; log_like/frame = best-path score / frames (mean over utterances)",
        "",
        "| corpus | targets | member speakers / train utts / frames | unseen speakers | epochs "
        "| `device-sim train` wall s | condition | utts | PER % | log_like/frame |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for cond, row in r["rows"].items():
            lines.append(
                f"| {r['name']} | {r['targets']} | {r['member_speakers']} / {r['train_utterances']} / "
                f"{r['train_frames']} | {r['unseen_speakers']} | {r['epochs']} | {r['train_seconds']:.0f} "
                f"| {cond} | {row['utterances']} | {100 * row['per']:.1f} | "
                f"{row['log_like_per_frame']:.3f} |"
            )
    lines += ["", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in table.items()]
    return "\n".join(lines) + "\n\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synth", type=Path, help="prepared synthetic corpus (folder or manifest)")
    ap.add_argument("--so762", type=Path, help="speechocean762-dev Kaldi data dir")
    ap.add_argument("--synth-unseen", type=int, default=12, help="unseen synthetic speakers")
    ap.add_argument("--so762-unseen", type=int, default=15, help="unseen speechocean762 speakers")
    ap.add_argument("--config", type=Path, help="YAML of config overrides for device-sim train")
    ap.add_argument("--threads", type=int, default=2, help="torch threads for training")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="checkpoint folder (default: temp)")
    ap.add_argument("--out-md", type=Path, default=REPO / "BENCHMARKS.md")
    args = ap.parse_args()
    args.load_at_start = " ".join(f"{x:.1f}" for x in os.getloadavg())
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_asr_"))
    work.mkdir(parents=True, exist_ok=True)
    results, table = [], {}
    if args.synth:
        results.append(
            member_gap("synthetic", manifest_path(args.synth), args.synth_unseen, args, work)
        )
    if args.so762:
        from corpora.prepare import prepare_corpus

        prepared = prepare_corpus(args.so762, "kaldi", work / "so762_prep", progress=False)
        results.append(
            member_gap("speechocean762-dev", prepared.manifest, args.so762_unseen, args, work)
        )
    for r in results:
        arch = load_recognizer(r["ckpt"]).network.arch
        torch.set_num_threads(args.threads)
        bare = bare_throughput(arch, r["batch_size"])
        table[f"{r['name']}: training frames/s (pipeline, {args.threads} threads)"] = (
            f"{r['train_frames_per_second']:.0f}"
        )
        table[f"{r['name']}: bare forward+backward+step frames/s, same MLP, random tensors"] = (
            f"{bare:.0f} (ratio pipeline/bare {r['train_frames_per_second'] / bare:.2f})"
        )
    if results:
        first = results[0]
        arch = load_recognizer(first["ckpt"]).network.arch | {"hidden": [1024] * 4}
        bare = bare_throughput(arch, first["batch_size"])
        table[f"bare frames/s of the PyTorch-Kaldi 4x1024 MLP ({args.threads} threads)"] = (
            f"{bare:.0f} (one epoch of {first['train_frames']} frames: {first['train_frames'] / bare:.0f} s)"
        )
        for threads in (1, 2):
            rtf = decoding_rtf(first["ckpt"], first["utts"], threads)
            table[f"decoding RTF, 3 s utterance, {threads} thread(s), {first['name']} model"] = (
                f"{rtf:.4f}"
            )
        size = sum(p.stat().st_size for p in first["ckpt"].iterdir() if p.name.startswith("model."))
        table["checkpoint size (model.safetensors + model.json)"] = f"{size / 1e6:.2f} MB"
    section = format_section(args, results, table)
    publish(section, path=args.out_md)


if __name__ == "__main__":
    main()
