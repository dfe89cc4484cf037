"""The lowest layer: helpers every other package uses and that import nothing of the project.

Numerics pinning (:mod:`common.numerics`), content hashing (:mod:`common.hashing`), nested
config merging (:mod:`common.config_merge`) and the lazy click group of both console scripts
(:mod:`common.cli_group`).
"""
