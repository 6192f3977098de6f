"""Writing files safely: folders that say why they cannot be made, atomic replacement, one writer per output.

- `make_folder`: a folder (and its parents), or a one-line error naming the part of the path that is a file
  or cannot be created.
- `write_bytes_atomic` / `write_text_atomic`: a temporary file beside the target, renamed over it, so a reader
  (or a run that is killed, or a full disk) never leaves half a file; the temporary file is removed when
  anything fails, and the file gets the user's umask like any other new file.
- `WriterLock`: an exclusive lock file (`flock`) holding the owner's pid and host, so two pr1 processes never
  write one output at once. The kernel drops the lock when its process ends, however it ends (kill -9
  included), so a lock file left by a dead writer is simply taken over.

Standard library only (the dashboard and the CLI use it without torch)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import secrets
import time
from pathlib import Path

from pr1.errors import Pr1Error, os_reason

try:
    import fcntl
except ImportError:  # pragma: no cover - not Linux or macOS: no locking
    fcntl = None  # type: ignore[assignment]


def make_folder(path: str | Path) -> Path:
    """`path` as an existing folder (created with its parents); a Pr1Error names a part of the path that is a
    file, or why the folder cannot be made."""
    path = Path(path)
    if path.is_dir():
        return path
    for part in (path, *path.parents):
        if part.exists() and not part.is_dir():
            raise Pr1Error(f"{part}: is a file, expected a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Pr1Error(f"{path}: cannot create the folder ({os_reason(e)})") from e
    return path


def not_writable_reason(folder: Path) -> str:
    """Why `folder` cannot be written: a read-only file system, or permissions."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    return "read-only file system" if read_only else "permission denied"


def _open_new_beside(path: Path) -> tuple[int, Path]:
    """A new file beside `path`, opened for writing. Made with mode 0o666 so that the umask applies (as for any
    new file); `tempfile.mkstemp` would make it 0o600."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666
            ), tmp
        except FileExistsError:
            continue
    raise Pr1Error(f"{path}: cannot make a temporary file beside it")  # pragma: no cover


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically: readers see the old file or the new one, never half of one. On any
    failure (a full disk, a read-only folder, Ctrl-C) the temporary file is removed and `path` is unchanged;
    an I/O error becomes a Pr1Error naming `path`."""
    path = Path(path)
    make_folder(path.parent)
    if path.is_dir():
        raise Pr1Error(f"{path}: is a folder, expected a file")
    tmp: Path | None = None
    try:
        fd, tmp = _open_new_beside(path)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise Pr1Error(f"{path}: cannot write ({os_reason(e)})") from e
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> None:
    """`write_bytes_atomic` of `text` in UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"))


class WriterLock:
    """The one writer of an output: an exclusive `flock` on the file `path`, which holds the owner's pid, host
    and start time. `acquire` refuses (Pr1Error) while another process holds it; `release` (or the end of the
    process) frees it. On a file system without locks the lock is a no-op."""

    def __init__(self, path: Path, fd: int | None):
        self.path, self._fd = path, fd

    @classmethod
    def acquire(cls, path: str | Path, what: str) -> WriterLock:
        """Take the lock file `path` for writing `what` (named in the refusal: "runs/x", "out.jsonl")."""
        path = Path(path)
        make_folder(path.parent)
        if fcntl is None:  # pragma: no cover
            return cls(path, None)
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            except OSError as e:
                raise Pr1Error(f"{what}: cannot take the writer lock {path.name} ({os_reason(e)})") from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _owner(fd)
                os.close(fd)
                raise Pr1Error(
                    f"{what}: another pr1 process is writing it{owner}; wait for it to end, or choose another "
                    "--out"
                ) from None
            except OSError as e:
                if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    os.close(fd)  # this file system has no locks: go on without one
                    return cls(path, None)
                os.close(fd)
                raise
            # the holder before us may have removed the file after we opened it: lock the file that is there
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        record = {"pid": os.getpid(), "host": platform.node(), "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        """Free the lock (and remove its file); a no-op when already released."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still holding it: whoever opens the path next gets a new file
        os.close(fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)  # not `release`: at interpreter exit the path may belong to a new writer


def _owner(fd: int) -> str:
    """ " (pid 123 on host gpu1, since 12:03:04)" from a lock file's record, or "" when unreadable."""
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        pid, host, since = record["pid"], record["host"], float(record["since"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return f" (pid {pid} on host {host}, since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(since))})"
