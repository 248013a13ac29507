"""moto's EC2 API with every instance backed by a real local host, so that
`gpucost up --provider aws` runs its whole AWS path here, deploy included.

    gpucost (boto3) --AWS_ENDPOINT_URL--> moto server, in this process
                                             | a reconciler thread
                                             v
    instance i-...              <->  container ec2-i-... (the local provider's host image)
      private IP                 ==  its address on the subnet's Docker network
      public IP                  ==  its address on the "internet" network, new at each start
      key pair + user data       ->  NoCloud seed: cloud-init runs them at first boot
      GetConsoleOutput           <-  `docker logs` (cloud-init's host-key blocks)
      stop / start / reboot      ->  docker stop / start (new public address) / restart
      terminate                  ->  docker rm
      IMDS (instance tags)       <-  a metadata server on the subnet's gateway, where
                                     this machine sends 169.254.169.254:80 (a DNAT)

This machine is the admin, at ADMIN_IP on the "internet" network; `move_admin()`
gives it another address there, as an admin's ISP would. Security groups stay
moto's bookkeeping: the hosts' own ufw is what filters here. moto only records
state, so the reconciler makes the hosts follow it (as EC2's data plane would).
"""

from __future__ import annotations

import contextlib
import http.server
import ipaddress
import json
import logging
import secrets
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import moto.ec2.models.elastic_network_interfaces as moto_eni
import yaml
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.base_backend import BackendDict
from moto.core.responses import ActionResult
from moto.core.types import Base64EncodedString
from moto.core.utils import utcnow
from moto.ec2.models import ec2_backends
from moto.ec2.models.instances import Instance
from moto.ec2.responses.general import General
from moto.server import ThreadedMotoServer

from gpucost.remote.cloud_config import nocloud_meta_data
from gpucost.remote.providers import local_commands as cmd
from gpucost.remote.providers.local import seed_host
from gpucost.remote.providers.local_engine import Docker

PUBLIC_SUBNET: Final = ipaddress.ip_network("198.18.0.0/24")
"""Benchmarking space (RFC 2544): never routed anywhere, so never anyone's address."""
ADMIN_IP: Final = "198.18.0.1"
MOVED_ADMIN_IP: Final = "198.18.0.2"
INTERNET_BRIDGE: Final = "gpc-inet"
LABEL: Final = "gpucost.e2e-ec2"
IMDS_PORT: Final = 8169
DATA_PLANE_DELAY_S: Final = 0.3


def _docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}: {done.stderr.strip()}")
    return done.stdout


def _vendor_data() -> str:
    """What this "cloud" adds at boot, as vendor data (the user data stays exactly
    what gpucost sent): this machine's CAs, as an instance behind a TLS-inspecting
    egress proxy gets them from its image (cloud-init's `ca_certs`). Keys that the
    user data also sets (bootcmd, runcmd, write_files) would be overridden by it."""
    cas = [p.read_text() for p in sorted(Path(cmd.LOCAL_CA_DIR).glob("*.crt"))]
    config: dict[str, Any] = {"ca_certs": {"trusted": cas}} if cas else {}
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False)


def _imds_route(bridge: str, gateway: str, action: str) -> list[str]:
    """On this machine, as EC2's hypervisor does: a host's packets to IMDS's
    address go to the metadata server here, never on to any network beyond."""
    return [
        "iptables", "-t", "nat", action, "PREROUTING", "-i", bridge,
        "-d", "169.254.169.254/32", "-p", "tcp", "--dport", "80",
        "-j", "DNAT", "--to-destination", f"{gateway}:{IMDS_PORT}",
    ]  # fmt: skip


