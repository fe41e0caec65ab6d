"""Fetching published data files: large files streamed to disk with an MD5 check against the
publisher's checksum, and atomic writes, so that a failure never leaves a half-written file
where a loader would read it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from uqbench.data.paths import DataError

DOWNLOAD_TIMEOUT_S = 60
CHUNK_BYTES = 1 << 20
# What a failed request raises: no connection, HTTP errors, a dropped connection, a bad URL.
FETCH_ERRORS = (urllib.error.URLError, OSError, ValueError)


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to a temporary file beside ``path``, then rename it into place."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _stream(url: str, path: Path, timeout: float) -> tuple[str, str]:
    """Stream ``url`` into a new temporary file beside ``path``; return that file's name and the
    MD5 of its content. A failed transfer removes the temporary file and re-raises."""
    digest = hashlib.md5(usedforsecurity=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                while chunk := response.read(CHUNK_BYTES):
                    digest.update(chunk)
                    handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return tmp, digest.hexdigest()


def fetch_file(
    urls: Sequence[str],
    path: Path,
    *,
    md5: str | None = None,
    advice: str = "",
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> Path:
    """Download ``path`` from the first of ``urls`` (mirrors of one file) that works and, when
    ``md5`` is given, matches the publisher's checksum. The file appears only complete and
    checked (a dropped connection or a wrong checksum leaves nothing at ``path``). When every
    mirror fails, a :class:`DataError` lists what each one did, followed by ``advice``."""
    if not urls:
        raise DataError(f"no URL to download {path.name} from")
    path.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            tmp, got = _stream(url, path, timeout)
        except FETCH_ERRORS as err:
            failures.append(f"{url}: {err}")
            continue
        if md5 is not None and got != md5:
            os.unlink(tmp)
            failures.append(f"{url} gave MD5 {got}, but the published checksum is {md5}")
            continue
        os.replace(tmp, path)
        return path
    raise DataError(
        f"could not download {path.name} ({'; '.join(failures)}). Are you online? "
        + (advice or f"Copy the file to {path} by hand.")
    )
