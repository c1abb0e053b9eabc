"""The filesystem blob store: content addressing, durability steps, cleanup."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from govmail.store import blobs as blob_module
from govmail.store.blobs import FileBlobStore


def test_put_is_content_addressed_and_stores_once(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    data = b"Subject: giay moi\r\n\r\nHop\r\n"
    key = store.put(data)
    assert key == hashlib.sha256(data).hexdigest()
    assert store.put(data) == key
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert files == [store.path(key)]
    assert store.get(key) == data
    assert store.path(key).stat().st_mode & 0o077 == 0


def test_keys_that_are_not_sha256_never_reach_the_filesystem(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    for bad in ("../../etc/passwd", "A" * 64, "abc"):
        with pytest.raises(FileNotFoundError):
            store.get(bad)
    store.delete("../../x")  # nothing happens


def test_a_failed_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FileBlobStore(tmp_path / "blobs")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blob_module.os, "fsync", full_disk)
    with pytest.raises(OSError):
        store.put(b"x" * 1000)
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []
    assert [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()] == []


def test_sweep_removes_only_old_leftovers(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "blobs")
    old = tmp_path / "blobs" / "tmp" / "old.partial"
    new = tmp_path / "blobs" / "tmp" / "new.partial"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert store.sweep_tmp() == 1
    assert not old.exists() and new.exists()
