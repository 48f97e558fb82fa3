"""moto_server with two of its emulation costs cut; what it answers is unchanged.

* DynamoDB TransactWriteItems: moto deep-copies every table a transaction names before it
  starts, to put the whole table back if the transaction is cancelled. That copy grows with the
  table (a 200-target release job copies a table of about a thousand items per transition).
  Here only the items the transaction names are copied, and only they are put back: they are
  the only items a transaction can change.
* EventBridge PutEvents: moto parses the target's input paths (JSONPath) anew for every event
  and target, building the parser's tables each time. The parsed expressions are kept.

And one fidelity fix: moto's threaded server runs DynamoDB requests concurrently without a
lock, so two concurrent updates of one item can lose one (`ADD n :1` twice adding one), which
DynamoDB never does. DynamoDB requests are served one at a time here.

Run as `python scripts/moto_server.py <moto_server arguments>`.
"""

import copy
import functools
import sys
import threading

import jsonpath_ng.ext
import moto.dynamodb.models as dynamodb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_deepcopy = copy.deepcopy


class _TableCopyIsTheTable:
    """`copy` as moto.dynamodb.models sees it: a Table "copy" is the table itself (the
    transaction below snapshots its items instead); everything else is copied as before."""

    @staticmethod
    def deepcopy(value, memo=None):
        if isinstance(value, Table):
            return value
        return _deepcopy(value, memo)

    def __getattr__(self, name):
        return getattr(copy, name)


dynamodb_models.copy = _TableCopyIsTheTable()

_transact_write_items = DynamoDBBackend.transact_write_items


def _snapshot(backend, transact_items):
    taken = []
    for entry in transact_items[:100]:
        try:
            _, op = next(iter(entry.items()))
            table = backend.get_table(op["TableName"])
            key = op.get("Key") or op["Item"]
            hash_value = DynamoType(key[table.hash_key_attr])
            range_value = (
                DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
            )
            current = table.get_item(hash_value, range_value)
            taken.append((table, hash_value, range_value, _deepcopy(current)))
        except Exception:  # noqa: BLE001 - moto's own validation answers the bad request
            continue
    return taken


def _restore(taken):
    for table, hash_value, range_value, item in reversed(taken):
        if range_value is not None:
            if item is None:
                table.items.get(hash_value, {}).pop(range_value, None)
            else:
                table.items[hash_value][range_value] = item
        elif item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item


def transact_write_items(self, transact_items):
    taken = _snapshot(self, transact_items)
    try:
        return _transact_write_items(self, transact_items)
    except Exception:
        _restore(taken)
        raise


DynamoDBBackend.transact_write_items = transact_write_items

_dynamodb_lock = threading.Lock()
_call_action = DynamoHandler.call_action


def call_action(self):
    with _dynamodb_lock:
        return _call_action(self)


DynamoHandler.call_action = call_action

jsonpath_ng.ext.parse = functools.lru_cache(maxsize=256)(jsonpath_ng.ext.parse)

if __name__ == "__main__":
    sys.exit(main())
