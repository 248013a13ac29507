"""The SSH layer against a real sshd: host keys pinned, trusted once, refused
when they change; commands, uploads, forwarding, and no password ever tried."""

from __future__ import annotations

import dataclasses
import http.server
import stat
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from gpucost.remote.hostkeys import HostKeyMismatch, HostKeyRejected, HostKeyStore
from gpucost.remote.ssh import (
    SshConnection,
    SshKeyRefused,
    Target,
    auth_methods,
    open_log,
)
from support.sshd import Sshd, host_for, keygen


def connect(target: Target, store: HostKeyStore, notices: list[str] | None = None) -> SshConnection:
    sink = notices.append if notices is not None else (lambda _: None)
    return SshConnection.connect(target, store, retry_for=5, notice=sink)


def test_the_published_fingerprint_pins_the_key(
    sshd: Sshd, target: Target, store: HostKeyStore
) -> None:
    notices: list[str] = []
    conn = connect(target, store, notices)
    assert conn.run("echo hi").stdout == "hi\n"
    conn.close()
    pinned = store.get("vm3")
    assert pinned is not None
    assert pinned.fingerprint == sshd.host_fingerprint()
    assert notices == [
        f"vm3 (127.0.0.1): host key {pinned.fingerprint} matches the provider's record; pinned"
    ]
    # The second connection accepts the pinned key silently.
    notices.clear()
    connect(target, store, notices).close()
    assert notices == []


def test_no_trust_on_first_use(sshd: Sshd, target: Target, store: HostKeyStore) -> None:
    # Issue 11, point 2: a key nobody vouches for is refused, not pinned.
    unvouched = dataclasses.replace(target, host_key_fingerprints=())
    with pytest.raises(HostKeyRejected, match="published none"):
        connect(unvouched, store)
    assert store.get("vm3") is None


def test_published_keys_are_pinned_before_connecting(
    sshd: Sshd, target: Target, store: HostKeyStore
) -> None:
    kind, blob = sshd.host_key.with_suffix(".pub").read_text().split()[:2]
    published = dataclasses.replace(target, host_key_fingerprints=(), host_keys=(f"{kind} {blob}",))
    notices: list[str] = []
    connect(published, store, notices).close()
    assert "published by the provider; pinned" in notices[0]
    # A host that offers another key than the published one is refused.
    sshd.restart(new_host_key=True)
    with pytest.raises(HostKeyMismatch):
        connect(published, store)


def test_a_changed_host_key_is_refused_with_a_hint(
    sshd: Sshd, target: Target, store: HostKeyStore
) -> None:
    connect(target, store).close()
    sshd.restart(new_host_key=True)
    with pytest.raises(HostKeyMismatch, match=r"host key of vm3 .* changed") as info:
        connect(target, store)
    assert "reused" in (info.value.hint or "")
    # Nothing was re-pinned: the next try is refused as well.
    with pytest.raises(HostKeyMismatch):
        connect(target, store)


def test_a_recreated_instance_is_trusted_again(
    sshd: Sshd, target: Target, store: HostKeyStore
) -> None:
    first = dataclasses.replace(target, instance_id="i-old")
    connect(first, store).close()
    sshd.restart(new_host_key=True)
    second = dataclasses.replace(
        target, instance_id="i-new", host_key_fingerprints=(sshd.host_fingerprint(),)
    )
    connect(second, store).close()
    pinned = store.get("vm3")
    assert pinned is not None
    assert pinned.instance_id == "i-new"
    assert pinned.fingerprint == sshd.host_fingerprint()


def test_provider_fingerprint_is_required_when_given(
    sshd: Sshd, target: Target, store: HostKeyStore
) -> None:
    wrong = dataclasses.replace(target, host_key_fingerprints=("SHA256:" + "A" * 43,))
    assert target.host_key_fingerprints == (sshd.host_fingerprint(),)
    with pytest.raises(HostKeyRejected):
        connect(wrong, store)
    assert store.get("vm3") is None
    right = dataclasses.replace(target, host_key_fingerprints=(sshd.host_fingerprint(),))
    notices: list[str] = []
    connect(right, store, notices).close()
    assert "matches the provider's record" in notices[0]


def test_only_the_managed_key_is_used(sshd: Sshd, target: Target, store: HostKeyStore) -> None:
    # Issue 11: a refused key fails at once, in one line (it used to be retried
    # for 300 s and reported as "cannot SSH"); retry_for would outlast the test.
    other = keygen(sshd.workdir / "other_key")
    with pytest.raises(SshKeyRefused, match="refused the key") as info:
        SshConnection.connect(
            dataclasses.replace(target, key_path=other), store, retry_for=600, notice=lambda _: None
        )
    assert "\n" not in info.value.one_line()


def test_a_passphrase_protected_key_fails_at_once(
    sshd: Sshd, target: Target, store: HostKeyStore
) -> None:
    locked = sshd.workdir / "locked_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "s3cret-phrase", "-f", str(locked)], check=True
    )
    locked_target = dataclasses.replace(target, key_path=locked)
    with pytest.raises(SshKeyRefused, match="protected by a passphrase"):
        SshConnection.connect(locked_target, store, retry_for=600, notice=lambda _: None)


