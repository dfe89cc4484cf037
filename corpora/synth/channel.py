"""Speaker and channel acoustics applied to eSpeak's clean output.

* **Vocal-tract-length warp by resampling**: the 22050 Hz signal is treated as if it had been
  recorded at ``22050 * alpha`` Hz and resampled to 16 kHz (``scipy.signal.resample_poly`` with
  the rational ratio ``up/down``). Every frequency, formants and F0 alike, is multiplied by
  ``alpha`` and every duration by ``1/alpha``; the speaker's eSpeak pitch and rate are drawn
  independently, so those side effects are simply part of the draw. The exact alpha used is the
  rational one (:func:`warp_ratio`), and alignment positions map with the same ratio.
* **Microphone**: a 2nd-order Butterworth high-pass, one peaking-EQ biquad (RBJ cookbook) and a
  4th-order Butterworth low-pass, all as second-order sections (``scipy.signal.sosfilt``).
* **Level and noise**: the speech is scaled to a target RMS over its voiced part, then noise
  (white noise through a one-pole low-pass, i.e. coloured towards pink) is added at a given SNR.

Everything is deterministic given the parameters and the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal

OUT_RATE = 16000  # Hz, corpus sample rate


def warp_ratio(native_rate: int, alpha: float, max_denominator: int = 400) -> Fraction:
    """Rational resampling ratio ``out/in`` that applies a VTL warp ``alpha`` and lands at 16 kHz."""
    return Fraction(OUT_RATE / (native_rate * alpha)).limit_denominator(max_denominator)


def effective_alpha(native_rate: int, ratio: Fraction) -> float:
    """The warp factor a rational ``ratio`` really applies."""
    return OUT_RATE / (native_rate * float(ratio))


def warp_resample(x: np.ndarray, ratio: Fraction) -> np.ndarray:
    """Resample float samples ``x`` (n,) by ``ratio`` -> (round(n * ratio),) float64."""
    y = signal.resample_poly(x.astype(np.float64), ratio.numerator, ratio.denominator)
    return y


def microphone_sos(
    hp_hz: float, eq_hz: float, eq_gain_db: float, eq_q: float, lp_hz: float
) -> np.ndarray:
    """Second-order sections (k, 6) of the microphone filter at 16 kHz (frequencies in Hz)."""
    hp = signal.butter(2, hp_hz, btype="highpass", fs=OUT_RATE, output="sos")
    lp = signal.butter(4, lp_hz, btype="lowpass", fs=OUT_RATE, output="sos")
    a_gain = 10 ** (eq_gain_db / 40)
    w0 = 2 * np.pi * eq_hz / OUT_RATE
    alpha = np.sin(w0) / (2 * eq_q)
    b = np.array([1 + alpha * a_gain, -2 * np.cos(w0), 1 - alpha * a_gain])
    a = np.array([1 + alpha / a_gain, -2 * np.cos(w0), 1 - alpha / a_gain])
    peak = np.concatenate([b / a[0], a / a[0]])[None, :]  # (1, 6)
    return np.concatenate([hp, peak, lp])


def add_noise(x: np.ndarray, snr_db: float, color: float, rng: np.random.Generator) -> np.ndarray:
    """Add one-pole-coloured noise at ``snr_db`` (dB, against the power of the non-silent part).

    ``color`` in [0, 1): pole of the noise filter (0 white, near 1 strongly low-passed).
    """
    active = np.abs(x) > 1e-4 * max(np.abs(x).max(), 1e-12)
    power = float(np.mean(x[active] ** 2)) if active.any() else 1e-8
    noise = signal.lfilter([1 - color], [1, -color], rng.standard_normal(len(x)))
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / max(float(np.mean(noise**2)), 1e-20))
    return x + noise


def apply_channel(
    clean: np.ndarray,
    ratio: Fraction,
    sos: np.ndarray,
    rms_db: float,
    snr_db: float,
    noise_color: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Clean native-rate int16 speech (n,) -> warped, filtered, levelled, noisy 16 kHz float (m,).

    ``rms_db``: RMS of the speech part in dB re full scale (e.g. -24). The result is clipped to
    [-1, 1).
    """
    x = warp_resample(clean.astype(np.float64) / 32768.0, ratio)  # (m,) float in [-1, 1]
    x = signal.sosfilt(sos, x)
    active = np.abs(x) > 1e-3 * max(np.abs(x).max(), 1e-12)
    rms = float(np.sqrt(np.mean(x[active] ** 2))) if active.any() else 1.0
    x *= 10 ** (rms_db / 20) / max(rms, 1e-12)
    x = add_noise(x, snr_db, noise_color, rng)
    return np.clip(x, -1.0, 32767 / 32768)
