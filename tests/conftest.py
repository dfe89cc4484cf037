"""Project-wide test fixtures.

``tiny_synth_corpus``: a small synthetic eSpeak corpus in TIMIT layout (4 speakers x 4
utterances, seed 7), synthesized once per test session; areas that need real-looking speech
with alignments (readers, manifests, recognizer, device, auditor) reuse it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_SYNTH = {"n_speakers": 4, "utterances_per_speaker": 4, "seed": 7}


@pytest.fixture(scope="session")
def tiny_synth_corpus(tmp_path_factory) -> Path:
    """Root of a 4-speaker x 4-utterance synthetic TIMIT-layout corpus (read-only: do not edit)."""
    from auditor.corpora.synth import synthesize_corpus

    root = tmp_path_factory.mktemp("tiny_synth_corpus")
    synthesize_corpus(root, jobs=1, **TINY_SYNTH)
    return root
