"""TIMIT's standard speaker lists: the 50-speaker dev set and the 24-speaker core test set.

Both are subsets of TIMIT's TEST speakers; the 462 TRAIN speakers form the training set.
The dev list is Kaldi's ``egs/timit/s5/conf/dev_spk.list`` (kaldi-asr/kaldi, commit
e522793a), in its order. The core test list is the 24-speaker core test set of the TIMIT
documentation (two men and one woman per dialect region), in the order of Kaldi's
``conf/test_spk.list``. Speaker ids are upper case, as in the corpus tree.
"""

from __future__ import annotations

#: The 50 dev speakers (Kaldi ``conf/dev_spk.list``).
DEV_SPEAKERS: tuple[str, ...] = (
    "FAKS0",
    "FDAC1",
    "FJEM0",
    "MGWT0",
    "MJAR0",
    "MMDB1",
    "MMDM2",
    "MPDF0",
    "FCMH0",
    "FKMS0",
    "MBDG0",
    "MBWM0",
    "MCSH0",
    "FADG0",
    "FDMS0",
    "FEDW0",
    "MGJF0",
    "MGLB0",
    "MRTK0",
    "MTAA0",
    "MTDT0",
    "MTHC0",
    "MWJG0",
    "FNMR0",
    "FREW0",
    "FSEM0",
    "MBNS0",
    "MMJR0",
    "MDLS0",
    "MDLF0",
    "MDVC0",
    "MERS0",
    "FMAH0",
    "FDRW0",
    "MRCS0",
    "MRJM4",
    "FCAL1",
    "MMWH0",
    "FJSJ0",
    "MAJC0",
    "MJSW0",
    "MREB0",
    "FGJD0",
    "FJMG0",
    "MROA0",
    "MTEB0",
    "MJFC0",
    "MRJR0",
    "FMML0",
    "MRWS1",
)

#: The 24 core test speakers (TIMIT core test set; Kaldi ``conf/test_spk.list``).
CORE_TEST_SPEAKERS: tuple[str, ...] = (
    "MDAB0",
    "MWBT0",
    "FELC0",
    "MTAS1",
    "MWEW0",
    "FPAS0",
    "MJMP0",
    "MLNT0",
    "FPKT0",
    "MLLL0",
    "MTLS0",
    "FJLM0",
    "MBPM0",
    "MKLT0",
    "FNLP0",
    "MCMJ0",
    "MJDH0",
    "FMGD0",
    "MGRT0",
    "MNJM0",
    "FDHC0",
    "MJLN0",
    "MPAM0",
    "FMLD0",
)


def timit_set(split: str, speaker: str) -> str:
    """Which standard set a speaker belongs to: ``train``, ``dev``, ``core_test`` or ``test``.

    Parameters
    ----------
    split : the tree's top folder, ``TRAIN`` or ``TEST`` (any case).
    speaker : speaker id (any case), e.g. ``FCJF0``.

    ``test`` means a TEST speaker in neither the dev nor the core test list.
    """
    spk = speaker.upper()
    if split.upper() == "TRAIN":
        return "train"
    if spk in DEV_SPEAKERS:
        return "dev"
    if spk in CORE_TEST_SPEAKERS:
        return "core_test"
    return "test"
