"""A real IMAP server for the tests: Debian's Dovecot (`dovecot-imapd`), run by the tests on
free ports in a temporary directory, unprivileged.

- Users log in with a password (a passwd-file), or with SASL XOAUTH2 / OAUTHBEARER when the
  server is given an introspection URL: Dovecot's own `oauth2` passdb then asks that URL
  (the tests' authorization server) whether the token is active and whose it is, so an
  OAuth login is verified for real.
- Two listeners: `port` (plain, with STARTTLS) and `ssl_port` (implicit TLS), with a
  self-signed certificate in `cert_file` that a client trusts explicitly.
- `append()` puts a message into a user's folder over IMAP, as a mail server delivering it
  would; `stop()` / `start()` take the server away and back on the same ports.

Without Dovecot installed the tests that need it skip and say how to get it, unless
`REQUIRE_DOVECOT=1` (CI), where its absence fails them.
"""

from __future__ import annotations

import contextlib
import datetime
import grp
import imaplib
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from supportdesk.dev.embedded import free_port

DOVECOT = shutil.which("dovecot") or next(
    (p for p in ("/usr/sbin/dovecot",) if Path(p).exists()), None
)
HOW_TO_GET_IT = (
    "needs Dovecot (a real IMAP server): apt-get install dovecot-imapd "
    "(REQUIRE_DOVECOT=1 makes its absence a failure)"
)