def _remove_labelled() -> None:
    for name in _docker("ps", "-aq", "--filter", f"label={LABEL}").split():
        _docker("rm", "--force", "--volumes", name, check=False)
    for volume in _docker("volume", "ls", "-q", "--filter", f"label={LABEL}").split():
        _docker("volume", "rm", "--force", volume, check=False)
    for network in _docker("network", "ls", "-q", "--filter", f"label={LABEL}").split():
        _docker("network", "rm", network, check=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BackedEc2:
    """Start with `with BackedEc2(region) as ec2:`; `endpoint` is for AWS_ENDPOINT_URL."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.port = _free_port()
        self.errors: list[str] = []
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._reconcile_forever, daemon=True)
        self._lock = threading.Lock()
        self._reboots: Counter[str] = Counter()
        self._rebooted: Counter[str] = Counter()
        self._public_in_use: set[str] = set()
        self._subnet_networks: dict[str, str] = {}
        self._imds: http.server.ThreadingHTTPServer | None = None
        self._imds_tokens: set[str] = set()
        self._saved: list[tuple[Any, str, Any]] = []
        self._routes: list[list[str]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend(self) -> Any:
        return ec2_backends[DEFAULT_ACCOUNT_ID][self.region]

    def container(self, instance_id: str) -> str:
        return f"ec2-{instance_id}"

    # --- lifetime ---------------------------------------------------------

    def __enter__(self) -> BackedEc2:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per API call
        # moto's state is per process: start from an empty EC2, whatever ran before.
        BackendDict.reset()
        _remove_labelled()  # what a killed run left
        self._patch_moto()
        self._server.start()
        _docker(
            "network", "create", "--driver", "bridge", "--label", LABEL,
            "--subnet", str(PUBLIC_SUBNET), "--gateway", ADMIN_IP,
            "-o", f"com.docker.network.bridge.name={INTERNET_BRIDGE}", "ec2-internet",
        )  # fmt: skip
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        _remove_labelled()
        for route in self._routes:
            subprocess.run(route, check=False)
        if self._imds is not None:
            self._imds.shutdown()
            self._imds.server_close()
        self._server.stop()
        for owner, name, value in reversed(self._saved):
            setattr(owner, name, value)
        BackendDict.reset()

    def _patch_moto(self) -> None:
        backing = self

        def next_public_ip() -> str:
            with backing._lock:
                live = {i.public_ip for i in backing.backend.all_instances() if i.public_ip}
                for address in PUBLIC_SUBNET.hosts():
                    candidate = str(address)
                    if int(address) - int(PUBLIC_SUBNET[0]) < 10:
                        continue  # the admin's addresses
                    if candidate not in live and candidate not in backing._public_in_use:
                        backing._public_in_use.add(candidate)
                        return candidate
            raise RuntimeError("the public test subnet is full")

        original_reboot = Instance.reboot

        def reboot(instance: Instance) -> None:
            original_reboot(instance)
            with backing._lock:
                backing._reboots[instance.id] += 1

        def get_console_output(response: General) -> ActionResult:
            instance = response.ec2_backend.get_instance(response._get_param("InstanceId"))
            logs = subprocess.run(
                ["docker", "logs", backing.container(instance.id)],
                capture_output=True,
                timeout=30,
                check=False,
            )
            text = (logs.stdout + logs.stderr).decode("utf-8", errors="replace")
            return ActionResult(
                {
                    "InstanceId": instance.id,
                    "Timestamp": utcnow(),
                    "Output": Base64EncodedString.from_raw_string(text),
                }
            )

        for owner, name, value in (
            (moto_eni, "random_public_ip", next_public_ip),
            (Instance, "reboot", reboot),
            (General, "get_console_output", get_console_output),
        ):
            self._saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, value)

    # --- the admin's address ---------------------------------------------

    @contextlib.contextmanager
    def move_admin(self) -> Iterator[str]:
        """This machine reaches the public addresses from MOVED_ADMIN_IP instead."""
        route = [str(PUBLIC_SUBNET), "dev", INTERNET_BRIDGE, "proto", "kernel", "scope", "link"]
        subprocess.run(
            ["ip", "addr", "add", f"{MOVED_ADMIN_IP}/24", "dev", INTERNET_BRIDGE], check=True
        )
        subprocess.run(["ip", "route", "replace", *route, "src", MOVED_ADMIN_IP], check=True)
        try:
            yield f"{MOVED_ADMIN_IP}/32"
        finally:
            subprocess.run(["ip", "route", "replace", *route, "src", ADMIN_IP], check=False)
            subprocess.run(
                ["ip", "addr", "del", f"{MOVED_ADMIN_IP}/24", "dev", INTERNET_BRIDGE],
                check=False,
            )

    # --- the data plane ---------------------------------------------------

    def settled(self, timeout: float = 180) -> None:
        """Wait until every host is in its instance's state, and each running one
        has booted (systemd done: sshd up, units started), as a user waits for an
        instance's status checks after a call to EC2."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._pending():
                return
            time.sleep(0.5)
        raise AssertionError(f"hosts still not in their instances' state: {self._pending()}")

    def _pending(self) -> list[str]:
        pending = []
        hosts = self._hosts()
        for instance in self.backend.all_instances():
            state = instance._state.name
            running = hosts.get(instance.id)
            behind = (
                (state == "running" and (running is not True or not self._booted(instance.id)))
                or (state == "stopped" and running)
                or (state == "terminated" and instance.id in hosts)
                or self._reboots[instance.id] != self._rebooted[instance.id]
            )
            if behind:
                pending.append(instance.id)
        return pending

    def _booted(self, instance_id: str) -> bool:
        state = _docker(
            "exec", self.container(instance_id), "systemctl", "is-system-running", check=False
        )
        return state.strip() in ("running", "degraded")

    def _hosts(self) -> dict[str, bool]:
        out = _docker(
            "ps", "-a", "--filter", f"label={LABEL}",
            "--format", '{{.Label "ec2.instance"}} {{.State}}',
        )  # fmt: skip
        return {line.split()[0]: line.split()[1] == "running" for line in out.splitlines()}

    def _reconcile_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._reconcile()
            except Exception as exc:  # kept for the test to show, never swallowed silently
                self.errors.append(f"{type(exc).__name__}: {exc}")
            self._stop.wait(DATA_PLANE_DELAY_S)

    def _reconcile(self) -> None:
        hosts = self._hosts()
        for instance in list(self.backend.all_instances()):
            state, iid = instance._state.name, instance.id
            if state in ("pending", "running"):
                if iid not in hosts:
                    self._launch(instance)
                elif not hosts[iid]:
                    self._connect_public(instance)
                    _docker("start", self.container(iid))
                elif self._reboots[iid] != self._rebooted[iid]:
                    _docker("restart", self.container(iid))
                self._rebooted[iid] = self._reboots[iid]
            elif state in ("stopping", "stopped") and hosts.get(iid):
                _docker("stop", self.container(iid))
                _docker("network", "disconnect", "ec2-internet", self.container(iid), check=False)
            elif state in ("shutting-down", "terminated") and iid in hosts:
                _docker("rm", "--force", "--volumes", self.container(iid))
                _docker("volume", "rm", "--force", f"{self.container(iid)}-docker", check=False)

    def _subnet_network(self, instance: Instance) -> str:
        """The Docker network standing for the instance's subnet."""
        subnet = self.backend.get_subnet(instance.subnet_id)
        cidr = ipaddress.ip_network(subnet.cidr_block)
        gateway = str(cidr[1])  # AWS's VPC router; here, this machine
        name = f"ec2-{subnet.id}"
        if subnet.id not in self._subnet_networks:
            bridge = f"gpc-vpc{len(self._subnet_networks)}"
            _docker(
                "network", "create", "--driver", "bridge", "--label", LABEL,
                "--subnet", str(cidr), "--gateway", gateway,
                "-o", f"com.docker.network.bridge.name={bridge}", name,
            )  # fmt: skip
            self._subnet_networks[subnet.id] = name
            self._start_imds(gateway)
            # Before any host starts: its first boot must not reach another IMDS.
            for interface in (bridge, INTERNET_BRIDGE):
                subprocess.run(_imds_route(interface, gateway, "-I"), check=True)
                self._routes.append(_imds_route(interface, gateway, "-D"))
        return name

    def _launch(self, instance: Instance) -> None:
        network = self._subnet_network(instance)
        name, private_ip = self.container(instance.id), str(instance.private_ip)
        hostname = f"ip-{private_ip.replace('.', '-')}"  # as EC2 names its hosts
        volume = f"{name}-docker"
        _docker("volume", "create", "--label", LABEL, volume)
        _docker(
            "create", "--tty", "--name", name, "--hostname", hostname,
            "--network", network, "--ip", private_ip,
            "--label", LABEL, "--label", f"ec2.instance={instance.id}",
            *cmd.SYSTEMD_FLAGS, "-v", f"{volume}:/var/lib/docker",
            cmd.HOST_IMAGE, "/sbin/init",
        )  # fmt: skip
        material = self.backend.key_pairs[instance.key_name].material_public
        public_key = (material.decode() if isinstance(material, bytes) else material).strip()
        user_data = instance.user_data.decode() if instance.user_data else ""
        seed = {
            "meta-data": nocloud_meta_data(instance.id, hostname, public_key),
            "user-data": user_data,
            "vendor-data": _vendor_data(),
        }
        seed_host(Docker(), name, seed)
        self._connect_public(instance)
        _docker("start", name)

    def _connect_public(self, instance: Instance) -> None:
        if instance.public_ip:
            _docker(
                "network", "connect", "--ip", str(instance.public_ip),
                "ec2-internet", self.container(instance.id),
            )  # fmt: skip

    # --- instance metadata ------------------------------------------------

    def _start_imds(self, gateway: str) -> None:
        """IMDSv2's token and instance-tag paths, answering each host by its address."""
        backing = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _reply(self, code: int, body: str = "") -> None:
                data = body.encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self) -> None:
                if self.path != "/latest/api/token":
                    return self._reply(404)
                token = secrets.token_urlsafe(24)
                backing._imds_tokens.add(token)
                return self._reply(200, token)

            def do_GET(self) -> None:
                if self.headers.get("X-aws-ec2-metadata-token") not in backing._imds_tokens:
                    return self._reply(401)
                prefix = "/latest/meta-data/tags/instance/"
                caller = backing._instance_at(self.client_address[0])
                if caller is None or not self.path.startswith(prefix):
                    return self._reply(404)
                key = self.path.removeprefix(prefix)
                tags = {t["key"]: t["value"] for t in caller.get_tags()}
                return self._reply(200, tags[key]) if key in tags else self._reply(404)

        self._imds = http.server.ThreadingHTTPServer((gateway, IMDS_PORT), Handler)
        threading.Thread(target=self._imds.serve_forever, daemon=True).start()

    def _instance_at(self, address: str) -> Instance | None:
        for instance in self.backend.all_instances():
            if address in (instance.private_ip, instance.public_ip):
                return instance
        return None

    def describe(self) -> str:
        """Each instance, its state and addresses: for failure messages."""
        return json.dumps(
            {i.id: [i._state.name, i.private_ip, i.public_ip] for i in self.backend.all_instances()}
        )

    def hosts_left(self) -> list[str]:
        """The instances that still have a host behind them."""
        return sorted(self._hosts())
