"""Building the request desk for a process (the server, or one CLI command)."""

from __future__ import annotations

from pathlib import Path

from govmail.config import Config
from govmail.store.blobs import BlobStore, FileBlobStore
from govmail.store.database import Database
from govmail.workflows.requests import RequestDesk


def request_desk(db: Database, cfg: Config, blobs: BlobStore | None = None) -> RequestDesk:
    """The desk with the data directory's blobs, exporting each mailbox to
    ``[workflow] archive_dir`` before a deletion removes it (R9)."""
    store = blobs or FileBlobStore(cfg.blob_dir)

    async def archive(address: str) -> Path:
        from govmail.mailstore.archive import export_mailbox

        done = await export_mailbox(db, cfg, store, address, cfg.archive_dir)
        return done.path

    return RequestDesk(db, cfg, store, archive=archive)
