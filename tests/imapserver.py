"""A real IMAP server on 127.0.0.1 for the tests: Debian's dovecot, run by the test.

The recipe and why each line of the config is there: tests/imapserver_notes.md. Any user name
logs in with PASSWORD; user `bounces` has the Maildir `home/bounces/Maildir` under the
server's directory, so a test can fill it by copying files into its new/.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.smtpserver import TlsCertificate

DOVECOT = "/usr/sbin/dovecot"
PASSWORD = "secret"
USER = "bounces"

_CONFIG = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = {user}
default_internal_user = {user}
default_internal_group = {group}
mail_location = maildir:~/Maildir
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
  }}
}}
service anvil {{
  chroot =
}}
"""


#: with a certificate: TLS on the imaps port, STARTTLS on the imap port, and no
#: login without one
_SSL = """\
ssl = required
ssl_cert = <{d}/cert.pem
ssl_key = <{d}/key.pem"""


def dovecot_missing() -> str | None:
    """Why the IMAP tests cannot run here, or None when they can."""
    if not os.path.exists(DOVECOT):
        return "no dovecot (apt-get install --no-install-recommends dovecot-imapd)"
    return None


class ImapTestServer:
    """A dovecot listening on 127.0.0.1:`port`, its mail under `directory`."""

    def __init__(
        self, directory: Path, port: int, process: subprocess.Popen[bytes], tls_port: int = 0
    ) -> None:
        self.directory, self.port, self.process = directory, port, process
        #: the imaps (implicit TLS) port; 0 when the server has no certificate
        self.tls_port = tls_port

    @property
    def maildir(self) -> Path:
        """The Maildir of user `bounces` (created here, owned by the server's user)."""
        return self.directory / "home" / USER / "Maildir"

    def deliver(self, name: str, data: bytes) -> None:
        """Put a message into the INBOX as a mail server would (a file in new/)."""
        new = self.maildir / "new"
        target = new / name
        target.write_bytes(data)
        _give_away(target, self.directory)

    def folder(self, name: str) -> Path:
        """The Maildir++ directory of a subfolder (`.name`)."""
        return self.maildir / f".{name}"


def _names() -> tuple[str, str, int, int, list[str]]:
    """User, group, uid, gid dovecot runs as, and the command prefix to become them."""
    if os.geteuid() == 0:  # dovecot's login process refuses to run as root
        return (
            "nobody",
            "nogroup",
            65534,
            65534,
            [
                "setpriv",
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
            ],
        )
    uid, gid = os.getuid(), os.getgid()
    return pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name, uid, gid, []


def _give_away(path: Path, root: Path) -> None:
    if os.geteuid() == 0:
        os.chown(path, 65534, 65534)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def imap_server(certificate: TlsCertificate | None = None) -> Iterator[ImapTestServer]:
    """Start dovecot, wait for its greeting (5 s at most), stop it afterwards.

    With a certificate, TLS is required: implicit on `tls_port`, STARTTLS on `port`.
    """
    directory = Path(tempfile.mkdtemp(prefix="paperbot-imap-"))
    directory.chmod(0o755)  # the unprivileged server must reach it
    user, group, uid, gid, become = _names()
    port = _free_port()
    tls_port = 0  # port 0 disables the imaps listener
    while certificate and tls_port in (0, port):
        tls_port = _free_port()
    if certificate:  # copied: the server's user may not reach the test's temporary directory
        shutil.copy(certificate.cert, directory / "cert.pem")
        shutil.copy(certificate.key, directory / "key.pem")
    config = directory / "dovecot.conf"
    config.write_text(
        _CONFIG.format(
            d=directory,
            user=user,
            group=group,
            uid=uid,
            gid=gid,
            port=port,
            tls_port=tls_port,
            password=PASSWORD,
            ssl=_SSL.format(d=directory) if certificate else "ssl = no",
        )
    )
    for sub in ("new", "cur", "tmp"):
        (directory / "home" / USER / "Maildir" / sub).mkdir(parents=True)
    if become:
        for path in [directory, *directory.rglob("*")]:
            os.chown(path, uid, gid)
    process = subprocess.Popen(
        [*become, DOVECOT, "-c", str(config), "-F"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_greeting(port, directory, process)
        yield ImapTestServer(directory, port, process, tls_port)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _wait_for_greeting(port: int, directory: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                if sock.recv(64).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.02)
    log = directory / "dovecot.log"
    raise RuntimeError(
        "dovecot did not start: " + (log.read_text()[-2000:] if log.exists() else "no log")
    )
