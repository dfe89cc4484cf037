"""Query a recognizer (the device over MQTT, or a shadow in-process) and record every answer.

Every query ends as one JSON line in a record file: ``{"model", "utt_id", "speaker",
"answer"}`` for an answer or ``{"model", "utt_id", "speaker", "error": {"code", "message"}}``
for a failed query. Before querying, the record is read back: utterances already answered
(or refused by the device for good, e.g. ``too_short``) are not sent again, so an interrupted
audit resumes where it stopped; timeouts and lost connections are retried on the next run.
The device is reached only through :class:`device_sim.client.DeviceClient`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from corpora.audio import read_audio
from corpora.manifest import Utterance

log = logging.getLogger(__name__)

#: Error codes that are worth asking again on a later run (the rest are the device's verdict).
TRANSIENT_CODES = ("timeout", "connection", "busy", "rate_limited", "internal_error")
#: Consecutive timeouts after which the device is taken to be offline and querying stops.
OFFLINE_AFTER_TIMEOUTS = 3


@dataclass
class QueryResult:
    """What one querying pass knows about its utterances.

    Attributes
    ----------
    answers : utt_id -> answer dict (from this pass or the record).
    errors : utt_id -> ``{"code", "message"}`` of the last failure of still unanswered ones.
    sent : queries sent in this pass (retries inside the client not counted).
    reused : utterances answered from the record without querying.
    seconds : wall time of the queries sent in this pass.
    stopped : why the pass stopped early (budget, device offline), else ``None``.
    status : the device's retained status message read at the start of the pass (model id,
        output policy, ...); ``None`` for an in-process shadow or when none arrived.
    """

    answers: dict[str, dict] = field(default_factory=dict)
    errors: dict[str, dict] = field(default_factory=dict)
    sent: int = 0
    reused: int = 0
    seconds: float = 0.0
    stopped: str | None = None
    status: dict | None = None

    @property
    def queries_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else float("nan")


def read_record(path: str | Path, model: str) -> dict[str, dict]:
    """Last record per utterance of ``model`` in a record file (empty if there is none).

    A line that is not JSON (e.g. cut by a crash) raises ``ValueError`` naming file and line,
    except a truncated last line, which is ignored with a warning.
    """
    p = Path(path)
    if not p.exists():
        return {}
    lines = p.read_text(encoding="utf-8").splitlines()
    out: dict[str, dict] = {}
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            if lineno == len(lines):
                log.warning("%s:%d: truncated last record ignored", p, lineno)
                continue
            raise ValueError(f"{p}:{lineno}: not a JSON query record ({e})") from e
        if rec.get("model") == model:
            out[rec["utt_id"]] = rec
    return out


def _settled(rec: dict | None) -> bool:
    if rec is None:
        return False
    return "answer" in rec or rec["error"]["code"] not in TRANSIENT_CODES


def _append(path: Path, rec: dict) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(rec, sort_keys=True) + "\n")


def _collect(result: QueryResult, rec: dict) -> None:
    if "answer" in rec:
        result.answers[rec["utt_id"]] = rec["answer"]
        result.errors.pop(rec["utt_id"], None)
    else:
        result.errors[rec["utt_id"]] = rec["error"]


def _run(
    ask,
    utterances: Sequence[Utterance],
    record: str | Path,
    model: str,
    *,
    budget: int | None,
    progress: bool,
    stop_on_offline: bool,
    batch: int = 1,
    still_valid=None,
) -> QueryResult:
    """Shared loop: reuse settled records, ask for the rest ``batch`` at a time.

    ``ask(list_of_utterances)`` returns, per utterance, an answer dict or a ``_QueryFailure``;
    ``still_valid(record)``, if given, may refuse a recorded answer (asked again).
    """
    path = Path(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    known = read_record(path, model)
    result = QueryResult()
    todo = []
    for u in utterances:
        rec = known.get(u.utt_id)
        if _settled(rec) and (still_valid is None or still_valid(rec)):
            _collect(result, rec)
            result.reused += 1
        else:
            todo.append(u)
    timeouts = 0
    bar = tqdm(total=len(todo), desc=f"querying {model}", unit="q", disable=not progress)
    for start in range(0, len(todo), batch):
        if budget is not None and result.sent >= budget:
            result.stopped = f"query budget of {budget} spent; {len(todo) - result.sent} left"
            break
        chunk = todo[start : start + batch]
        t0 = time.perf_counter()
        outcomes = ask(chunk)
        result.seconds += time.perf_counter() - t0
        for u, outcome in zip(chunk, outcomes, strict=True):
            rec = {"model": model, "utt_id": u.utt_id, "speaker": u.speaker}
            if isinstance(outcome, _QueryFailure):
                rec["error"] = {"code": outcome.code, "message": outcome.message}
                timeouts = timeouts + 1 if outcome.code == "timeout" else 0
            else:
                rec["answer"] = outcome
                timeouts = 0
            result.sent += 1
            _append(path, rec)
            _collect(result, rec)
        bar.update(len(chunk))
        if stop_on_offline and timeouts >= OFFLINE_AFTER_TIMEOUTS:
            result.stopped = (
                f"device offline: {timeouts} queries in a row timed out; "
                "run again to resume (answered queries are kept in " + str(path) + ")"
            )
            break
    bar.close()
    for utt_id, err in result.errors.items():
        log.warning("%s: %s failed: %s: %s", model, utt_id, err["code"], err["message"])
    return result


class _QueryFailure(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _outcome(ask_one, u: Utterance):
    try:
        return ask_one(u)
    except _QueryFailure as e:
        return e


def query_device(
    utterances: Sequence[Utterance],
    record: str | Path,
    *,
    broker: str,
    device_id: str,
    budget: int | None = None,
    progress: bool = True,
    **client_options,
) -> QueryResult:
    """Send each utterance's audio to the device over MQTT; answers and failures recorded.

    Parameters
    ----------
    utterances : what to ask about (audio read from each ``path``).
    record : JSONL record file (appended; read first to resume).
    broker, device_id : the device's broker URL and id.
    budget : most queries this pass may send (``None``: no limit).
    progress : progress bar on stderr.
    client_options : the other keyword arguments of :class:`~device_sim.client.DeviceClient`
        (``client_id``, ``username``, ``password``, ``timeout_s`` seconds per attempt,
        ``retries`` extra attempts after a timeout).

    Returns
    -------
    QueryResult
        With the device's retained status. Recorded answers are reused only if the device (its
        status) still serves the model that gave them, under the same output policy;
        ``ConnectionError`` if the broker cannot be reached. Stops early (``stopped`` says why)
        when the budget is spent or :data:`OFFLINE_AFTER_TIMEOUTS` queries in a row time out.
    """
    from device_sim.client import DeviceClient
    from device_sim.contract import DeviceError, DeviceTimeout

    client = DeviceClient(broker, device_id, **client_options)

    def ask_one(u: Utterance) -> dict:
        try:
            samples, sr = read_audio(u.path)  # (n,) float32, Hz
        except (OSError, ValueError) as e:
            raise _QueryFailure("unreadable_audio", f"{u.path}: {e}") from e
        try:
            return client.transcribe(samples, sr)
        except DeviceError as e:
            raise _QueryFailure(e.code, e.message) from e
        except DeviceTimeout as e:
            raise _QueryFailure("timeout", str(e)) from e
        except ConnectionError as e:
            raise _QueryFailure("connection", str(e)) from e

    try:
        client.connect()
    except (ConnectionError, OSError) as e:
        raise ConnectionError(f"cannot reach device {device_id!r} at {broker}: {e}") from e
    try:
        status = client.status(timeout_s=5.0)
        now = status or {}

        def same_view(rec: dict) -> bool:
            """A recorded answer counts only if the device still serves the model that gave it,
            with the same output policy."""
            answer = rec.get("answer")
            if answer is None:
                return True
            had = {"model_id": answer.get("model_id"), "output": answer.get("output", "full")}
            for key, value in had.items():
                if value is not None and now.get(key) not in (None, value):
                    log.warning(
                        "%s: recorded answer has %s %s, the device now %s: asking again",
                        rec["utt_id"],
                        key,
                        value,
                        now[key],
                    )
                    return False
            return True

        result = _run(
            lambda chunk: [_outcome(ask_one, u) for u in chunk],
            utterances,
            record,
            f"device:{device_id}",
            budget=budget,
            progress=progress,
            stop_on_offline=True,
            still_valid=same_view,
        )
    finally:
        client.close()
    result.status = status
    return result


def query_recognizer(
    recognizer,
    utterances: Sequence[Utterance],
    record: str | Path,
    *,
    model: str,
    batch: int = 16,
    progress: bool = True,
) -> QueryResult:
    """Transcribe in-process (a shadow model) with the same record format as the device.

    Parameters
    ----------
    recognizer : a loaded :class:`models.asr.recognizer.Recognizer`.
    utterances, record : as for :func:`query_device`.
    model : the record's model name (e.g. ``shadow-0``).
    batch : utterances decoded together (same results, fewer network calls).
    """
    from models.asr.features import RecognizerInputError

    def ask_one(u: Utterance) -> dict:
        try:
            samples, sr = read_audio(u.path)
            return recognizer.transcribe(samples, sr).to_dict()
        except RecognizerInputError as e:
            raise _QueryFailure(str(e.code), str(e)) from e
        except (OSError, ValueError) as e:
            raise _QueryFailure("unreadable_audio", f"{u.path}: {e}") from e

    def ask(chunk: list[Utterance]) -> list:
        """One network call and one batched Viterbi per chunk; one by one if any is refused."""
        try:
            audio = [read_audio(u.path) for u in chunk]  # [((n,) float32, Hz)]
            return [h.to_dict() for h in recognizer.transcribe_batch(audio)]
        except (RecognizerInputError, OSError, ValueError):
            return [_outcome(ask_one, u) for u in chunk]

    return _run(
        ask,
        utterances,
        record,
        model,
        budget=None,
        progress=progress,
        stop_on_offline=False,
        batch=batch,
    )
