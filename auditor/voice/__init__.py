"""The user-level audit of a voice device: shadows, querying, features, attacks, the pipeline.

:mod:`auditor.voice.pipeline` runs it end to end (corpus, splits, target, shadows, audit,
report); :mod:`auditor.voice.defenses` evaluates the recognizer's defenses with it.
"""
