"""The parse cache: columns saved as ``.npy`` files under a key made of a SHA-256 hash of the
files' bytes, written atomically, healed when damaged, bounded in size."""

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from . import _parsing

# The cache: entries are folders named after the files and a hash of their bytes.
_CACHE_VERSION = 2
MAX_ENTRIES = 16
MAX_BYTES = 16 * 2**30
_HASH_CHUNK = 1 << 24


# ----------------------------------------------------------------------------- cache
def cache_dir(cache):
    if cache is False or cache is None:
        return None
    if cache is not True:
        return Path(cache)
    if "FUNKSGD_CACHE_DIR" in os.environ:
        return Path(os.environ["FUNKSGD_CACHE_DIR"])
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "funksgd"


def file_digest(path):
    """SHA-256 of the file's bytes (about 1 GB/s: see benchmarks/README.md)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(paths, format, columns, digests):
    """A folder name that changes when the bytes of any file change (not their path)."""
    key = json.dumps([_CACHE_VERSION, format, columns, digests])
    return f"{paths[0].stem}-{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def sources(paths, format, columns):
    """What an entry was read from: a newer entry of the same sources replaces it."""
    return {"paths": [str(p.resolve()) for p in paths], "format": format, "columns": columns}


def load_entry(entry):
    """The columns of a cache entry, memory-mapped; None if absent, damaged or unreadable."""
    if not entry.is_dir():
        return None
    try:
        columns = tuple(np.load(entry / f"{name}.npy", mmap_mode="r") for name in _parsing.COLUMNS)
        users, items, ratings = columns
        if not (
            users.ndim == items.ndim == ratings.ndim == 1
            and len(users) == len(items) == len(ratings) > 0
            and users.dtype.kind == items.dtype.kind == "i"
            and ratings.dtype == np.float32
        ):
            raise ValueError("not the columns of a ratings file")
    except (OSError, ValueError, EOFError):  # truncated, another user's, half deleted...
        shutil.rmtree(entry, ignore_errors=True)  # parsed again, and written anew if it went
        return None
    try:
        os.utime(entry)  # recently used: pruned last
    except OSError:
        pass
    return columns


def save_entry(entry, columns, sources):
    """Write the columns to ``entry`` atomically, then prune; a cache that cannot be
    written is skipped."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".partial-"))
    except OSError:
        return
    try:
        for name, values in zip(_parsing.COLUMNS, columns, strict=True):
            np.save(tmp / f"{name}.npy", values)
        (tmp / "sources.json").write_text(json.dumps(sources))
        os.replace(tmp, entry)
    except OSError:  # another process won the race, a damaged entry remains, disk full
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune_cache(entry, sources)


def _prune_cache(keep, sources):
    """Remove the entries of older versions of the same files, then the least recently
    used beyond MAX_ENTRIES or MAX_BYTES (never ``keep``)."""
    entries = []
    try:
        children = list(keep.parent.iterdir())
    except OSError:
        return
    for child in children:
        try:
            if child.name.startswith(".partial-"):
                if time.time() - child.stat().st_mtime > 86400:  # a crashed writer's
                    shutil.rmtree(child, ignore_errors=True)
                continue
            if child == keep or not (child / "sources.json").is_file():
                continue
            if json.loads((child / "sources.json").read_text()) == sources:
                shutil.rmtree(child, ignore_errors=True)  # the same files, since changed
                continue
            size = sum(f.stat().st_size for f in child.iterdir())
            entries.append((child.stat().st_mtime, size, child))
        except (OSError, ValueError):
            continue
    entries.sort(reverse=True)  # newest first
    try:
        total = sum(f.stat().st_size for f in keep.iterdir())
    except OSError:
        total = 0
    for count, (_, size, child) in enumerate(entries, start=2):
        total += size
        if count > MAX_ENTRIES or total > MAX_BYTES:
            shutil.rmtree(child, ignore_errors=True)
