"""moto's server, with requests applied one at a time.

moto's TransactWriteItems copies the tables before it starts and puts the copy back when the
transaction is cancelled. With requests handled concurrently (moto_server's default), that restore
can undo a write another request has just committed, which DynamoDB never does: concurrency tests
would then fail on the emulator, not on the hub. Serialising requests gives them the isolation
DynamoDB guarantees, while connections are still accepted concurrently.

moto also keeps every model object it ever creates (each DynamoDB item, each table) in a list per
class, for its data-export API, which nothing here uses. TransactWriteItems deep-copies the whole
table each time, so those lists grow by the table's size on every transaction: a benchmark of a
few thousand assessments grew moto to 24 GB. The lists are emptied after each request.

That deep copy of the whole table, the transaction's rollback snapshot, also makes every
transaction cost time in proportion to the table's size. With requests applied one at a time, a
snapshot only needs the table's containers and the items the transaction names (moto updates items
in place); `cheap_snapshots` takes that instead. The rollback itself is moto's own, unchanged.

usage: python infra/moto_server.py HOST PORT
"""

import copy
import os
import sys
import threading
from collections import defaultdict

import moto.dynamodb.models as dynamodb_models
from moto.core.model_instances import reset_model_data
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple


def cheap_snapshots() -> None:
    """Makes TransactWriteItems snapshot only what its rollback can need (see above)."""
    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self, transact_items):
        keys: dict[str, list[dict]] = defaultdict(list)
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            key = op.get("Key") or op.get("Item")
            if op.get("TableName") and key:
                keys[op["TableName"]].append(key)

        def snapshot(table: Table) -> Table:
            copied = copy.copy(table)
            copied.items = defaultdict(dict)
            for hash_key, value in table.items.items():
                copied.items[hash_key] = dict(value) if isinstance(value, dict) else value
            for key in keys.get(table.name, []):
                if table.hash_key_attr not in key:
                    continue
                hash_key = DynamoType(key[table.hash_key_attr])
                range_key = None
                if table.range_key_attr:
                    if table.range_key_attr not in key:
                        continue
                    range_key = DynamoType(key[table.range_key_attr])
                item = table.get_item(hash_key, range_key) if hash_key in table.items else None
                if item is None:
                    continue
                if range_key is None:
                    copied.items[hash_key] = copy.deepcopy(item)
                else:
                    copied.items[hash_key][range_key] = copy.deepcopy(item)
            return copied

        class Copy:
            """moto's `copy` module during the call, with tables snapshotted as above."""

            @staticmethod
            def deepcopy(value, memo=None):
                if isinstance(value, Table):
                    return snapshot(value)
                return copy.deepcopy(value, memo)

            copy = staticmethod(copy.copy)

        dynamodb_models.copy = Copy
        try:
            return original(self, transact_items)
        finally:
            dynamodb_models.copy = copy

    DynamoDBBackend.transact_write_items = transact_write_items


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    cheap_snapshots()
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serialised(environ, start_response):
        with lock:
            # Materialise the body inside the lock: the work happens when it is iterated.
            body = list(app(environ, start_response))
            reset_model_data()
            return body

    run_simple(host, port, serialised, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
