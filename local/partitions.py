"""moto's DynamoDB Query, made to read only the partition it asks for.

moto answers a Query on a table's own key by listing every item of the table, sorting them
all, and keeping the partition's: each Query costs the whole table. Evaluate queries a
person's history for most events, so the local stack slowed as its table grew: after a
minute of load (about 10,000 items) a Query took about a second, and draining that
minute's events had not finished after 20 minutes (8.5 minutes now, the clock's 8 days
included). DynamoDB reads the one partition; so does this.

While a base-table Query with a partition key runs, ``Table.all_items`` (which the Query
calls) yields that partition's items only, in sort-key order: the same items the Query's
own filter would keep, in the order its sort would give. Index queries, scans and every
other caller of ``all_items`` are untouched. The partition is noted per thread: moto's
threaded server answers several requests at once.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["queries_read_one_partition"]

_querying = threading.local()


def queries_read_one_partition() -> None:
    import moto.dynamodb.models.table as table_models

    table_class: Any = table_models.Table
    if getattr(table_class, "_reads_one_partition", False):
        return  # installed already (a second stack in this process)
    whole_table_query = table_class.query
    every_item = table_class.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return whole_table_query(self, hash_key, *args, **kwargs)
        _querying.partition = (self, hash_key)
        try:
            return whole_table_query(self, hash_key, *args, **kwargs)
        finally:
            _querying.partition = None

    def all_items(self: Any) -> list[Any]:
        asked = getattr(_querying, "partition", None)
        if asked is None or asked[0] is not self:
            return list(every_item(self))
        partition = self.items.get(asked[1], {})  # .get: the defaultdict gains no key
        return sorted(partition.values(), key=lambda item: item.range_key)

    table_class.query = query
    table_class.all_items = all_items
    table_class._reads_one_partition = True
