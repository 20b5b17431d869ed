"""A batch in Redis: the work stream (consumer group ``BATCH_GROUP``), the items, the done set, the retries.

::

    create   HSET batch:{id} (counters), HSET batch:{id}:items (item JSON), XADD batch:work {batch, item, attempt}
    take     XAUTOCLAIM entries idle past ``claim_idle_seconds`` (a dead worker's), else XREADGROUP new ones
    finish   one script: SADD batch:{id}:done item → only the first time: XADD the result rows, count done/failed
             (and the batch "done" when all are); XACK always.  A redelivered item that is already in the done
             set is acknowledged without calling the payer again.
    retry    the payer was down: ZADD batch:retry (due time) and XACK, so the worker goes on with other payers;
    promote  a script moves due retries back onto the work stream (ZREM first: one worker promotes each)

Values are JSON; keys hold only our batch and item ids.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from eligibility_svc.batch.models import BatchItem, BatchProgress, BatchSpec, ItemResult
from eligibility_svc.redis_keys import BATCH_GROUP, RedisKeys

CHUNK = 500

_FINISH = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  for i = 6, #ARGV do redis.call('XADD', KEYS[3], '*', 'r', ARGV[i]) end
  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
  local done = tonumber(redis.call('HGET', KEYS[2], 'done') or '0')
  local failed = tonumber(redis.call('HGET', KEYS[2], 'failed') or '0')
  local items = tonumber(redis.call('HGET', KEYS[2], 'items') or '0')
  if done + failed >= items then redis.call('HSET', KEYS[2], 'state', 'done', 'finished_at', ARGV[5]) end
end
redis.call('XACK', KEYS[4], ARGV[2], ARGV[3])
return 1
"""

_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local batch, item, attempt = string.match(member, '^([^|]+)|([^|]+)|([^|]+)$')
    redis.call('XADD', KEYS[2], '*', 'batch', batch, 'item', item, 'attempt', attempt)
    redis.call('HINCRBY', ARGV[3] .. batch, 'retrying', -1)
    moved = moved + 1
  end
end
return moved
"""


def queue_redis(url: str, *, max_connections: int = 64) -> Redis:
    """The batch queue's client: blocking reads (socket timeout above the XREADGROUP block) and a pool
    that makes a caller wait for a free connection rather than fail when hundreds of items are in flight."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=30, socket_timeout=10.0, socket_connect_timeout=2.0
    )
    return Redis(connection_pool=pool)


def new_batch_id() -> str:
    return "b" + uuid.uuid4().hex[:20]


@dataclass(frozen=True, slots=True)
class WorkEntry:
    entry_id: str
    batch_id: str
    item_id: str
    attempt: int  # 1 for the first try


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _entries(messages: Any) -> list[WorkEntry]:
    found = []
    for entry_id, fields in messages or []:
        if not fields:
            continue  # deleted while pending
        data = {_text(k): _text(v) for k, v in fields.items()}
        if "batch" in data and "item" in data:
            found.append(WorkEntry(_text(entry_id), data["batch"], data["item"], int(data.get("attempt", "1"))))
    return found


