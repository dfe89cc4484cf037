"""Offline synthetic speech corpus in TIMIT's layout, spoken by eSpeak NG.

``synthesize_corpus`` draws speakers, gives each the two shared sentences (``SA1``/``SA2``)
plus sentences of the project grammar (``SX<n>`` from a pool shared between speakers,
``SI<n>`` unique to the speaker, 5:3 as in TIMIT), synthesizes them in parallel processes and
writes ``TRAIN/DR<k>/<SPEAKER>/<SENT>.WAV|.PHN|.WRD|.TXT`` plus ``synth_info.json``, so the
TIMIT reader serves it unchanged. Same seed, same bytes, whatever the number of jobs.

A speaker is a reproducible draw (:func:`draw_speakers`) of dialect region -> eSpeak voice
family (:data:`DIALECT_VOICES`), voice variant, pitch, pitch range, rate, word gap, volume,
vocal-tract-length warp, microphone filter, level and noise (:mod:`.synth_channel`); each
utterance jitters rate, pitch, level and SNR a little. Phone alignments come from eSpeak's
phoneme events (:mod:`.synth_alignment`), mapped through the warp's resampling ratio.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from corpora.audio import write_sphere
from corpora.synth import espeak
from corpora.synth.alignment import align
from corpora.synth.channel import (
    OUT_RATE,
    apply_channel,
    effective_alpha,
    microphone_sos,
    warp_ratio,
)
from corpora.synth.grammar import SHARED_SENTENCES, sentence

GENERATOR_VERSION = "1"

#: Dialect region -> eSpeak language (voice family) and the share of speakers drawn into it.
#: The synthetic corpus's "dialect regions" are eSpeak's English accents, not TIMIT's US
#: regions; American voices get half of the speakers.
DIALECT_VOICES: dict[int, tuple[str, float]] = {
    1: ("en-us", 0.35),
    2: ("en-us-nyc", 0.15),
    3: ("en", 0.10),
    4: ("en-gb-x-rp", 0.10),
    5: ("en-gb-scotland", 0.075),
    6: ("en-gb-x-gbclan", 0.075),
    7: ("en-gb-x-gbcwmd", 0.075),
    8: ("en-029", 0.075),
}

#: eSpeak voice variants by gender (files under ``espeak-ng-data/voices/!v``).
VARIANTS: dict[str, tuple[str, ...]] = {
    "M": ("m1", "m2", "m3", "m4", "m5", "m6", "m7"),
    "F": ("f1", "f2", "f3", "f4", "f5"),
}

#: Centre and half-width of each uniformly drawn speaker parameter; the half-width is scaled
#: by ``spread`` (tuned so that synthetic speakers are about as identifiable as the real
#: speakers of speechocean762-dev: see BENCHMARKS.md).
SPEAKER_RANGES: dict[str, tuple[float, float]] = {
    "pitch": (50, 25),  # eSpeak 0-100
    "pitch_range": (55, 25),  # eSpeak 0-100
    "rate": (165, 30),  # words per minute
    "volume": (100, 20),  # eSpeak 0-200
    "vtl_alpha": (1.0, 0.1),  # frequency scale
    "hp_hz": (150, 90),  # Hz
    "eq_gain_db": (0, 8),  # dB
    "eq_q": (1.5, 0.8),
    "lp_hz": (6500, 1300),  # Hz
    "rms_db": (-24, 5),  # dB re full scale
    "snr_db": (28, 10),  # dB
    "noise_color": (0.5, 0.45),
}
#: Tuned with benchmarks/bench_corpus.py (13 MFCC mean+std, logistic regression, 60 speakers,
#: 8 train / 4 test utterances): spread 1.0 -> 97% speaker ID, 0.5 -> 83-89%, 0.6 -> 90-91%,
#: real speechocean762-dev speakers 91-92%.
DEFAULT_SPREAD = 0.6

#: Per-utterance jitter (half-width of a uniform draw) around the speaker's values.
UTTERANCE_JITTER: dict[str, float] = {"rate": 8, "pitch": 3, "rms_db": 2.0, "snr_db": 3.0}

ESPEAK_RATE = 22050  # Hz, eSpeak's output rate (checked in the workers)
SPEAKERS_PER_PROCESS = 8  # speakers synthesized by one fresh worker process, in order
SX_POOL = 450  # shared sentence pool size (TIMIT has 450 SX sentences)
PAD_S = (0.08, 0.2)  # s, silence added before and after each utterance (uniform)


@dataclass(frozen=True)
class Speaker:
    """One drawn speaker (all values as used; see :data:`SPEAKER_RANGES` for units).

    The warp is applied as the resampling ratio ``resample_up / resample_down`` from eSpeak's
    rate to 16 kHz; ``vtl_alpha`` is the frequency scale that ratio gives.
    """

    speaker_id: str
    dialect_region: int
    gender: str
    voice: str
    pitch: int
    pitch_range: int
    rate: int
    word_gap: int
    volume: int
    vtl_alpha: float
    resample_up: int
    resample_down: int
    hp_hz: float
    eq_hz: float
    eq_gain_db: float
    eq_q: float
    lp_hz: float
    rms_db: float
    snr_db: float
    noise_color: float


def _uniform(rng: np.random.Generator, key: str, spread: float) -> float:
    centre, half = SPEAKER_RANGES[key]
    return float(centre + half * spread * rng.uniform(-1, 1))


def _speaker_id(rng: np.random.Generator, gender: str, taken: set[str]) -> str:
    """TIMIT-style id: gender letter, three initials, one digit; unique within ``taken``."""
    letters = "ABCDEFGHIJKLMNOPRSTW"
    while True:
        initials = "".join(letters[i] for i in rng.integers(len(letters), size=3))
        for digit in range(10):
            candidate = f"{gender}{initials}{digit}"
            if candidate not in taken:
                taken.add(candidate)
                return candidate


def draw_speakers(n_speakers: int, seed: int, spread: float = DEFAULT_SPREAD) -> list[Speaker]:
    """Draw ``n_speakers`` speakers reproducibly from ``seed``.

    ``spread`` scales how far speakers differ (0: all alike up to voice variant and accent).
    """
    rng = np.random.default_rng([seed, 0x5EA])
    regions = sorted(DIALECT_VOICES)
    weights = np.array([DIALECT_VOICES[r][1] for r in regions])
    taken: set[str] = set()
    speakers = []
    for _ in range(n_speakers):
        region = int(rng.choice(regions, p=weights / weights.sum()))
        gender = "F" if rng.uniform() < 0.5 else "M"
        variant = VARIANTS[gender][int(rng.integers(len(VARIANTS[gender])))]
        speaker_id = _speaker_id(rng, gender, taken)
        ratio = warp_ratio(ESPEAK_RATE, _uniform(rng, "vtl_alpha", spread))
        eq_hz = float(np.exp(rng.uniform(np.log(300), np.log(4000))))
        speakers.append(
            Speaker(
                speaker_id=speaker_id,
                dialect_region=region,
                gender=gender,
                voice=f"{DIALECT_VOICES[region][0]}+{variant}",
                pitch=round(_uniform(rng, "pitch", spread)),
                pitch_range=round(_uniform(rng, "pitch_range", spread)),
                rate=round(_uniform(rng, "rate", spread)),
                word_gap=int(rng.choice([0, 0, 0, 1, 2])) if spread > 0 else 0,
                volume=round(_uniform(rng, "volume", spread)),
                vtl_alpha=round(effective_alpha(ESPEAK_RATE, ratio), 6),
                resample_up=ratio.numerator,
                resample_down=ratio.denominator,
                hp_hz=round(_uniform(rng, "hp_hz", spread), 2),
                eq_hz=round(eq_hz, 2),
                eq_gain_db=round(_uniform(rng, "eq_gain_db", spread), 3),
                eq_q=round(_uniform(rng, "eq_q", spread), 3),
                lp_hz=round(_uniform(rng, "lp_hz", spread), 2),
                rms_db=round(_uniform(rng, "rms_db", spread), 3),
                snr_db=round(_uniform(rng, "snr_db", spread), 3),
                noise_color=round(_uniform(rng, "noise_color", spread), 4),
            )
        )
    return speakers


def plan_sentences(speaker_index: int, n_utterances: int, seed: int) -> list[tuple[str, str]]:
    """``(sentence id, text)`` for one speaker: SA1, SA2, then SX (5/8 of the rest) and SI."""
    if n_utterances < 2:
        raise ValueError(
            f"utterances_per_speaker must be at least 2 (SA1, SA2), got {n_utterances}"
        )
    plan = [("SA1", SHARED_SENTENCES[0]), ("SA2", SHARED_SENTENCES[1])][:n_utterances]
    rest = n_utterances - 2
    n_sx = round(rest * 5 / 8)
    rng = np.random.default_rng([seed, speaker_index, 0x5E7])
    for k in sorted(rng.choice(SX_POOL, size=n_sx, replace=False).tolist()):
        plan.append((f"SX{k}", sentence(seed, k)))
    n_si = rest - n_sx
    for j in range(n_si):
        k = SX_POOL + 1000 + speaker_index * n_si + j
        plan.append((f"SI{k}", sentence(seed, k)))
    return plan


def _pad(synth: espeak.Synthesis, lead: int, trail: int) -> espeak.Synthesis:
    """Synthesis with ``lead``/``trail`` zero samples added and events shifted."""
    samples = np.concatenate([np.zeros(lead, np.int16), synth.samples, np.zeros(trail, np.int16)])
    events = [(kind, s + lead, v) for kind, s, v in synth.events]
    return espeak.Synthesis(samples, synth.sample_rate, events)


def _to_out_rate(
    segments: list[tuple[int, int, str]], ratio: Fraction, n_out: int
) -> list[tuple[int, int, str]]:
    """Map native-rate segments through the resampling ratio; drop ones that vanish."""
    out = []
    for start, end, label in segments:
        a = min(n_out, round(start * ratio))
        b = min(n_out, round(end * ratio))
        if b > a:
            out.append((a, b, label))
    return out


def synthesize_utterance(
    speaker: Speaker, text: str, seed: int, speaker_index: int, utt_index: int
) -> tuple[np.ndarray, list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """One utterance -> (16 kHz int16 samples (n,), TIMIT-61 phone segments, word segments).

    Segments are ``(start, end, label)`` in 16 kHz samples, end exclusive; phones cover the
    audio contiguously with ``h#`` at both ends.
    """
    rng = np.random.default_rng([seed, speaker_index, utt_index, 0xA0D])
    jitter = {k: float(rng.uniform(-h, h)) for k, h in UTTERANCE_JITTER.items()}
    params = espeak.VoiceParams(
        voice=speaker.voice,
        rate=int(np.clip(round(speaker.rate + jitter["rate"]), 80, 450)),
        pitch=int(np.clip(round(speaker.pitch + jitter["pitch"]), 0, 100)),
        pitch_range=int(np.clip(speaker.pitch_range, 0, 100)),
        word_gap=speaker.word_gap,
        volume=int(np.clip(speaker.volume, 1, 200)),
    )
    synth = espeak.synthesize(text, params)
    native = synth.sample_rate
    if native != ESPEAK_RATE:
        raise espeak.EspeakError(
            f"eSpeak speaks at {native} Hz, the generator expects {ESPEAK_RATE}"
        )
    lead, trail = (int(rng.uniform(*PAD_S) * native) for _ in range(2))
    synth = _pad(synth, lead, trail)
    phones, words = align(synth, text, speaker.voice)
    ratio = Fraction(speaker.resample_up, speaker.resample_down)
    sos = microphone_sos(
        speaker.hp_hz, speaker.eq_hz, speaker.eq_gain_db, speaker.eq_q, speaker.lp_hz
    )
    audio = apply_channel(
        synth.samples,
        ratio,
        sos,
        speaker.rms_db + jitter["rms_db"],
        speaker.snr_db + jitter["snr_db"],
        speaker.noise_color,
        rng,
    )
    n_out = len(audio)
    phones16 = _to_out_rate(phones, ratio, n_out)
    start, end, label = phones16[-1]
    phones16[-1] = (start, n_out, label)  # the last h# runs to the end of the audio
    pcm = np.round(audio * 32767.0).astype(np.int16)
    return pcm, phones16, _to_out_rate(words, ratio, n_out)


def _write_utterance(folder: Path, sent_id: str, text: str, pcm, phones, words) -> None:
    write_sphere(folder / f"{sent_id}.WAV", pcm, OUT_RATE)
    (folder / f"{sent_id}.PHN").write_text("".join(f"{a} {b} {lab}\n" for a, b, lab in phones))
    (folder / f"{sent_id}.WRD").write_text("".join(f"{a} {b} {w}\n" for a, b, w in words))
    (folder / f"{sent_id}.TXT").write_text(f"0 {len(pcm)} {text}\n")


def _synthesize_speaker(
    out_dir: str, speaker: Speaker, speaker_index: int, seed: int, n_utterances: int
) -> tuple[int, int]:
    """Write all utterances of one speaker; returns (utterances, samples)."""
    folder = Path(out_dir) / "TRAIN" / f"DR{speaker.dialect_region}" / speaker.speaker_id
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    plan = plan_sentences(speaker_index, n_utterances, seed)
    for utt_index, (sent_id, text) in enumerate(plan):
        pcm, phones, words = synthesize_utterance(speaker, text, seed, speaker_index, utt_index)
        _write_utterance(folder, sent_id, text, pcm, phones, words)
        total += len(pcm)
    return len(plan), total


def _synthesize_block(args: tuple) -> list[tuple[int, int]]:
    """Worker (a fresh process): one block of consecutive speakers, in order."""
    out_dir, block, first_index, seed, n_utterances = args
    return [
        _synthesize_speaker(out_dir, speaker, first_index + k, seed, n_utterances)
        for k, speaker in enumerate(block)
    ]


def synthesize_corpus(
    out_dir: str | Path,
    n_speakers: int,
    seed: int,
    utterances_per_speaker: int = 10,
    jobs: int | None = None,
    spread: float = DEFAULT_SPREAD,
) -> dict:
    """Synthesize a TIMIT-layout corpus of ``n_speakers`` eSpeak speakers into ``out_dir``.

    Parameters
    ----------
    out_dir : corpus root; ``TRAIN/DR<k>/<SPEAKER>/`` and ``synth_info.json`` are written there.
    n_speakers : number of speakers (at least 1).
    seed : everything (speakers, sentences, noise) follows from it; same seed, same bytes.
    utterances_per_speaker : SA1 + SA2 + the rest (SX:SI = 5:3), at least 2.
    jobs : worker processes (default: ``os.cpu_count()``); each block of
        :data:`SPEAKERS_PER_PROCESS` speakers gets a fresh one.
    spread : scale of the between-speaker parameter ranges (see :data:`SPEAKER_RANGES`).

    Returns
    -------
    dict with ``speakers``, ``utterances``, ``seconds`` (audio) and ``wall_seconds``.

    Notes
    -----
    Workers come from a ``forkserver`` context, so, as with any spawn-style pool, the calling
    program must be importable (a console script, ``python -c``, a file; not ``python -``).
    """
    if n_speakers < 1:
        raise ValueError(f"n_speakers must be at least 1, got {n_speakers}")
    plan_sentences(0, utterances_per_speaker, seed)  # validates the count before any work
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    speakers = draw_speakers(n_speakers, seed, spread)
    # eSpeak's output depends on what the process synthesized before (its pitch flutter and
    # glottal phase carry over; neither seeds nor re-initialisation reset them). So speakers
    # are synthesized in fixed blocks of SPEAKERS_PER_PROCESS, each block in a fresh process
    # forked from a server that never loaded eSpeak: a speaker's bytes depend only on the seed
    # and its block, not on ``jobs`` (nor on ``n_speakers``: speaker i is the same in a larger
    # corpus with the same seed).
    blocks = [
        (str(out), speakers[i : i + SPEAKERS_PER_PROCESS], i, seed, utterances_per_speaker)
        for i in range(0, n_speakers, SPEAKERS_PER_PROCESS)
    ]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(blocks)))
    context = get_context("forkserver")
    context.set_forkserver_preload(["corpora.synth.corpus"])
    results: list[tuple[int, int]] = []
    with (
        ProcessPoolExecutor(max_workers=jobs, mp_context=context, max_tasks_per_child=1) as pool,
        tqdm(total=n_speakers, desc="synthesizing speakers", unit="spk", leave=False) as progress,
    ):
        for block_results in pool.map(_synthesize_block, blocks):
            results += block_results
            progress.update(len(block_results))
    info = {
        "generator": "iot-privacy-auditor eSpeak NG corpus",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "n_speakers": n_speakers,
        "utterances_per_speaker": utterances_per_speaker,
        "spread": spread,
        "sample_rate": OUT_RATE,
        "dialect_voices": {f"DR{k}": v[0] for k, v in DIALECT_VOICES.items()},
        "shared_sentences": {"SA1": SHARED_SENTENCES[0], "SA2": SHARED_SENTENCES[1]},
        "speakers": [asdict(s) for s in speakers],
    }
    (out / "synth_info.json").write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    samples = sum(r[1] for r in results)
    return {
        "speakers": n_speakers,
        "utterances": sum(r[0] for r in results),
        "seconds": samples / OUT_RATE,
        "wall_seconds": time.perf_counter() - t0,
    }
