"""A real single-node Slurm cluster on localhost, for the workflow's cluster-submission test.

Debian's slurmctld/slurmd/slurm-client and munge are installed when missing (root + apt-get), the
daemons are started directly (no systemd) with state in a temporary directory, and stopped afterwards
by the PIDs this module started, never by name. ``/etc/slurm/slurm.conf`` is pointed at the generated
configuration (the executor plugin's job-step helper drops ``SLURM_CONF`` inside jobs) and restored.

No accounting database: the profile uses ``squeue`` for job status, which the plugin trusts only when
``MinJobAge`` is at least 120 s, so it is set to 600 here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
SLURM_ETC = Path("/etc/slurm")


def missing_reason() -> str | None:
    """Why the cluster cannot be started here, or None if it can (installing packages if needed)."""
    if os.geteuid() != 0:
        return "needs root to start munged/slurmctld/slurmd"
    if all(shutil.which(b) for b in ("slurmctld", "slurmd", "sbatch", "munged")):
        return None
    if not shutil.which("apt-get"):
        return "Slurm is not installed and apt-get is not available to install it"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
        res = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            return f"installing Slurm failed: {' '.join(cmd)}: {res.stderr[-500:]}"
    return None


def _real_memory_mb() -> int:
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    field = [w for w in out.split() if w.startswith("RealMemory=")][0]
    return int(field.split("=")[1])


class SlurmCluster:
    """Context manager: a running controller and one compute node named ``localhost``."""

    def __init__(self, root: Path | None = None):
        # munged runs as user munge, which must traverse every parent: a 0755 folder under /tmp
        import tempfile

        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="nanohet-slurm-"))
        self.root.chmod(0o755)
        self.pids: list[int] = []
        self.conf = self.root / "slurm.conf"
        self._saved_conf: Path | None = None
        self._linked = False

    # ------------------------------------------------------------------ set-up
    def _start_munge(self) -> None:
        mdir = self.root / "munge"
        mdir.mkdir(mode=0o755, parents=True)
        key = mdir / "munge.key"
        key.write_bytes(os.urandom(1024))
        shutil.chown(mdir, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        self.munge_socket = mdir / "munge.socket.2"
        subprocess.run(
            ["runuser", "-u", "munge", "--", "munged", f"--key-file={key}", f"--socket={self.munge_socket}",
             f"--pid-file={mdir / 'munged.pid'}", f"--log-file={mdir / 'munged.log'}",
             f"--seed-file={mdir / 'munged.seed'}"],
            check=True, capture_output=True, text=True)
        self.pids.append(self._wait_pid(mdir / "munged.pid"))

    def _write_conf(self) -> None:
        r = self.root
        for d in ("state", "spool", "log"):
            (r / d).mkdir()
        cpus = os.cpu_count() or 1
        self.conf.write_text(f"""\
ClusterName=nanohet-test
SlurmctldHost=localhost
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'slurmctld.pid'}
SlurmdPidFile={r / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={r / 'log' / 'jobcomp.log'}
MpiDefault=none
ReturnToService=2
MinJobAge=600
SchedulerType=sched/backfill
NodeName=localhost NodeHostname=localhost CPUs={cpus} RealMemory={_real_memory_mb()} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")

    def _link_default_conf(self) -> None:
        SLURM_ETC.mkdir(parents=True, exist_ok=True)
        target = SLURM_ETC / "slurm.conf"
        if target.exists() or target.is_symlink():
            self._saved_conf = self.root / "slurm.conf.saved"
            os.rename(target, self._saved_conf)
        target.symlink_to(self.conf)
        self._linked = True

    @staticmethod
    def _wait_pid(pidfile: Path, timeout: float = 15.0) -> int:
        end = time.time() + timeout
        while time.time() < end:
            if pidfile.exists() and pidfile.read_text().strip():
                return int(pidfile.read_text().split()[0])
            time.sleep(0.1)
        raise RuntimeError(f"daemon did not write {pidfile}")

    def env(self) -> dict:
        return dict(os.environ, SLURM_CONF=str(self.conf))

    def _wait_idle(self, timeout: float = 30.0) -> None:
        end = time.time() + timeout
        out = ""
        while time.time() < end:
            res = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env(), capture_output=True, text=True)
            out = res.stdout.strip() + res.stderr.strip()
            if res.returncode == 0 and out in ("idle", "idle*") and out == "idle":
                return
            time.sleep(0.3)
        raise RuntimeError(f"Slurm node did not become idle: {out!r}\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for f in sorted((self.root / "log").glob("*.log")):
            parts.append(f"--- {f.name}\n{f.read_text(errors='ignore')[-3000:]}")
        return "\n".join(parts)

    def __enter__(self) -> "SlurmCluster":
        try:
            self._start_munge()
            self._write_conf()
            self._link_default_conf()
            subprocess.run(["slurmctld", "-f", str(self.conf)], check=True, env=self.env())
            self.pids.append(self._wait_pid(self.root / "slurmctld.pid"))
            subprocess.run(["slurmd", "-f", str(self.conf), "-N", "localhost"], check=True, env=self.env())
            self.pids.append(self._wait_pid(self.root / "slurmd.pid"))
            self._wait_idle()
        except Exception:
            self.__exit__(None, None, None)
            raise
        return self

    # ------------------------------------------------------------------ queries
    def job_names(self) -> list[str]:
        """Names of every job the controller ran (from the job-completion log)."""
        comp = self.root / "log" / "jobcomp.log"
        if not comp.exists():
            return []
        names = []
        for line in comp.read_text().splitlines():
            for field in line.split():
                if field.startswith("Name="):
                    names.append(field[5:])
        return names

    # ------------------------------------------------------------------ tear-down
    def __exit__(self, *exc) -> None:
        for pid in reversed(self.pids):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(50):
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
        self.pids.clear()
        if self._linked:
            target = SLURM_ETC / "slurm.conf"
            if target.is_symlink():
                target.unlink()
            if self._saved_conf is not None:
                os.rename(self._saved_conf, target)
            self._linked = False