class BatchQueue:
    """One Redis holding batches for any number of worker processes (see the module docstring)."""

    def __init__(self, redis: Redis, keys: RedisKeys, *, ttl_seconds: int = 7 * 24 * 3600) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl = ttl_seconds
        self._finish = redis.register_script(_FINISH)
        self._promote = redis.register_script(_PROMOTE)

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.batch_work, BATCH_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --- the API and CLI: create, progress, results --------------------------------------------------

    async def create(
        self,
        spec: BatchSpec,
        items: Sequence[BatchItem],
        rows: int,
        row_errors: Sequence[ItemResult],
        *,
        batch_id: str | None = None,
    ) -> str:
        """Store a batch and put its items on the work stream; returns its id."""
        batch_id = batch_id or new_batch_id()
        await self.ensure_group()
        meta = self.keys.batch(batch_id)
        state = "running" if items else "done"
        now = str(time.time())
        fields: dict[FieldT, EncodableT] = {
            "state": state,
            "spec": spec.model_dump_json(),
            "items": len(items),
            "rows": rows,
            "row_errors": len(row_errors),
            "done": 0,
            "failed": 0,
            "retrying": 0,
            "created_at": now,
        }
        if not items:
            fields["finished_at"] = now
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(meta, mapping=fields)
            for error in row_errors:
                pipe.xadd(self.keys.batch_results(batch_id), {"r": error.model_dump_json()})
            for key in (meta, self.keys.batch_results(batch_id)):
                pipe.expire(key, self.ttl)
            await pipe.execute()
        for start in range(0, len(items), CHUNK):
            await self._enqueue(batch_id, items[start : start + CHUNK])
        return batch_id

    async def _enqueue(self, batch_id: str, items: Sequence[BatchItem]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.batch_items(batch_id), mapping={i.item_id: i.model_dump_json() for i in items})
            pipe.expire(self.keys.batch_items(batch_id), self.ttl)
            for item in items:
                pipe.xadd(self.keys.batch_work, {"batch": batch_id, "item": item.item_id, "attempt": "1"})
            await pipe.execute()

    async def progress(self, batch_id: str) -> BatchProgress | None:
        data = {_text(k): _text(v) for k, v in (await self.redis.hgetall(self.keys.batch(batch_id))).items()}
        if not data:
            return None
        spec = BatchSpec.model_validate_json(data["spec"])
        numbers = {
            name: int(data.get(name, "0")) for name in ("items", "rows", "row_errors", "done", "failed", "retrying")
        }
        finished = data.get("finished_at")
        return BatchProgress(
            batch_id=batch_id,
            state=data["state"],
            source=spec.source,
            created_at=float(data["created_at"]),
            finished_at=float(finished) if finished else None,
            **numbers,
        )

    async def spec(self, batch_id: str) -> BatchSpec | None:
        raw = await self.redis.hget(self.keys.batch(batch_id), "spec")
        return BatchSpec.model_validate_json(raw) if raw else None

    async def results(self, batch_id: str, *, chunk: int = CHUNK) -> AsyncIterator[ItemResult]:
        """Every result row so far, in completion order, read a chunk at a time."""
        start = "-"
        while True:
            entries: Any = await self.redis.xrange(self.keys.batch_results(batch_id), start, "+", count=chunk)
            for entry_id, fields in entries:
                yield ItemResult.model_validate_json(fields.get(b"r", fields.get("r")))
                start = "(" + _text(entry_id)
            if len(entries) < chunk:
                return

    # --- the workers ------------------------------------------------------------------------------------

    async def take(self, consumer: str, count: int, *, claim_idle_seconds: float, block_ms: int) -> list[WorkEntry]:
        """Entries to work on: a dead worker's first (idle past the timeout), else new ones."""
        claimed = await self.redis.xautoclaim(
            self.keys.batch_work, BATCH_GROUP, consumer, int(claim_idle_seconds * 1000), start_id="0-0", count=count
        )
        stale = _entries(claimed[1] if len(claimed) > 1 else [])
        if stale:
            return stale
        answer: Any = await self.redis.xreadgroup(
            BATCH_GROUP, consumer, {self.keys.batch_work: ">"}, count=count, block=block_ms
        )
        return [entry for _, messages in answer or [] for entry in _entries(messages)]

    async def item(self, entry: WorkEntry) -> BatchItem | None:
        raw = await self.redis.hget(self.keys.batch_items(entry.batch_id), entry.item_id)
        return BatchItem.model_validate_json(raw) if raw else None

    async def is_done(self, entry: WorkEntry) -> bool:
        member: Any = self.redis.sismember(self.keys.batch_done(entry.batch_id), entry.item_id)
        return bool(await member)

    async def finish(self, entry: WorkEntry, rows: Iterable[ItemResult], *, failed: bool) -> None:
        """Store the item's rows once (see the module docstring) and acknowledge the entry."""
        done_key = self.keys.batch_done(entry.batch_id)
        await self._finish(
            keys=[
                done_key,
                self.keys.batch(entry.batch_id),
                self.keys.batch_results(entry.batch_id),
                self.keys.batch_work,
            ],
            args=[
                entry.item_id,
                BATCH_GROUP,
                entry.entry_id,
                "failed" if failed else "done",
                str(time.time()),
                *(row.model_dump_json() for row in rows),
            ],
        )
        await self.redis.expire(done_key, self.ttl)

    async def acknowledge(self, entry: WorkEntry) -> None:
        await self.redis.xack(self.keys.batch_work, BATCH_GROUP, entry.entry_id)

    async def retry_later(self, entry: WorkEntry, delay: float) -> None:
        """The payer was down: the item runs again after ``delay`` seconds; the entry is acknowledged."""
        member = f"{entry.batch_id}|{entry.item_id}|{entry.attempt + 1}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys.batch_retry, {member: time.time() + delay})
            pipe.hincrby(self.keys.batch(entry.batch_id), "retrying", 1)
            pipe.xack(self.keys.batch_work, BATCH_GROUP, entry.entry_id)
            await pipe.execute()

    async def promote_due(self, limit: int = 500) -> int:
        """Move retries that are due back onto the work stream."""
        moved = await self._promote(
            keys=[self.keys.batch_retry, self.keys.batch_work],
            args=[str(time.time()), str(limit), self.keys.batch("x")[:-1]],
        )
        return int(moved)

    async def next_due(self) -> float | None:
        """Seconds until the next retry is due (None: none waiting)."""
        first = await self.redis.zrange(self.keys.batch_retry, 0, 0, withscores=True)
        return max(0.0, float(first[0][1]) - time.time()) if first else None
