"""Runs the role steps: in order on each host, hosts side by side, wave by wave.

A step whose check passes is skipped; one that fails stops its host and, at
the next wave boundary, the others, naming host, step and the last lines of
its output. Nothing is rolled back: the next `up` resumes at that step.
"""

from __future__ import annotations

import posixpath
import shlex
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gpucost.errors import GpucostError
from gpucost.remote.providers.base import Progress, ProgressEvent, no_progress
from gpucost.remote.ssh import Connection, mask
from gpucost.remote.steps import (
    MARKERS,
    REMOTE_WORKDIR,
    SCRIPTS_DIR,
    SUPPORT_FILES,
    WAVES,
    HostSteps,
    Step,
)

Outcome = Literal["unchanged", "changed"]


class StepFailed(GpucostError):
    """A step's script failed, or its check still fails after it ran."""


class DeployFailed(GpucostError):
    """More than one host failed."""


class Aborted(Exception):
    """Another host failed; this one stops at the wave boundary."""


@dataclass(frozen=True)
class StepResult:
    vm: str
    step: str
    outcome: Outcome


class _WaveGate:
    """Each host reports the wave it reached; a host enters wave w only when
    every host has finished all its steps of earlier waves."""

    def __init__(self, vms: Sequence[str]) -> None:
        self._reached = dict.fromkeys(vms, 0)
        self._cond = threading.Condition()
        self.failed = False

    def enter(self, vm: str, wave: int) -> None:
        with self._cond:
            self._reached[vm] = max(self._reached[vm], wave)
            self._cond.notify_all()
            self._cond.wait_for(
                lambda: self.failed or all(w >= wave for w in self._reached.values())
            )
            if self.failed:
                raise Aborted

    def finish(self, vm: str, *, failed: bool = False) -> None:
        with self._cond:
            self._reached[vm] = len(WAVES)
            self.failed = self.failed or failed
            self._cond.notify_all()


def _workdir(conn: Connection) -> str:
    # chmod, not mkdir -m: -m sets only the last directory, and never an existing one.
    result = conn.run(
        f"mkdir -p ~/{REMOTE_WORKDIR}/scripts"
        f" && chmod 700 ~/{REMOTE_WORKDIR} ~/{REMOTE_WORKDIR}/scripts"
        f" && cd ~/{REMOTE_WORKDIR} && pwd"
    )
    if not result.ok:
        raise StepFailed(f"{conn.vm}: cannot create ~/{REMOTE_WORKDIR}: {result.tail(3)}")
    return result.stdout.strip()


def _ssh_client_address(conn: Connection) -> str:
    # Where this machine's SSH connection comes from, as the VM sees it: the
    # admin address when no admin_cidr is set (the local provider).
    return conn.run('echo "${SSH_CONNECTION%% *}"').stdout.strip()


def run_step(
    conn: Connection,
    step: Step,
    workdir: str,
    extra_env: dict[str, str],
    scripts_dir: Path = SCRIPTS_DIR,
    markers: str = MARKERS,
) -> Outcome:
    """Check; if not done, push and run; check again. Safe to repeat."""
    digest = step.digest(scripts_dir)
    if conn.run(step.done_command(digest, markers), sudo=True, timeout=120).ok:
        return "unchanged"
    for name in (step.script, *SUPPORT_FILES):
        conn.put_file(scripts_dir / name, f"{workdir}/scripts/{name}", 0o700)
    made: set[str] = set()
    for upload in step.uploads:
        parent = posixpath.dirname(upload.name)
        if parent and parent not in made:
            conn.run(f"mkdir -p -m 700 {shlex.quote(f'{workdir}/{parent}')}")
            made.add(parent)
        source = upload.content if upload.content is not None else upload.local
        assert source is not None
        conn.put_file(source, f"{workdir}/{upload.name}", upload.mode)
    checked = conn.run(step.verify_command(workdir, scripts_dir), timeout=300)
    if not checked.ok:
        differs = [line for line in checked.stdout.splitlines() if "FAILED" in line]
        raise StepFailed(
            f"{conn.vm}: step {step.name}: a pushed file is not what this machine sent: "
            f"{(differs or [checked.tail(2)])[0]}",
            hint="a full disk or a file changed on the host? `gpucost up` pushes it again",
        )
    try:
        result = conn.run(
            step.run_command(workdir, digest, extra_env, markers), sudo=True, timeout=step.timeout
        )
    finally:
        # The script copied what it needs (0600, root's); no second copy stays
        # in the login user's home, whatever the outcome.
        secret = [f"{workdir}/{u.name}" for u in step.uploads if u.secret]
        if secret:
            conn.run("rm -f -- " + " ".join(shlex.quote(path) for path in secret))
    if not result.ok:
        tail = mask(result.tail(), getattr(conn, "redact", ()))
        raise StepFailed(
            f"{conn.vm}: step {step.name} failed (exit {result.rc}):\n{tail}",
            hint=f"details in the log of {conn.vm}; `gpucost up` resumes at this step",
        )
    if not conn.run(step.done_command(digest, markers), sudo=True, timeout=120).ok:
        raise StepFailed(
            f"{conn.vm}: step {step.name} ran, but its check still fails: {step.check}",
            hint=f"details in the log of {conn.vm}",
        )
    return "changed"


def run_steps(
    hosts: Sequence[HostSteps],
    connect: Callable[[str], Connection],
    progress: Progress = no_progress,
    scripts_dir: Path = SCRIPTS_DIR,
    markers: str = MARKERS,
) -> list[StepResult]:
    """Run every host's steps; raise the first failure after all hosts stopped."""
    gate = _WaveGate([p.vm for p in hosts])
    results: list[StepResult] = []
    lock = threading.Lock()

    def one_host(host: HostSteps) -> None:
        failed = False
        try:
            conn = connect(host.vm)
            try:
                workdir = _workdir(conn)
                extra = {"GPUCOST_SSH_CLIENT": _ssh_client_address(conn)}
                for index, step in enumerate(host.steps, 1):
                    gate.enter(host.vm, WAVES.index(step.wave))
                    label = f"{host.vm} {index}/{len(host.steps)} {step.name}"
                    progress(ProgressEvent("step", label, "waiting", step.summary))
                    outcome = run_step(conn, step, workdir, extra, scripts_dir, markers)
                    progress(
                        ProgressEvent(
                            "step",
                            label,
                            "updated" if outcome == "changed" else "exists",
                            step.summary,
                        )
                    )
                    with lock:
                        results.append(StepResult(host.vm, step.name, outcome))
            finally:
                conn.close()
        except Aborted:
            pass
        except BaseException:
            failed = True
            raise
        finally:
            gate.finish(host.vm, failed=failed)

    with ThreadPoolExecutor(max_workers=max(1, len(hosts))) as pool:
        futures = [pool.submit(one_host, host) for host in hosts]
    errors = [e for e in (f.exception() for f in futures) if e is not None]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        # Every failing host, not only the first: each may need its own fix.
        if all(isinstance(e, GpucostError) for e in errors):
            text = "\n".join(e.message for e in errors if isinstance(e, GpucostError))
            raise DeployFailed(
                f"{len(errors)} hosts failed:\n{text}",
                hint="details in each host's log; `gpucost up` resumes at the failed steps",
            ) from errors[0]
        raise errors[0]
    return results
