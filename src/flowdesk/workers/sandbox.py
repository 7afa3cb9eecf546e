"""The Landlock sandbox of a `python` step worker (Linux 5.13 and later).

A worker calls `confine()` once, before it reads any step code. From then on
the kernel lets the worker, and every process it starts, read and execute only
beneath the files Python needs (its prefixes, the folders on `sys.path`, the
system libraries, and the few files in /etc that name resolution, TLS and time
zones read), write only in the worker's own temporary directory, and, from
Landlock ABI 6 on, neither signal nor reach the abstract UNIX sockets of
processes outside the sandbox, such as the server. Network access stays open:
flows call APIs.

The restriction cannot be lifted by the process once applied, and it is
applied with `PR_SET_NO_NEW_PRIVS`, so a set-user-id program cannot escape it.

This module imports only the standard library: the worker, which must not
import flowdesk, loads it by its file name; the pool imports it to probe the
kernel and to describe what is enforced. Kernel interface:
https://docs.kernel.org/userspace-api/landlock.html
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from collections.abc import Iterable
from typing import NamedTuple

MODES = ("required", "auto", "off")

# System call numbers; Landlock came after the architectures' tables were
# unified, so they are the same on x86_64, aarch64 and the other common ones.
_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1 << 0  # flag: return the ABI version, make nothing
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem access rights, with the ABI that introduced each. A right the
# ruleset handles is denied everywhere except beneath a rule that grants it.
ACCESS_EXECUTE = 1 << 0  # execve() a file
ACCESS_WRITE_FILE = 1 << 1  # open a file for writing
ACCESS_READ_FILE = 1 << 2  # open a file for reading
ACCESS_READ_DIR = 1 << 3  # list a directory
ACCESS_REMOVE_DIR = 1 << 4  # rmdir() or rename away a directory
ACCESS_REMOVE_FILE = 1 << 5  # unlink() or rename away a file
ACCESS_MAKE_CHAR = 1 << 6  # mknod() a character device
ACCESS_MAKE_DIR = 1 << 7  # mkdir()
ACCESS_MAKE_REG = 1 << 8  # create a regular file
ACCESS_MAKE_SOCK = 1 << 9  # bind a UNIX socket to a path
ACCESS_MAKE_FIFO = 1 << 10  # mkfifo()
ACCESS_MAKE_BLOCK = 1 << 11  # mknod() a block device
ACCESS_MAKE_SYM = 1 << 12  # symlink()
# ABI 2: link or rename a file into another directory. Without it (ABI 1) such
# moves are always refused, so a file outside cannot be hard-linked inside.
ACCESS_REFER = 1 << 13
# ABI 3: truncate() and open(O_TRUNC); before it, truncation is not checked.
ACCESS_TRUNCATE = 1 << 14
# ABI 5: ioctl() on character and block devices.
ACCESS_IOCTL_DEV = 1 << 15

# ABI 6 scopes: what the sandbox may not do to processes outside it.
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # connect to their abstract UNIX sockets
SCOPE_SIGNAL = 1 << 1  # send them signals (the server runs as the same user)

_ABI1_RIGHTS = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
_RIGHTS_BY_ABI = {
    1: _ABI1_RIGHTS,
    2: _ABI1_RIGHTS | ACCESS_REFER,
    3: _ABI1_RIGHTS | ACCESS_REFER | ACCESS_TRUNCATE,
    # ABI 4 added only network rights, which stay unhandled: steps may connect.
    4: _ABI1_RIGHTS | ACCESS_REFER | ACCESS_TRUNCATE,
}
_ALL_RIGHTS = _RIGHTS_BY_ABI[4] | ACCESS_IOCTL_DEV  # ABI 5 and later

# The only rights a rule on a file (not a directory) may grant.
_FILE_RIGHTS = (
    ACCESS_EXECUTE
    | ACCESS_WRITE_FILE
    | ACCESS_READ_FILE
    | ACCESS_TRUNCATE
    | ACCESS_IOCTL_DEV
)
READ = ACCESS_EXECUTE | ACCESS_READ_FILE | ACCESS_READ_DIR
WRITE = _ALL_RIGHTS  # everything, in the worker's temporary directory only

# System folders Python and its C libraries read from. On merged-/usr systems
# /lib, /lib64 and /bin are links into /usr; rules follow links to their target.
SYSTEM_TREES = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin")
# Name resolution, TLS certificates, time zones, the loader's cache and MIME
# types. Certificates are named folder by folder, so that /etc/ssl/private
# stays closed even to a worker running as root.
SYSTEM_FILES = (
    "/etc/ld.so.cache",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/mime.types",
    "/etc/ssl/certs",
    "/etc/ssl/cert.pem",
    "/etc/ssl/openssl.cnf",
    "/etc/pki/tls/certs",
    "/etc/pki/tls/cert.pem",
    "/etc/pki/tls/openssl.cnf",
    "/etc/pki/ca-trust/extracted",
    # CPU counts (os.cpu_count(), thread pools); public and read-only.
    "/sys/devices/system/cpu",
)
DEVICES = {
    # O_TRUNC and isatty()'s ioctl come with opening /dev/null for writing.
    "/dev/null": ACCESS_READ_FILE
    | ACCESS_WRITE_FILE
    | ACCESS_TRUNCATE
    | ACCESS_IOCTL_DEV,
    "/dev/zero": ACCESS_READ_FILE | ACCESS_IOCTL_DEV,
    "/dev/random": ACCESS_READ_FILE | ACCESS_IOCTL_DEV,
    "/dev/urandom": ACCESS_READ_FILE | ACCESS_IOCTL_DEV,
}


class Confinement(NamedTuple):
    """What a worker's sandbox enforces; `abi` 0 means nothing is."""

    mode: str = "auto"
    abi: int = 0
    problem: str = ""  # why nothing is enforced, when it is not
    scoped: bool = False  # signals and abstract UNIX sockets (ABI 6)
    dropped: tuple[str, ...] = ()  # allowed paths left out: they hold server files

    @property
    def enforced(self) -> bool:
        return self.abi > 0

    def gaps(self) -> list[str]:
        """What a step can still do that the sandbox would otherwise stop."""
        if not self.enforced:
            return [
                "read the data dir (the database and the secret key)",
                "read the server's /proc entries, such as its environment",
                "write wherever the server's user may",
                "signal the server",
            ]
        gaps = []
        if self.abi < 3:
            gaps.append("truncate files it cannot otherwise write (needs ABI 3)")
        if not self.scoped:
            gaps.append("signal the server (needs ABI 6, Linux 6.12)")
        return gaps

    def describe(self) -> str:
        """One line for the log: what is enforced, or why nothing is."""
        if not self.enforced:
            return f"not sandboxed: {self.problem}"
        text = (
            f"sandboxed by Landlock ABI {self.abi}: reads limited to Python's own"
            " files, writes to the worker's temporary directory"
        )
        if self.scoped:
            text += ", no signals to other processes"
        return text

    def as_json(self) -> dict[str, object]:
        return self._asdict()

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Confinement:
        known = {key: value for key, value in data.items() if key in cls._fields}
        known["dropped"] = tuple(known.get("dropped") or ())  # type: ignore[arg-type]
        return cls(**known)  # type: ignore[arg-type]


