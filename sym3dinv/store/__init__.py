"""The Parquet-indexed run store (DESIGN.md "The run store"); knows only schemas and fsspec, never models."""

from sym3dinv.store.ids import item_id_from_bytes, item_id_from_stream, item_id_from_uri, validate_item_id
from sym3dinv.store.index import CompactResult, IndexWriter
from sym3dinv.store.items import CommittedItem, ItemWriter, input_outputs
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
    "failure_row",
    "input_outputs",
    "item_id_from_bytes",
    "item_id_from_stream",
    "item_id_from_uri",
    "validate_item_id",
]
