"""Build-once dataset caches: a folder of files plus a ``manifest.json`` written last.

A cache folder is valid only when its manifest exists, names the same configuration key, and every file it
lists has the recorded size and SHA-256.  Files are written atomically (temp file beside the target, then
``os.replace``) and the manifest only after all of them, so a run interrupted at any point leaves a folder
that is detected as incomplete and rebuilt; a file truncated or edited afterwards is detected the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from snnta.util.io import write_json

MANIFEST = "manifest.json"
FORMAT = 1


def config_key(config: dict) -> str:
    """Short hex key (16 characters of SHA-256) of a JSON-able configuration, independent of key order."""
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside ``path`` for a writer that needs a file name (h5py, soundfile, numpy);
    on success fsync it and rename it over ``path``; on any error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def build_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive lock for building ``folder`` (a sibling ``.<name>.lock`` file, ``flock``).

    Parallel jobs that need the same cache wait here; the one that gets the lock first builds, the
    others then find a complete manifest.  Callers check again after acquiring it.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{folder.name}.lock", "a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX: no cross-process lock
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check(folder: str | os.PathLike, key: str) -> tuple[dict | None, str]:
    """``(manifest, "")`` if ``folder`` holds a complete cache for ``key``; else ``(None, reason)``."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        return None, f"no {MANIFEST} (never built, or the build was interrupted)"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return None, f"unreadable {path}: {e}"
    if manifest.get("key") != key or manifest.get("format") != FORMAT:
        return None, f"{path} belongs to another configuration"
    for name, info in manifest.get("files", {}).items():
        f = folder / name
        if not f.is_file():
            return None, f"{f} is missing"
        if f.stat().st_size != info.get("size"):
            return None, f"{f} has {f.stat().st_size} bytes, expected {info.get('size')} (truncated?)"
        if file_sha256(f) != info.get("sha256"):
            return None, f"{f} does not match its checksum"
    return manifest, ""


def ensure(folder: str | os.PathLike, key: str, build, label: str) -> None:
    """Call ``build()`` unless ``folder`` already holds a complete cache for ``key``.

    The check is repeated under :func:`build_lock`, so of several parallel jobs only the first builds.
    """
    if check(folder, key)[0] is not None:
        return
    with build_lock(folder):
        manifest, reason = check(folder, key)  # another job may have built it meanwhile
        if manifest is None:
            if Path(folder).exists():
                print(f"{label}: rebuilding {folder}: {reason}", file=sys.stderr)
            build()


def invalidate(folder: str | os.PathLike) -> None:
    """Remove the manifest (first step of a rebuild) and temp files left by interrupted writes."""
    folder = Path(folder)
    with contextlib.suppress(FileNotFoundError):
        (folder / MANIFEST).unlink()
    if folder.is_dir():
        for tmp in folder.rglob(".*.tmp"):
            with contextlib.suppress(OSError):
                tmp.unlink()


def commit(folder: str | os.PathLike, key: str, files: list[str], config: dict, **extra) -> dict:
    """Write the manifest for ``files`` (paths relative to ``folder``): the last step of a build."""
    folder = Path(folder)
    manifest = {"format": FORMAT, "key": key, "config": config,
                "files": {name: {"size": (folder / name).stat().st_size, "sha256": file_sha256(folder / name)}
                          for name in files}, **extra}
    write_json(folder / MANIFEST, manifest)
    return manifest