class _RulesetAttr(ctypes.Structure):
    # struct landlock_ruleset_attr; a kernel older than a field ignores it as
    # long as it is zero, so the full structure is always passed.
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # struct landlock_path_beneath_attr is packed
    _fields_ = (
        ("allowed_access", ctypes.c_uint64),
        ("parent_fd", ctypes.c_int32),
    )


_libc: ctypes.CDLL | None = None


def _syscall() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def landlock_abi() -> tuple[int, str]:
    """The kernel's Landlock ABI version, or 0 and why Landlock is unusable."""
    if not sys.platform.startswith("linux"):
        return 0, f"Landlock exists only on Linux, not on {sys.platform}"
    libc = _syscall()
    abi = int(libc.syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION))
    if abi > 0:
        return abi, ""
    code = ctypes.get_errno()
    if code == errno.ENOSYS:
        return 0, "the kernel has no Landlock (it needs Linux 5.13 or later)"
    if code == errno.EOPNOTSUPP:
        return 0, (
            "Landlock is built into the kernel but disabled (add landlock to the"
            " kernel's lsm= boot parameter)"
        )
    name = errno.errorcode.get(code, str(code))
    return 0, (
        f"the kernel refused Landlock ({name}); a container's seccomp profile may"
        " forbid its system calls"
    )


