"""The Parquet-indexed run store (DESIGN.md "The run store"); knows only schemas and fsspec, never models.

Layers, bottom up: ``ids`` (item ids, safe paths), ``layout`` (folder, output and view names), ``retry``,
``schema`` (the index row), ``root`` (:class:`StoreRoot`: URL -> filesystem, atomic writes, listings,
masking, storage options), ``items`` and ``index`` (write through a root), ``query`` (Arrow queries) and
``store`` (:class:`RunStore`, the facade). docs/store.md describes the layout on disk.
"""

from sym3dinv.store.ids import item_id_from_bytes, item_id_from_stream, item_id_from_uri, validate_item_id
from sym3dinv.store.index import CompactResult, IndexWriter
from sym3dinv.store.items import CommittedItem, ItemWriter
from sym3dinv.store.layout import input_outputs
from sym3dinv.store.root import StoreRoot, mask_secrets, storage_options
from sym3dinv.store.schema import INDEX_SCHEMA, SCHEMA_VERSION, IndexRow, Status, failure_row
from sym3dinv.store.store import RunStore

__all__ = [
    "INDEX_SCHEMA",
    "SCHEMA_VERSION",
    "CommittedItem",
    "CompactResult",
    "IndexRow",
    "IndexWriter",
    "ItemWriter",
    "RunStore",
    "Status",
    "StoreRoot",
    "failure_row",
    "input_outputs",
    "item_id_from_bytes",
    "item_id_from_stream",
    "item_id_from_uri",
    "mask_secrets",
    "storage_options",
    "validate_item_id",
]
