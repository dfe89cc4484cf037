"""Corpus tooling: read a corpus on disk once and write the manifest every later step reads.

One reader per format (:mod:`auditor.corpora.timit` for TIMIT-layout trees, real or
synthetic, and :mod:`auditor.corpora.kaldi` for Kaldi data dirs), one preparation step
(:mod:`auditor.corpora.prepare`: manifest + ``corpus.json`` + validation), one speaker-split
writer (:mod:`auditor.corpora.split`) and the ``auditor corpus`` commands
(:mod:`auditor.corpora.cli`). Problems in a corpus are :class:`CorpusError` s naming the
file and line.
"""

from auditor.corpora.errors import CorpusError

__all__ = ["CorpusError"]