def handled_rights(abi: int) -> int:
    """The filesystem rights the running ABI knows; asking for more is EINVAL."""
    return _RIGHTS_BY_ABI.get(abi, _ALL_RIGHTS)


def allowed_paths(workdir: str) -> dict[str, int]:
    """Each path the worker may use and the rights granted beneath it, before
    the check against the server's files. Paths that do not exist are left out
    (a rule needs an open file), and links count as their targets."""
    reading = [
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        *sys.path,
        *SYSTEM_TREES,
        *SYSTEM_FILES,
    ]
    # A resolver that rewrites resolv.conf by renaming a new file over it would
    # leave a rule on the old file behind; where resolv.conf links into /run,
    # its whole folder is allowed instead.
    resolver = os.path.dirname(os.path.realpath("/etc/resolv.conf"))
    if resolver.startswith("/run/"):
        reading.append(resolver)
    # Its own /proc entry only (os.listdir("/proc/self/fd") and the like), not
    # the server's: /proc/<pid>/environ would show the server's environment.
    reading.append(f"/proc/{os.getpid()}")

    rules: dict[str, int] = {}
    for path in reading:
        _grant(rules, path, READ)
    for path, rights in DEVICES.items():
        _grant(rules, path, rights)
    _grant(rules, workdir, WRITE)
    return rules


def _grant(rules: dict[str, int], path: str, rights: int) -> None:
    if not path or not os.path.exists(path):
        return
    real = os.path.realpath(path)
    rules[real] = rules.get(real, 0) | rights


def without_protected(
    rules: dict[str, int], protected: Iterable[str]
) -> tuple[dict[str, int], list[str]]:
    """`rules` minus every path that is, or holds, a protected path (the data
    dir, the database file), and a sentence for each path left out."""
    guarded = [os.path.realpath(path) for path in protected if path]
    kept: dict[str, int] = {}
    dropped: list[str] = []
    for path, rights in rules.items():
        holding = next((item for item in guarded if _beneath(item, path)), None)
        if holding is None:
            kept[path] = rights
        else:
            dropped.append(f"{path} (it holds {holding})")
    return kept, dropped


def _beneath(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def confine(mode: str, workdir: str, protected: Iterable[str]) -> Confinement:
    """Restrict this process for good, as far as the kernel allows; the result
    says what is enforced. Raises OSError when a ruleset the kernel accepted
    could not be applied (the caller decides whether to go on without)."""
    if mode == "off":
        return Confinement(mode, problem="the sandbox is turned off")
    abi, problem = landlock_abi()
    if abi == 0:
        return Confinement(mode, problem=problem)

    rules, dropped = without_protected(allowed_paths(workdir), protected)
    handled = handled_rights(abi)
    # ABI 6 scopes keep the step from signalling the server or reaching its
    # abstract UNIX sockets; the worker's own children are inside the sandbox.
    scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0

    libc = _syscall()
    attr = _RulesetAttr(handled_access_fs=handled, handled_access_net=0, scoped=scoped)
    ruleset = int(
        libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0)
    )
    if ruleset < 0:
        raise _os_error("landlock_create_ruleset")
    try:
        for path, rights in rules.items():
            _add_rule(libc, ruleset, path, rights & handled)
        # Required by landlock_restrict_self() for an unprivileged process, and
        # keeps set-user-id programs the step might run from gaining rights.
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise _os_error("prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
            raise _os_error("landlock_restrict_self")
    finally:
        os.close(ruleset)
    return Confinement(mode, abi=abi, scoped=bool(scoped), dropped=tuple(dropped))


def _add_rule(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    try:
        descriptor = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # gone since it was listed; nothing to allow
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        if not rights:
            return
        attr = _PathBeneathAttr(allowed_access=rights, parent_fd=descriptor)
        result = libc.syscall(
            _SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(attr), 0
        )
        if result != 0:
            raise _os_error(f"landlock_add_rule for {path}")
    finally:
        os.close(descriptor)


def _os_error(call: str) -> OSError:
    code = ctypes.get_errno()
    return OSError(code, f"{call} failed: {os.strerror(code)}")
