"""``auditor corpus``: every command through the root console script."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from auditor.cli import main
from corpora.manifest import read_manifest
from corpora.splits import read_splits


def run(*args):
    return CliRunner().invoke(main, ["corpus", *map(str, args)])


@pytest.mark.parametrize("command", [[], ["synth"], ["prepare"], ["check"], ["split"]])
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_prepare_timit_prints_counts_then_is_up_to_date(timit_tree, tmp_path):
    out = tmp_path / "m"
    result = run("prepare", "--corpus", timit_tree, "--format", "timit", "--out", out)
    assert result.exit_code == 0, result.output
    assert "written and validated" in result.output
    assert "utterances: 6  speakers: 3" in result.output and "with alignment: 6" in result.output
    again = run("prepare", "--corpus", timit_tree, "--format", "timit", "--out", out)
    assert "up to date" in again.output
    sa = run("prepare", "--corpus", timit_tree, "--format", "timit", "--out", out, "--include-sa")
    assert "utterances: 12" in sa.output


def test_prepare_stops_at_a_problem_unless_lenient(timit_tree, tmp_path):
    (timit_tree / "TRAIN" / "DR1" / "FCJF0" / "SI1027.WAV").unlink()
    strict = run("prepare", "--corpus", timit_tree, "--format", "timit", "--out", tmp_path / "a")
    assert strict.exit_code == 1
    assert (
        "SI1027.WAV: missing audio [FCJF0_SI1027]" in strict.output and "--lenient" in strict.output
    )
    lenient = run(
        "prepare", "--corpus", timit_tree, "--format", "timit", "--out", tmp_path / "b", "--lenient"
    )
    assert lenient.exit_code == 0, lenient.output
    assert "utterances: 5" in lenient.output and "skipped: 1 (missing audio: 1)" in lenient.output
    info = json.loads((tmp_path / "b" / "corpus.json").read_text())
    assert info["skipped_counts"] == {"missing audio": 1}


def test_check_lists_every_problem_and_exits_1(timit_tree):
    (timit_tree / "TRAIN" / "DR1" / "FCJF0" / "SI1027.WAV").unlink()
    (timit_tree / "TEST" / "DR2" / "MDAB0" / "SX127.TXT").write_text("")
    result = run("check", "--corpus", timit_tree, "--format", "timit")
    assert result.exit_code == 1
    assert "problems: 2 (empty transcript: 1, missing audio: 1)" in result.output
    assert "SX127.TXT:1: empty transcript [MDAB0_SX127]" in result.output
    assert "utterances: 4" in result.output


def test_check_of_a_clean_corpus_exits_0(kaldi_dir):
    result = run("check", "--corpus", kaldi_dir, "--format", "kaldi")
    assert result.exit_code == 0, result.output
    assert "problems: 0" in result.output and "utterances: 3  speakers: 2" in result.output


def test_include_sa_is_refused_for_kaldi(kaldi_dir, tmp_path):
    result = run(
        "prepare",
        "--corpus",
        kaldi_dir,
        "--format",
        "kaldi",
        "--out",
        tmp_path / "m",
        "--exclude-sa",
    )
    assert result.exit_code == 2 and "timit format only" in result.output


def test_prepare_then_split(kaldi_dir, tmp_path):
    assert (
        run(
            "prepare", "--corpus", kaldi_dir, "--format", "kaldi", "--out", tmp_path / "m"
        ).exit_code
        == 0
    )
    out = tmp_path / "splits.json"
    args = ["split", "--manifest", tmp_path / "m", "--out", out, "--seed", 4]
    result = run(*args, "--target-members", 1, "--target-nonmembers", 1, "--shadow-pool", 0)
    assert result.exit_code == 0, result.output
    splits = read_splits(out)
    assert len(splits["target_members"]) == len(splits["target_nonmembers"]) == 1
    too_many = run(*args, "--target-members", 2, "--target-nonmembers", 1, "--shadow-pool", 0)
    assert too_many.exit_code == 1 and "only 2" in too_many.output


def test_synth_then_prepare_gives_aligned_utterances_with_sa(tmp_path):
    corpus, prepared = tmp_path / "c", tmp_path / "m"
    made = run(
        "synth",
        "--out",
        corpus,
        "--speakers",
        2,
        "--seed",
        1,
        "--utterances-per-speaker",
        3,
        "--jobs",
        1,
    )
    assert made.exit_code == 0, made.output
    assert "2 speakers, 6 utterances" in made.output
    result = run("prepare", "--corpus", corpus, "--format", "timit", "--out", prepared)
    assert result.exit_code == 0, result.output
    utts = read_manifest(prepared)
    assert len(utts) == 6 and all(u.alignment for u in utts)
    assert sum(u.meta["sentence"] in ("SA1", "SA2") for u in utts) == 4  # SA kept for synthetic