def require_dovecot() -> str:
    """The dovecot binary, or skip (fail under REQUIRE_DOVECOT=1) saying how to get it."""
    if DOVECOT is None:
        if os.environ.get("REQUIRE_DOVECOT") == "1":
            pytest.fail("REQUIRE_DOVECOT=1 but " + HOW_TO_GET_IT)
        pytest.skip(HOW_TO_GET_IT)
    return DOVECOT


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for `host` (as an IP address and a name) and its key."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(host))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class Dovecot:
    def __init__(self, directory: Path, *, introspection_url: str | None = None):
        self.binary = require_dovecot()
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.ssl_port = free_port()
        self.host = "127.0.0.1"
        self.introspection_url = introspection_url
        self.passwords: dict[str, str] = {}
        self.cert_file, self.key_file = self_signed(self.dir)
        self._process: subprocess.Popen[bytes] | None = None
        # Dovecot refuses to run mail as root: as root, the mail belongs to its own user.
        if os.geteuid() == 0:
            account = pwd.getpwnam("dovecot")
            self.uid, self.gid = account.pw_uid, account.pw_gid
            self.user, self.group = account.pw_name, grp.getgrgid(account.pw_gid).gr_name
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()
            self.user = pwd.getpwuid(self.uid).pw_name
            self.group = grp.getgrgid(self.gid).gr_name

    # --- users and mail ---------------------------------------------------------------------

    def add_user(self, username: str, password: str = "secret") -> str:  # noqa: S107
        """A mailbox user; with an introspection URL, also one that logs in with a token."""
        self.passwords[username] = password
        self._write_users()
        return username

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and nothing else)."""
        return ssl.create_default_context(cafile=str(self.cert_file))

    def connect(self, username: str) -> imaplib.IMAP4_SSL:
        client = imaplib.IMAP4_SSL(self.host, self.ssl_port, ssl_context=self.ssl_context())
        client.login(username, self.passwords[username])
        return client

    def append(self, username: str, message: bytes, folder: str = "INBOX", flags: str = "") -> int:
        """Deliver `message` into the user's folder; the UID it was given."""
        client = self.connect(username)
        try:
            if folder.upper() != "INBOX":
                client.create(folder)
            typ, data = client.append(folder, flags or None, None, message)
            assert typ == "OK", data
            # [APPENDUID <uidvalidity> <uid>]
            code = data[0].decode()
            return int(code.split("APPENDUID", 1)[1].split()[1].rstrip("]"))
        finally:
            client.logout()

    def uids(self, username: str, folder: str = "INBOX", criteria: str = "ALL") -> list[int]:
        client = self.connect(username)
        try:
            client.select(folder)
            _, data = client.uid("SEARCH", criteria)
            return [int(u) for u in data[0].split()]
        finally:
            client.logout()

    def folder_exists(self, username: str, folder: str) -> bool:
        client = self.connect(username)
        try:
            typ, _ = client.select(folder)
            return typ == "OK"
        finally:
            client.logout()

    def reset_uidvalidity(self, username: str, folder: str = "INBOX") -> None:
        """Give the folder a new UIDVALIDITY, its UIDs starting over, as a server does after a
        restore: a folder is deleted and made again; INBOX, which cannot be deleted, loses
        its index while the server is down."""
        if folder.upper() != "INBOX":
            client = self.connect(username)
            try:
                client.delete(folder)
                client.create(folder)
            finally:
                client.logout()
            return
        self.stop()
        home = self.dir / "mail" / username
        # A set: home/dovecot-uidlist matches both patterns.
        for index in {*home.glob("dovecot*"), *home.glob("**/dovecot-uidlist")}:
            index.unlink()
        self.start()

    # --- the server -------------------------------------------------------------------------

    def _write_users(self) -> None:
        # One file per user: Dovecot caches a passwd-file by its modification time, so a
        # user added to a shared file within the same second could go unseen.
        users = self.dir / "users"
        users.mkdir(exist_ok=True)
        for user, password in self.passwords.items():
            (users / user).write_text(f"{user}:{{PLAIN}}{password}::::::\n")

    def _config(self) -> str:
        d = self.dir
        oauth = ""
        mechanisms = "plain login"
        if self.introspection_url:
            mechanisms += " xoauth2 oauthbearer"
            (d / "oauth2.conf").write_text(
                f"introspection_url = {self.introspection_url}\n"
                "introspection_mode = post\n"
                "force_introspection = yes\n"
                "username_attribute = username\n"
                "active_attribute = active\n"
                "active_value = true\n"
            )
            oauth = (
                "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
                f"  args = {d}/oauth2.conf\n}}\n"
            )
        return f"""
protocols = imap
listen = {self.host}
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
ssl = yes
ssl_cert = <{self.cert_file}
ssl_key = <{self.key_file}
disable_plaintext_auth = no
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
mail_location = maildir:{d}/mail/%u
mailbox_idle_check_interval = 1 secs
default_internal_user = {self.user}
default_internal_group = {self.group}
default_login_user = {self.user}
first_valid_uid = 1
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {d}/users/%u
}}
{oauth}userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={d}/mail/%u
}}
# No growing delay after failed logins from one address (every test connects from
# 127.0.0.1, and tests of refused logins would slow down the ones after them).
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    user = {self.user}
  }}
  unix_listener stats-writer {{
    user = {self.user}
  }}
}}
"""

    def start(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir(exist_ok=True)
        if os.geteuid() == 0:
            for path in (self.dir / "mail", self.dir / "state"):
                shutil.chown(path, self.uid, self.gid)
        self._write_users()
        conf = self.dir / "dovecot.conf"
        conf.write_text(self._config())
        self._process = subprocess.Popen(
            [self.binary, "-F", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr.log", "ab"),  # noqa: SIM115
            start_new_session=True,  # its process group: stop() ends its sessions too
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"dovecot exited: {self.log()}")
            try:
                imaplib.IMAP4(self.host, self.port, timeout=1).logout()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start: {self.log()}")

    def stop(self) -> None:
        if self._process is None:
            return
        group = self._process.pid
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        # A login process proxying a TLS session can outlive the master, and its client
        # would never notice that the server went away: a stopped server has no sessions.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        # Its login and imap children go with it; wait until the port is free again.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                imaplib.IMAP4(self.host, self.port, timeout=0.5).logout()
                time.sleep(0.05)
            except OSError:
                return

    def kick(self, username: str) -> None:
        """Drop every connection of `username` (the server ends an IDLE, say)."""
        doveadm = shutil.which("doveadm") or str(Path(self.binary).with_name("doveadm"))
        conf = str(self.dir / "dovecot.conf")
        subprocess.run([doveadm, "-c", conf, "kick", username], check=False, capture_output=True)

    def log(self) -> str:
        parts = []
        for name in ("dovecot.log", "stderr.log"):
            path = self.dir / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)
