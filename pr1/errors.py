"""User-facing errors, and the one place that turns an error the user can fix into one line.

A Pr1Error carries its own message (the file, line, flag or key, and what was expected). I/O and decoding
errors raised anywhere below a command (a missing or unreadable file, a folder where a file was expected, a
full disk, bytes that are not UTF-8) are the user's to fix too: `user_message` words them the same way, so
`pr1.cli.main` prints `error: <message>` for all of them. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import re


class Pr1Error(Exception):
    """A user-facing error: bad input, a missing file or package, an impossible option."""


# errno -> what the user reads after the path
_OS_REASONS = {
    errno.ENOENT: "no such file or folder",
    errno.EISDIR: "is a folder, expected a file",
    errno.ENOTDIR: "expected a folder, but a part of this path is a file",
    errno.EEXIST: "already exists",
    errno.ENOTEMPTY: "folder is not empty",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
    errno.EIO: "input/output error",
    errno.EMFILE: "too many open files",
}


def os_reason(err: OSError) -> str:
    """What went wrong, in words: "permission denied", "no space left on the device", ..."""
    return _OS_REASONS.get(err.errno, err.strerror or type(err).__name__)  # type: ignore[arg-type]


def os_message(err: OSError) -> str:
    """`PATH: reason` for an OSError (both paths of a failed rename or copy)."""
    where = [str(p) for p in (err.filename, err.filename2) if p is not None]
    return f"{' -> '.join(where)}: {os_reason(err)}" if where else os_reason(err)


def decode_message(err: UnicodeDecodeError, where: str = "input") -> str:
    """`WHERE: not UTF-8 text (byte 0xff at position 43)`."""
    byte = err.object[err.start : err.start + 1]
    return f"{where}: not UTF-8 text (byte 0x{byte.hex()} at position {err.start})"


# Rust-backed libraries (safetensors, tokenizers) report an I/O error as "... (os error 28)"
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)")
_RUST_LIBRARIES = ("safetensors", "tokenizers")


def user_message(err: BaseException) -> str | None:
    """The one-line message for an error the user can fix (a Pr1Error, an I/O error with an errno, also from
    safetensors or tokenizers, a decoding error), or None for anything else (a bug: it keeps its traceback)."""
    if isinstance(err, Pr1Error):
        return str(err)
    if isinstance(err, OSError) and err.errno is not None:
        return os_message(err)
    if isinstance(err, UnicodeDecodeError):
        return decode_message(err)
    rust = _RUST_OS_ERROR.search(str(err))
    if rust and type(err).__module__.startswith(_RUST_LIBRARIES):
        code = int(rust.group(1))
        library = type(err).__module__.split(".")[0]
        return f"{library} could not read or write a file: {os_reason(OSError(code, os.strerror(code)))}"
    return None
