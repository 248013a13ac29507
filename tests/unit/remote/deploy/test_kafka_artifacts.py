"""Issue 11: Kafka's jar set is pinned. kafka-fetch.sh checks a fetch and its cache
against the committed manifest; the upload carries the manifest, the kafka step
its SHA-256, and the VM (lib.sh's check_manifest, run by kafka.sh) refuses any
file that differs. Runs the scripts under bash with a stand-in `mvn`.

Fails on the code before: there was no manifest, kafka-fetch.sh took any jars it
got (or found in its cache), and the upload carried nothing to check.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from gpucost.config.settings import GpucostConfig, load_config
from gpucost.remote import deploy
from gpucost.remote.deploy import KAFKA_MANIFEST, ArtifactError, kafka_dist, kafka_pin, pack_kafka
from gpucost.remote.steps import SCRIPTS_DIR

FETCH = SCRIPTS_DIR.parent / "dev" / "kafka-fetch.sh"
PINNED = SCRIPTS_DIR.parent / "dev" / "kafka-3.9.1-2.13.sha256"
JARS = {"kafka_2.13-3.9.1.jar": b"kafka", "zookeeper-3.8.4.jar": b"zookeeper"}


def config(**kafka: object) -> GpucostConfig:
    return load_config(use_file=False, provider="aws", admin_cidr="203.0.113.7/32", kafka=kafka)


def manifest_of(root: Path) -> str:
    files = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*") if p.is_file())
    return "".join(f"{hashlib.sha256((root / f).read_bytes()).hexdigest()}  {f}\n" for f in files)


def check(tree: Path, manifest: Path, pin: str = "") -> subprocess.CompletedProcess[str]:
    script = f'set -euo pipefail; source {SCRIPTS_DIR}/lib.sh; check_manifest "$@"'
    return subprocess.run(
        ["bash", "-c", script, "_", str(tree), str(manifest), pin], capture_output=True, text=True
    )


@pytest.fixture
def maven(tmp_path: Path) -> Path:
    """A stand-in `mvn` that "fetches" the files of tmp_path/jars and logs its calls."""
    jars = tmp_path / "jars"
    jars.mkdir()
    for name, content in JARS.items():
        (jars / name).write_bytes(content)
    mvn = tmp_path / "bin" / "mvn"
    mvn.parent.mkdir()
    mvn.write_text(
        f'#!/bin/bash\necho "$*" >> {tmp_path}/calls\n'
        'for a; do [[ $a == -DoutputDirectory=* ]] && out="${a#*=}"; done\n'
        f'mkdir -p "$out" && cp {jars}/* "$out"/\n'
    )
    mvn.chmod(0o755)
    return mvn


@pytest.fixture
def pinned(tmp_path: Path) -> Path:
    """The manifest of the stand-in's jars, with the committed log4j.properties line:
    the config kafka-fetch.sh writes must be the one pinned."""
    (log4j,) = [line for line in PINNED.read_text().splitlines() if "config/" in line]
    jars = (f"{hashlib.sha256(c).hexdigest()}  libs/{n}" for n, c in sorted(JARS.items()))
    manifest = tmp_path / "pinned.sha256"
    manifest.write_text("\n".join([log4j, *jars]) + "\n")
    return manifest


def fetch(
    tmp_path: Path, mvn: Path, manifest: Path | None, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "MVN": str(mvn),
            "JAVA_HOME": str(tmp_path), "KAFKA_HOME": str(tmp_path / "home")}  # fmt: skip
    if manifest is not None:
        base["KAFKA_MANIFEST"] = str(manifest)
    return subprocess.run(["bash", str(FETCH)], env=base | env, capture_output=True, text=True)


def calls(tmp_path: Path) -> int:
    log = tmp_path / "calls"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_the_committed_manifest_pins_every_file() -> None:
    lines = PINNED.read_text().splitlines()
    paths = [line[66:] for line in lines]
    assert all(re.fullmatch(r"[0-9a-f]{64}  (libs/[^/ ]+\.jar|config/log4j\.properties)", x)
               for x in lines)  # fmt: skip
    assert paths == sorted(set(paths))
    assert {"libs/kafka_2.13-3.9.1.jar", "config/log4j.properties"} <= set(paths)
    assert any(p.startswith("libs/zookeeper-3.") for p in paths)


def test_fetch_and_cache_are_checked(tmp_path: Path, maven: Path, pinned: Path) -> None:
    first = fetch(tmp_path, maven, pinned)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == str(tmp_path / "home")
    assert fetch(tmp_path, maven, pinned).returncode == 0
    assert calls(tmp_path) == 1  # the complete, matching cache is not fetched again
    (tmp_path / "home/libs/zookeeper-3.8.4.jar").write_bytes(b"zookeepeR")
    again = fetch(tmp_path, maven, pinned)
    assert again.returncode == 0
    assert "libs/zookeeper-3.8.4.jar does not match the pinned manifest" in again.stderr
    assert calls(tmp_path) == 2  # a tampered cache is fetched again
    assert check(tmp_path / "home", pinned).returncode == 0


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"zookeeper-3.8.4.jar": b"zookeepeR"}, "libs/zookeeper-3.8.4.jar does not match"),
        ({"extra-1.0.jar": b"x"}, "libs/extra-1.0.jar is not in"),
    ],
)
def test_a_fetch_that_differs_is_refused(
    tmp_path: Path, maven: Path, pinned: Path, change: dict[str, bytes], named: str
) -> None:
    for name, content in change.items():
        (tmp_path / "jars" / name).write_bytes(content)
    out = fetch(tmp_path, maven, pinned)
    assert out.returncode == 1
    last = out.stderr.splitlines()[-1]
    assert last == f"kafka-fetch: error: fetch refused: {named} the pinned manifest"
    assert not (tmp_path / "home/libs").exists()


def test_a_version_without_manifest_is_refused(tmp_path: Path, maven: Path) -> None:
    out = fetch(tmp_path, maven, None, KAFKA_VERSION="3.9.0")
    assert out.returncode == 1
    (line,) = out.stderr.splitlines()
    assert "no pinned manifest kafka-3.9.0-2.13.sha256" in line
    assert "--pin" in line
    assert calls(tmp_path) == 0
    fetch(tmp_path, maven, None, KAFKA_VERSION="3.9.0", KAFKA_UNPINNED="1")
    assert calls(tmp_path) == 1  # the opt-out fetches


def test_no_maven_is_its_own_exit_status(tmp_path: Path, maven: Path, pinned: Path) -> None:
    out = fetch(tmp_path, tmp_path / "no-mvn", pinned)
    assert out.returncode == 3
    assert "install Maven and a JDK" in out.stderr.splitlines()[-1]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "kafka-home"
    (home / "libs").mkdir(parents=True)
    (home / "config").mkdir()
    for name, content in JARS.items():
        (home / "libs" / name).write_bytes(content)
    (home / "config/log4j.properties").write_text("log4j.rootLogger=INFO\n")
    (tmp_path / "home.sha256").write_text(manifest_of(home))
    return home


def unpack(tarball: Path, into: Path) -> Path:
    with tarfile.open(tarball) as tar:
        tar.extractall(into, filter="data")
    return into / "kafka"


def test_the_vm_refuses_an_upload_that_differs(tmp_path: Path, home: Path) -> None:
    manifest = tmp_path / "home.sha256"
    pin = hashlib.sha256(manifest.read_bytes()).hexdigest()
    pack_kafka(home, manifest, tmp_path / "kafka.tgz")
    root = unpack(tmp_path / "kafka.tgz", tmp_path / "x")
    assert check(root, root / KAFKA_MANIFEST, pin).returncode == 0
    (root / "libs/kafka_2.13-3.9.1.jar").write_bytes(b"kafkA")
    out = check(root, root / KAFKA_MANIFEST, pin)
    assert (out.returncode, out.stdout) == (
        1, "libs/kafka_2.13-3.9.1.jar does not match the pinned manifest\n"
    )  # fmt: skip
    (root / "libs/kafka_2.13-3.9.1.jar").write_bytes(b"kafka")
    (root / "libs/zookeeper-3.8.4.jar").unlink()
    assert check(root, root / KAFKA_MANIFEST, pin).stdout == "libs/zookeeper-3.8.4.jar is missing\n"
    # A manifest rewritten to match changed files is not the pinned one.
    (root / KAFKA_MANIFEST).write_text(manifest_of(root))
    out = check(root, root / KAFKA_MANIFEST, pin)
    assert out.stdout == f"{KAFKA_MANIFEST} is not the pinned manifest (SHA-256 {pin})\n"


def test_kafka_sh_reads_the_manifest_the_tarball_carries() -> None:
    text = (SCRIPTS_DIR / "kafka.sh").read_text()
    assert f"\nMANIFEST={KAFKA_MANIFEST}\n" in text
    assert '"$KAFKA_MANIFEST_SHA256"' in text


def test_the_pin_is_the_committed_manifest_on_every_provider() -> None:
    pin = hashlib.sha256(PINNED.read_bytes()).hexdigest()
    assert kafka_pin(config()) == pin
    local = load_config(use_file=False, provider="local")
    assert kafka_pin(local) == pin
    assert kafka_pin(config(source="archive")) is None
    with pytest.raises(ArtifactError, match=r"no pinned manifest for Kafka 3\.9\.0") as raised:
        kafka_pin(config(version="3.9.0"))
    assert "--pin" in (raised.value.hint or "")


def test_the_upload_carries_the_manifest(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "kafka-3.9.1-2.13.sha256").write_bytes((tmp_path / "home.sha256").read_bytes())
    (dev / "kafka-fetch.sh").write_text(f"echo {home}\n")
    monkeypatch.setattr(deploy, "KAFKA_FETCH", dev / "kafka-fetch.sh")
    (tmp_path / "work").mkdir()
    tarball = kafka_dist(config(), tmp_path / "work")
    assert tarball is not None
    root = unpack(tarball, tmp_path / "x")
    assert (root / KAFKA_MANIFEST).read_bytes() == (tmp_path / "home.sha256").read_bytes()
    assert check(root, root / KAFKA_MANIFEST, kafka_pin(config()) or "-").returncode == 0


def test_no_maven_here_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "kafka-3.9.1-2.13.sha256").write_text("")
    (dev / "kafka-fetch.sh").write_text(
        "echo 'kafka-fetch: error: mvn not found: install Maven and a JDK' >&2; exit 3\n"
    )
    monkeypatch.setattr(deploy, "KAFKA_FETCH", dev / "kafka-fetch.sh")
    with pytest.raises(ArtifactError) as raised:
        kafka_dist(config(), tmp_path / "work")
    assert raised.value.one_line() == (
        "kafka-fetch.sh failed: kafka-fetch: error: mvn not found: install Maven and a JDK "
        '(or set [kafka] source = "archive" (the VMs download Apache\'s release), '
        "or dist = a Kafka tarball)"
    )