def test_a_timed_out_command_is_ended_on_the_host(
    sshd: Sshd, target: Target, store: HostKeyStore, tmp_path: Path
) -> None:
    # Issue 11: closing the channel left the command running (holding the dpkg
    # lock on the rerun); the host's own timeout ends it.
    pid_file = tmp_path / "pid"
    conn = connect(target, store)
    try:
        result = conn.run(f"echo $$ > {pid_file}; exec sleep 600", timeout=1)
        assert result.rc == 124
        pid = int(pid_file.read_text())
        gone = conn.run(
            f"for i in $(seq 100); do kill -0 {pid} 2>/dev/null || exit 0; sleep 0.2; done; exit 1"
        )
        assert gone.ok, f"process {pid} still runs on the host"
    finally:
        conn.close()


def test_run_put_get_and_log(
    sshd: Sshd, target: Target, store: HostKeyStore, tmp_path: Path
) -> None:
    log_path = tmp_path / "logs" / "vm3.log"
    conn = connect(target, store)
    conn.log = open_log(log_path)
    conn.redact = ("s3cret",)
    remote = tmp_path / "remote.env"
    conn.put_file(b"PASSWORD=s3cret\n", str(remote), mode=0o600)
    assert stat.S_IMODE(remote.stat().st_mode) == 0o600
    result = conn.run(f"cat {remote}; echo oops >&2; exit 3")
    assert (result.rc, result.stdout, result.stderr) == (3, "PASSWORD=s3cret\n", "oops\n")
    assert conn.run("sleep 5", timeout=0.5).rc == 124
    conn.get_file(str(remote), tmp_path / "back.env")
    assert (tmp_path / "back.env").read_bytes() == b"PASSWORD=s3cret\n"
    conn.close()
    logged = log_path.read_text()
    assert "s3cret" not in logged
    assert "PASSWORD=****" in logged
    assert "[exit 3]" in logged
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600


def test_forward_local_port(sshd: Sshd, target: Target, store: HostKeyStore) -> None:
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"through the tunnel")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = connect(target, store)
    try:
        with conn.forward_local_port("127.0.0.1", server.server_address[1]) as forward:
            url = f"http://127.0.0.1:{forward.port}/"
            assert urllib.request.urlopen(url, timeout=5).read() == b"through the tunnel"
    finally:
        conn.close()
        server.shutdown()


def system_ssh(sshd: Sshd, argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argv[:1], "-o", "BatchMode=yes", *argv[1:]], capture_output=True, text=True, timeout=20
    )


def test_known_hosts_file_lets_system_ssh_verify(
    sshd: Sshd, target: Target, store: HostKeyStore
) -> None:
    first = dataclasses.replace(target, instance_id="i-0abc")
    connect(first, store).close()
    known = store.write_known_hosts([("vm3", sshd.port)])
    argv = ["ssh", "-i", str(sshd.client_key), "-p", str(sshd.port),
            "-o", "HostKeyAlias=i-0abc", "-o", f"UserKnownHostsFile={known}",
            "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes",
            f"{sshd.user}@127.0.0.1", "echo", "ok"]  # fmt: skip
    assert system_ssh(sshd, argv).stdout == "ok\n"


def test_gpucost_ssh_survives_a_new_address(
    sshd: Sshd, target: Target, store: HostKeyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 11, point 3: the key was pinned while the instance had another IP
    (before a stop/start); `gpucost ssh`'s argv still verifies it, by instance id."""
    from gpucost.config.settings import load_config
    from gpucost.inventory import Inventory
    from gpucost.remote import commands
    from gpucost.remote.hostkeys import PinnedKey

    kind, blob = sshd.host_key.with_suffix(".pub").read_text().split()[:2]
    store.pin("vm3", PinnedKey(kind, blob, "198.51.100.9", "i-0abc"))
    host = host_for(sshd).model_copy(update={"instance_id": "i-0abc", "name": "vm3"})
    inventory = Inventory(deployment="test", provider="aws", hosts=(host,))
    monkeypatch.setattr(commands, "running_inventory", lambda _config: inventory)
    public = sshd.client_key.with_name("client_key.pub")
    config = load_config(
        use_file=False, provider="aws", deployment="test", ssh_public_key=public,
        state_root=store.state.root,
    )  # fmt: skip
    argv = commands.ssh_argv(config, "vm3", ["echo", "ok"])
    out = system_ssh(sshd, argv)
    assert out.stdout == "ok\n", out.stderr


def test_auth_methods_are_read_without_logging_in(sshd: Sshd) -> None:
    # The fixture's sshd allows passwords on purpose: verify must see it.
    methods = auth_methods("127.0.0.1", sshd.port, sshd.user)
    assert "publickey" in methods
    assert "password" in methods
