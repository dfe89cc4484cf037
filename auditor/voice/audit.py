"""The user-level audit: shadows' answers train the attacks, the device's answers are judged.

:func:`audit_users` runs the whole auditor side once the shadows exist (see
:mod:`auditor.voice.shadow`): choose each user's audios, query the device over MQTT and every
shadow in-process (recorded, resumable: :mod:`auditor.voice.query`), compute per-utterance and
per-user features (:mod:`auditor.voice.features`), fit the random forest and the calibrated test
on shadow users (:mod:`auditor.voice.attack`) and score the audited users, setting by setting
(:mod:`auditor.voice.sweep`), and write ``metrics.json``,
``users.json`` and ``calibration.json`` into the run directory (rendered by
:mod:`auditor.voice.reports`). The shadows' answers are seen through the output policy the device
declares (its status and its answers' ``output``), so the attacks learn from the view of a
model the device gives.

Two conditions are audited whenever the target's ``data.json`` is known (it is the ground
truth only the evaluation uses, and the member labels are checked against its speakers):
``seen`` (a member's audios are ones the model trained on) and ``unseen`` (held-out audios of a
member speaker: the user-level question). Non-members' audios are the same in both. Shadows are
used the same way with their own ``data.json``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from auditor.config import save_metrics
from auditor.voice.features import (
    FeatureError,
    utterance_features,
)
from auditor.voice.query import QueryResult, query_device, query_recognizer
from auditor.voice.reference import MIN_REFERENCES
from auditor.voice.reference_audit import ReferenceScores, reference_answers
from auditor.voice.shadow import ShadowModel
from auditor.voice.sweep import AuditSweep
from corpora.manifest import Utterance, read_manifest
from models.asr.recognizer import load_recognizer
from models.privacy.serving import OutputPolicy, parse_output_policy

log = logging.getLogger(__name__)

QUERY_RECORD_NAME = "queries.jsonl"
#: What the ``ci95`` intervals of ``metrics.json`` cover (``ci95_scope`` there).
CI95_SCOPE = (
    "95% intervals: bootstrap over the evaluated users only (members and non-members "
    "resampled separately); the target and the shadows are trained once, so the variation "
    "between training runs is not in them"
)


class AuditError(ValueError):
    """Audited users or settings that cannot be audited (the message says which and why)."""


def device_output_policy(answers: Iterable[dict], status: dict | None) -> OutputPolicy:
    """The output policy a device declares: its status's ``output`` and each answer's.

    An answer that declares none counts as ``full``. Raises :class:`AuditError` when the
    declarations disagree (the answers came from differently hardened devices), when one names
    a policy that is not known, or when there is none (no answer and no online status).

    Examples
    --------
    >>> device_output_policy([{"output": "label_only"}], {"output": "label_only"}).reveals_scores
    False
    """
    declared = Counter(str(a.get("output", "full")) for a in answers)
    said = None if status is None else status.get("output")
    specs = set(declared) | ({str(said)} if said is not None else set())
    if not specs:
        raise AuditError("the device declared no output policy: no answers and no online status")
    if len(specs) > 1:
        counts = ", ".join(f"{k!r} ({n})" for k, n in sorted(declared.items()))
        raise AuditError(
            f"the device's output policy is ambiguous: answers declare {counts or 'none'}, its "
            f"status {said!r}; audit into a fresh run directory (the query record holds answers "
            "of a differently hardened device)"
        )
    (spec,) = specs
    try:
        return parse_output_policy(spec)
    except ValueError as e:
        raise AuditError(f"the device declares an unknown output policy: {e}") from e


def check_member_labels(
    members: Sequence[str],
    nonmembers: Sequence[str],
    target_data: dict,
    utterances: Iterable[Utterance],
) -> None:
    """Refuse member labels that the target's ``data.json`` contradicts.

    The target's training speakers are its ``speakers`` plus the speakers (in ``utterances``,
    the manifest) of its ``train``, ``dev`` and ``heldout`` utterances. Members must all be
    among them and non-members none; :class:`AuditError` names the offending speakers.
    """
    ids = {x for key in ("train", "dev", "heldout") for x in target_data.get(key, [])}
    trained = set(target_data.get("speakers", [])) | {
        u.speaker for u in utterances if u.utt_id in ids
    }
    problems = []
    if missing := sorted(set(members) - trained):
        problems.append(f"members the target was not trained on: {', '.join(missing)}")
    if overlap := sorted(set(nonmembers) & trained):
        problems.append(f"non-members the target was trained on: {', '.join(overlap)}")
    if problems:
        raise AuditError("user labels contradict the target's data record: " + "; ".join(problems))


def select_audios(
    utterances: Sequence[Utterance],
    members: Sequence[str],
    nonmembers: Sequence[str],
    data_doc: dict | None,
    max_k: int,
    seed: int,
) -> dict[str, dict[str, list[Utterance]]]:
    """Each user's audios per condition, in query order (at most ``max_k`` each).

    Parameters
    ----------
    utterances : manifest records of (at least) every member and non-member.
    members, nonmembers : speakers trained on / not trained on by the model.
    data_doc : the model's ``data.json`` (``train`` and ``heldout`` utterance ids); ``None``
        gives one condition ``any`` (members' audios drawn from all their utterances).
    max_k : most audios per user.
    seed : seeds the order of the audios.

    Returns
    -------
    ``{condition: {speaker: [Utterance, ...]}}``.
    """
    rng = np.random.default_rng(seed)
    by_spk: dict[str, list[Utterance]] = {}
    for u in utterances:
        by_spk.setdefault(u.speaker, []).append(u)

    def drawn(utts: list[Utterance]) -> list[Utterance]:
        utts = sorted(utts, key=lambda u: u.utt_id)
        return [utts[i] for i in rng.permutation(len(utts))][:max_k]

    if data_doc is None:
        out = {"any": {s: drawn(by_spk.get(s, [])) for s in [*members, *nonmembers]}}
        return out
    train, heldout = set(data_doc["train"]), set(data_doc["heldout"])
    out = {"seen": {}, "unseen": {}}
    for s in sorted(members):
        utts = by_spk.get(s, [])
        out["seen"][s] = drawn([u for u in utts if u.utt_id in train])
        out["unseen"][s] = drawn([u for u in utts if u.utt_id in heldout])
    for s in sorted(nonmembers):
        out["seen"][s] = out["unseen"][s] = drawn(by_spk.get(s, []))
    return out


def _features_of(
    chosen: dict[str, dict[str, list[Utterance]]],
    result: QueryResult,
    model: str,
    failures: list,
    view: Callable[[dict], dict] | None = None,
) -> dict[str, dict[str, list[tuple[Utterance, dict, dict]]]]:
    """Per condition and speaker: [(utterance, answer, features)] of answered audios.

    ``view`` (if given) turns each answer into what a hardened device would reveal of it.
    """
    out: dict[str, dict[str, list]] = {}
    for cond, users in chosen.items():
        out[cond] = {}
        for spk, utts in users.items():
            rows = []
            for u in utts:
                answer = result.answers.get(u.utt_id)
                if answer is None:
                    continue
                if view is not None:
                    answer = view(answer)
                try:
                    rows.append((u, answer, utterance_features(answer, u.phones, u.utt_id)))
                except FeatureError as e:
                    failures.append({"model": model, "utt_id": u.utt_id, "reason": str(e)})
            out[cond][spk] = rows
    return out


def audit_users(
    manifest: str | Path,
    run_dir: str | Path,
    *,
    members: Sequence[str],
    nonmembers: Sequence[str],
    shadows: Sequence[ShadowModel],
    broker: str,
    device_id: str,
    target_data: dict | None = None,
    audios_per_user: int = 5,
    users_sweep: Sequence[int] = (25, 50, 100),
    audios_sweep: Sequence[int] = (1, 2, 3, 5, 8, 10),
    budget: int | None = None,
    timeout_s: float = 30.0,
    retries: int = 2,
    client_id: str | None = None,
    n_estimators: int = 300,
    n_bootstrap: int = 1000,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Audit users of a device and write ``metrics.json``, ``users.json``, ``calibration.json``.

    Parameters
    ----------
    manifest : prepared corpus holding every audited user's and shadow speaker's audio.
    run_dir : output folder (also holds the query record ``queries.jsonl``).
    members, nonmembers : the audited users, with their true status (for evaluation).
    shadows : trained shadow models (their speakers must not be audited users).
    broker, device_id : where the device answers (``mqtt://HOST:PORT``).
    target_data : the target's ``data.json`` (seen / held-out audios of its speakers; the
        member labels must agree with its speakers, see :func:`check_member_labels`);
        ``None`` audits one condition ``any`` and cannot check the labels.
    audios_per_user : K of the main setting (per-user verdicts, the headline metrics).
    users_sweep, audios_sweep : rows of the sweep tables (settings the data cannot support
        are left out and listed under ``sweep_skipped``).
    budget, timeout_s, retries, client_id : device querying (see :func:`query_device`).
    n_estimators : trees of the forest.
    n_bootstrap : resamples for the 95% intervals (over the evaluated users only: see
        :data:`CI95_SCOPE`).
    seed : audio order, forest, user subsets, bootstrap.
    progress : progress bars.

    The device's output policy (:func:`device_output_policy`) is applied to the shadows'
    in-process answers, so the attacks learn from the view of a model the device gives; it is
    recorded in ``metrics.json`` (``device_output``).

    Returns
    -------
    The ``metrics.json`` document.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    members, nonmembers = sorted(members), sorted(nonmembers)
    audited = _check_audited_users(members, nonmembers, shadows)
    max_k = max([audios_per_user, *audios_sweep])
    shadow_speakers = sorted({x for s in shadows for x in (*s.speakers_in, *s.speakers_out)})
    utts = read_manifest(manifest, sorted(audited | set(shadow_speakers)))
    if target_data is not None:
        check_member_labels(members, nonmembers, target_data, utts)
    record = run_dir / QUERY_RECORD_NAME
    failures: list[dict] = []

    chosen = select_audios(utts, members, nonmembers, target_data, max_k, seed)
    # pool speakers, known non-members of the device: the reference attack's population
    with_references = len(shadows) >= MIN_REFERENCES
    population = (
        select_audios(utts, [], shadow_speakers, None, max_k, seed)["any"]
        if with_references
        else {}
    )
    target_q = query_device(
        _audios_to_ask({**chosen, "population": population}),
        record,
        broker=broker,
        device_id=device_id,
        client_id=client_id,
        timeout_s=timeout_s,
        retries=retries,
        budget=budget,
        progress=progress,
    )
    if target_q.stopped:
        log.warning("device querying stopped early: %s", target_q.stopped)
    failures += _query_failures("target", target_q)
    policy = device_output_policy(target_q.answers.values(), target_q.status)
    target_feats = _features_of(chosen, target_q, "target", failures)
    conditions = list(chosen)

    shadow_feats, shadow_chosen = [], {}
    for s in shadows:
        s_chosen, res = _query_shadow(s, utts, target_data, max_k, seed, record, progress)
        failures += _query_failures(s.name, res)
        feats = _features_of(s_chosen, res, s.name, failures, policy.harden_answer)
        shadow_feats.append((s, feats))
        shadow_chosen[s.name] = s_chosen
    reference = None
    if with_references:
        calibration = reference_answers(
            shadows,
            chosen,
            shadow_chosen,
            population,
            record=record,
            harden=policy.harden_answer,
            failures=failures,
            progress=progress,
        )
        pop_feats = _features_of({"any": population}, target_q, "target", failures)["any"]
        reference = ReferenceScores(calibration, shadow_feats, pop_feats)

    sweep = AuditSweep(
        members,
        nonmembers,
        audios_per_user=audios_per_user,
        users_sweep=users_sweep,
        n_estimators=n_estimators,
        n_bootstrap=n_bootstrap,
        seed=seed,
        reference=reference,
    )
    ks = sorted(set(audios_sweep) | {audios_per_user})
    for cond in conditions:
        for k in ks:
            sweep.run(cond, k, shadow_feats, target_feats[cond])
    if not sweep.attacks:
        raise AuditError(
            f"no condition could be audited with {audios_per_user} audios per user: "
            + "; ".join(r["reason"] for r in sweep.sweep_skipped[:4])
        )
    doc = {
        "seed": seed,
        "device_id": device_id,
        "device_output": policy.spec,
        "audios_per_user": audios_per_user,
        "conditions": conditions,
        "n_members": len(members),
        "n_nonmembers": len(nonmembers),
        "shadows": [
            {
                "name": s.name,
                "path": str(s.path),
                "in": len(s.speakers_in),
                "out": len(s.speakers_out),
            }
            for s in shadows
        ],
        "attacks": sweep.attacks,
        "reference_calibrated": sweep.reference_choice
        if reference is not None
        else {"skipped": f"{len(shadows)} shadows; the attack needs {MIN_REFERENCES} references"},
        "rows": sweep.rows,
        "ci95_scope": CI95_SCOPE,
        "queries": _queries_doc(target_q, record),
        "skipped_users": sweep.skipped_users,
        "sweep_skipped": sweep.sweep_skipped,
        "failures": failures,
    }
    _write_audit_documents(run_dir, doc, sweep.users, sweep.calibration)
    return doc


def _check_audited_users(
    members: list[str], nonmembers: list[str], shadows: Sequence[ShadowModel]
) -> set[str]:
    """The audited users; :class:`AuditError` if a side is empty, overlaps or trained a shadow."""
    if not members or not nonmembers:
        raise AuditError("need at least one member and one non-member user to audit")
    audited = set(members) | set(nonmembers)
    if set(members) & set(nonmembers):
        both = sorted(set(members) & set(nonmembers))
        raise AuditError(f"users both member and non-member: {both}")
    for s in shadows:
        clash = audited & (set(s.speakers_in) | set(s.speakers_out))
        if clash:
            raise AuditError(f"{s.name} was built on audited users {sorted(clash)[:5]}")
    return audited


def _audios_to_ask(chosen: dict[str, dict[str, list[Utterance]]]) -> list[Utterance]:
    """Every distinct utterance of ``chosen`` (all conditions and users), by utterance id."""
    to_ask = {u.utt_id: u for users in chosen.values() for us in users.values() for u in us}
    return sorted(to_ask.values(), key=lambda u: u.utt_id)


def _query_failures(model: str, result: QueryResult) -> list[dict]:
    """The ``failures`` entries of ``result``'s unanswered utterances."""
    return [
        {"model": model, "utt_id": k, "reason": f"{e['code']}: {e['message']}"}
        for k, e in result.errors.items()
    ]


def _query_shadow(
    shadow: ShadowModel,
    utts: Sequence[Utterance],
    target_data: dict | None,
    max_k: int,
    seed: int,
    record: Path,
    progress: bool,
) -> tuple[dict[str, dict[str, list[Utterance]]], QueryResult]:
    """Choose a shadow's audios as the target's are chosen and query it in-process.

    Without ``target_data`` the one condition is ``any`` (the OUT side is the same; IN: the
    shadow's trained audios). Returns ``(chosen audios, query result)``.
    """
    s = shadow
    s_chosen = select_audios(utts, s.speakers_in, s.speakers_out, s.data(), max_k, seed)
    if target_data is None:
        s_chosen = {"any": s_chosen["seen"]}
    res = query_recognizer(
        load_recognizer(s.path),
        _audios_to_ask(s_chosen),
        record,
        model=f"{s.name}@{s.path.name}",
        progress=progress,
    )
    return s_chosen, res


def _queries_doc(target_q: QueryResult, record: Path) -> dict:
    """``metrics.json``'s account of the device querying."""
    return {
        "sent": target_q.sent,
        "reused": target_q.reused,
        "answered": len(target_q.answers),
        "failed": len(target_q.errors),
        "seconds": target_q.seconds,
        "queries_per_second": target_q.queries_per_second,
        "stopped": target_q.stopped,
        "record": str(record),
    }


def _write_audit_documents(run_dir: Path, doc: dict, users: dict, calibration: dict) -> None:
    """Write ``metrics.json``, ``users.json`` and ``calibration.json`` into ``run_dir``."""
    save_metrics(run_dir, doc)
    (run_dir / "users.json").write_text(json.dumps(list(users.values()), indent=1))
    (run_dir / "calibration.json").write_text(json.dumps(calibration, indent=1))
