"""The offline synthetic speech corpus: eSpeak NG binding, sentence grammar, channel, alignment.

:mod:`corpora.synth.corpus` writes a TIMIT-layout tree (SPHERE audio, word and phone
alignments) that :mod:`corpora.timit` reads like the real corpus.
"""
