"""Pure reading of an Ansible json-callback document into per-task and per-host results.

Only names, ids, times, the module name, the changed/failed/skipped/unreachable flags and a short
message are kept. Module arguments (``invocation``), stdout and facts are never read: they hold
passwords and keys as often as not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from wgsiem.sources.context.schema import AnsibleRun

__all__ = ["AnsibleHostSummary", "AnsibleTaskResult", "ansible_results", "run_time"]

MESSAGE_CHARS = 512


@dataclass(frozen=True, slots=True)
class AnsibleTaskResult:
    run_id: str  # the first play's id: unique per ansible-playbook run
    play_id: str
    play_name: str
    task_id: str
    task_name: str
    host: str
    module: str | None
    changed: bool
    failed: bool
    skipped: bool
    unreachable: bool
    message: str | None
    start: float | None
    end: float | None


@dataclass(frozen=True, slots=True)
class AnsibleHostSummary:
    run_id: str
    host: str
    stats: dict[str, int]
    start: float | None
    end: float | None


def _time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _duration(obj: dict[str, Any]) -> tuple[float | None, float | None]:
    d = obj.get("duration")
    if not isinstance(d, dict):
        return None, None
    return _time(d.get("start")), _time(d.get("end"))


def run_time(run: AnsibleRun) -> tuple[float | None, float | None]:
    """First play start and last play end (what the document says, never the clock)."""
    starts, ends = [], []
    for play in run.plays:
        inner = play.get("play")
        s, e = _duration(inner if isinstance(inner, dict) else {})
        if s is not None:
            starts.append(s)
        if e is not None:
            ends.append(e)
    return (min(starts) if starts else None, max(ends) if ends else None)


def ansible_results(run: AnsibleRun) -> tuple[list[AnsibleTaskResult], list[AnsibleHostSummary]]:
    results: list[AnsibleTaskResult] = []
    run_id = ""
    for play_obj in run.plays:
        play = play_obj.get("play")
        play = play if isinstance(play, dict) else {}
        play_id = str(play.get("id") or "")
        run_id = run_id or play_id
        tasks = play_obj.get("tasks")
        for task_obj in tasks if isinstance(tasks, list) else []:
            if not isinstance(task_obj, dict):
                continue
            task = task_obj.get("task")
            task = task if isinstance(task, dict) else {}
            start, end = _duration(task)
            hosts = task_obj.get("hosts")
            for host, res in (hosts if isinstance(hosts, dict) else {}).items():
                if not isinstance(res, dict):
                    continue
                failed = bool(res.get("failed"))
                msg = res.get("msg")
                results.append(
                    AnsibleTaskResult(
                        run_id=run_id,
                        play_id=play_id,
                        play_name=str(play.get("name") or ""),
                        task_id=str(task.get("id") or ""),
                        task_name=str(task.get("name") or ""),
                        host=str(host),
                        module=str(res["action"]) if res.get("action") else None,
                        changed=bool(res.get("changed")),
                        failed=failed,
                        skipped=bool(res.get("skipped")),
                        unreachable=bool(res.get("unreachable")),
                        message=str(msg)[:MESSAGE_CHARS]
                        if msg and (failed or res.get("unreachable"))
                        else None,
                        start=start,
                        end=end,
                    )
                )
    start, end = run_time(run)
    summaries = [
        AnsibleHostSummary(run_id, host, {k: int(v) for k, v in stats.items()}, start, end)
        for host, stats in run.stats.items()
    ]
    return results, summaries
