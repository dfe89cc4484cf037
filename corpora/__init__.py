"""Corpus tooling: read a corpus on disk once and write the manifest every later step reads.

One reader per format (:mod:`corpora.timit` for TIMIT-layout trees, real or
synthetic, and :mod:`corpora.kaldi` for Kaldi data dirs), one preparation step
(:mod:`corpora.prepare`: manifest + ``corpus.json`` + validation), one speaker-split
writer (:mod:`corpora.splits`) and the ``auditor corpus`` commands
(:mod:`corpora.cli`). Problems in a corpus are :class:`CorpusError` s naming the
file and line.
"""

from corpora.errors import CorpusError

__all__ = ["CorpusError"]
