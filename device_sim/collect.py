"""Collection mode: the device keeps what it hears as a Kaldi data dir (``--collect DIR``).

This is the vendor practice the auditor tests for ("we use your voice to improve the model"):
every successfully decoded request is appended to ``DIR`` as ``wav/<utt>.wav`` (16-bit PCM)
plus lines in ``wav.scp``, ``utt2spk`` (speaker = the client id) and ``text``. The transcript
is the ``text`` option the client sent, when it sent one (words; ``auditor corpus prepare
--format kaldi`` finds their phones in a lexicon or by eSpeak G2P); otherwise the device's own
recognized phones: ``text`` then holds them as pseudo-words and ``text-phone`` their ARPAbet
spelling, one line per pseudo-word, so the Kaldi reader gets exactly the recognized phones
back (closures and silences are restored by the reader; ``dx`` becomes ``T``). The data dir
can then be prepared and fed to ``device-sim train``.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from corpora.phones import ARPABET_TO_48

#: 48-set phone -> ARPAbet spelling for ``text-phone``; phones absent here (silences and
#: closures) are not written: the reader adds ``sil`` ends and closures itself.
PHONE48_TO_ARPABET: dict[str, str] = {v: k for k, v in ARPABET_TO_48.items()} | {
    "ax": "AH0",
    "ix": "IH",
    "dx": "T",
    "el": "AH0 L",
    "en": "AH0 N",
}
_SILENT = {"sil", "cl", "vcl", "epi"}


class KaldiCollector:
    """Append decoded requests to a Kaldi data dir; safe to call from several threads.

    Parameters
    ----------
    data_dir : the data dir (created if missing; existing files are appended to, and
        utterance numbering continues after the last collected utterance).
    """

    FILES = ("wav.scp", "utt2spk", "text", "text-phone")

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        self._lock = threading.Lock()
        (self.data_dir / "wav").mkdir(parents=True, exist_ok=True)
        scp = self.data_dir / "wav.scp"
        self._count = sum(1 for line in scp.open() if line.strip()) if scp.exists() else 0

    @property
    def count(self) -> int:
        """Utterances collected so far (including earlier runs into the same dir)."""
        return self._count

    def add(
        self,
        client_id: str,
        samples: np.ndarray,
        sample_rate: int,
        phones: list[str],
        text: str | None,
    ) -> str | None:
        """Store one utterance (float samples ``(n,)`` in [-1, 1]); returns its utterance id.

        Returns ``None`` (nothing stored) when there is no client text and the device heard
        only silence: such a line would be an empty transcript.
        """
        spoken = [p for p in phones if p not in _SILENT]
        if text is None and not spoken:
            return None
        with self._lock:
            self._count += 1
            utt_id = f"{client_id}-{self._count:06d}"
            rel = Path("wav") / f"{utt_id}.wav"
            sf.write(self.data_dir / rel, samples, sample_rate, subtype="PCM_16")
            lines = {"wav.scp": f"{utt_id} {rel}", "utt2spk": f"{utt_id} {client_id}"}
            if text is not None:
                lines["text"] = f"{utt_id} {text}"
            else:
                lines["text"] = f"{utt_id} {' '.join(spoken)}"
                lines["text-phone"] = "\n".join(
                    f"{utt_id}.{i}\t{PHONE48_TO_ARPABET[p]}" for i, p in enumerate(spoken)
                )
            for name, line in lines.items():
                with (self.data_dir / name).open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
            return utt_id
