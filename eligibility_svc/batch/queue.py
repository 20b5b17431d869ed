"""A batch in Redis: the work stream (consumer group ``BATCH_GROUP``), the items, the done set, the retries.

::

    plan     ``BatchPlanner``: rows a chunk at a time; each question's item found through batch:{id}:planning
             (HMAC → item id) and extended, or made; HSET batch:{id}:items; bad rows XADD to the results
    commit   XADD batch:work {batch, item, attempt} for every item, then the counters and state "running"
    create   both at once for items planned beforehand (``plan.plan_items``)
    take     XAUTOCLAIM entries idle past ``claim_idle_seconds`` (a dead worker's), else XREADGROUP new ones
    pending  SISMEMBER batch:{id}:done and HGET batch:{id}:items in one pipeline: done already, or the item
    finish   one script: SADD batch:{id}:done item → only the first time: XADD the result rows, count done/failed
             (and the batch "done" when all are); EXPIRE of the done set and XACK always.  A redelivered item
             that is already in the done set is acknowledged without calling the payer again.
    retry    the payer was down: ZADD batch:retry (due time) and XACK, so the worker goes on with other payers;
    promote  a script moves due retries back onto the work stream (ZREM first: one worker promotes each)

Items and result rows are JSON sealed by the cache's ``ValueCodec`` (AES-GCM when ``cache.encryption_key``
is set: items hold names, birth dates and member ids); keys hold only our batch and item ids.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from eligibility_svc.batch.models import AppointmentRow, BatchItem, BatchProgress, BatchSpec, ItemResult
from eligibility_svc.batch.plan import Group, group_rows, item_id
from eligibility_svc.cache import ValueCodec, WaitingConnectionPool
from eligibility_svc.models import model_json
from eligibility_svc.redis_keys import BATCH_GROUP, RedisKeys
from eligibility_svc.redis_pipeline import pipelined
from eligibility_svc.settings import Settings

CHUNK = 500
_BATCH_ID = re.compile(r"^b[0-9a-f]{20}$")  # new_batch_id()

_FINISH = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  for i = 7, #ARGV do redis.call('XADD', KEYS[3], '*', 'r', ARGV[i]) end
  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
  local done = tonumber(redis.call('HGET', KEYS[2], 'done') or '0')
  local failed = tonumber(redis.call('HGET', KEYS[2], 'failed') or '0')
  local items = tonumber(redis.call('HGET', KEYS[2], 'items') or '0')
  local state = redis.call('HGET', KEYS[2], 'state')
  if state == 'running' and done + failed >= items then
    redis.call('HSET', KEYS[2], 'state', 'done', 'finished_at', ARGV[5])
  end
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('XACK', KEYS[4], ARGV[2], ARGV[3])
return 1
"""

# The planner's last step: the counters, and "running" (or "done" when the items finished meanwhile).
_COMMIT = """
redis.call('HSET', KEYS[1], 'items', ARGV[1], 'rows', ARGV[2], 'row_errors', ARGV[3], 'first_day', ARGV[4])
local done = tonumber(redis.call('HGET', KEYS[1], 'done') or '0')
local failed = tonumber(redis.call('HGET', KEYS[1], 'failed') or '0')
if done + failed >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'done', 'finished_at', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'state', 'running')
end
redis.call('DEL', KEYS[2])
return 1
"""

# Keep the lease on entries a worker still works on (XCLAIM resets their idle time), only while it owns them.
_HEARTBEAT = """
local kept = 0
for i = 1, #ARGV - 2 do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[#ARGV - 1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[#ARGV] then
    redis.call('XCLAIM', KEYS[1], ARGV[#ARGV - 1], ARGV[#ARGV], 0, ARGV[i], 'JUSTID')
    kept = kept + 1
  end
end
return kept
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
    pool = WaitingConnectionPool.from_url(
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


def batched(values: Iterable[str], size: int) -> Iterator[list[str]]:
    """``values`` in lists of ``size`` (the last one shorter)."""
    rest = iter(values)
    while chunk := list(islice(rest, size)):
        yield chunk


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value


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

    def __init__(
        self, redis: Redis, keys: RedisKeys, *, codec: ValueCodec | None = None, ttl_seconds: int = 7 * 24 * 3600
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.codec = codec or ValueCodec()
        self.ttl = ttl_seconds
        self._commands = pipelined(redis)  # the per-item calls share event-loop turns
        self._finish = redis.register_script(_FINISH)
        self._promote = redis.register_script(_PROMOTE)
        self._commit = redis.register_script(_COMMIT)
        self._heartbeat = redis.register_script(_HEARTBEAT)

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> BatchQueue:
        """The queue as configured: key prefix, the cache's value codec, the results' TTL."""
        return cls(
            redis,
            RedisKeys(settings.redis_key_prefix),
            codec=ValueCodec.from_settings(settings.cache),
            ttl_seconds=settings.batch.results_ttl_seconds,
        )

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.batch_work, BATCH_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # --- sealed values ---------------------------------------------------------------------------------

    def seal_item(self, batch_id: str, item: BatchItem) -> bytes:
        key = f"{self.keys.batch_items(batch_id)}/{item.item_id}"  # bound to its item: no swapping
        return self.codec.encode(key, model_json(item), time.time())

    def open_item(self, batch_id: str, item_id: str, blob: bytes | str) -> BatchItem:
        entry = self.codec.decode(f"{self.keys.batch_items(batch_id)}/{item_id}", _bytes(blob))
        return BatchItem.model_validate(entry.value)

    def seal_row(self, batch_id: str, row: ItemResult) -> bytes:
        return self.codec.encode(self.keys.batch_results(batch_id), model_json(row), time.time())

    def open_row(self, batch_id: str, blob: bytes | str) -> ItemResult:
        return ItemResult.model_validate(self.codec.decode(self.keys.batch_results(batch_id), _bytes(blob)).value)

    # --- the API and CLI: create, progress, results --------------------------------------------------

    def planner(self, spec: BatchSpec) -> BatchPlanner:
        """A batch planned from rows a chunk at a time (``BatchPlanner``)."""
        return BatchPlanner(self, spec)

    async def create(
        self,
        spec: BatchSpec,
        items: Sequence[BatchItem],
        rows: int,
        row_errors: Sequence[ItemResult],
        *,
        batch_id: str | None = None,
    ) -> str:
        """Store a batch planned beforehand and put its items on the work stream; returns its id."""
        batch_id = batch_id or new_batch_id()
        await self.begin(batch_id, spec)
        await self.add_errors(batch_id, row_errors)
        for start in range(0, len(items), CHUNK):
            await self.store_items(batch_id, items[start : start + CHUNK])
        first_day = min((item.request.service.date for item in items), default=None)
        await self.commit(batch_id, (item.item_id for item in items), rows, len(row_errors), first_day)
        return batch_id

    async def begin(self, batch_id: str, spec: BatchSpec) -> None:
        """The batch's metadata, state "planning" (workers leave it unfinished until ``commit``)."""
        await self.ensure_group()
        meta = self.keys.batch(batch_id)
        fields: dict[FieldT, EncodableT] = {
            "state": "planning",
            "spec": spec.model_dump_json(),
            "items": 0,
            "rows": 0,
            "row_errors": 0,
            "done": 0,
            "failed": 0,
            "retrying": 0,
            "created_at": str(time.time()),
        }
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(meta, mapping=fields)
            pipe.expire(meta, self.ttl)
            await pipe.execute()

    async def add_errors(self, batch_id: str, row_errors: Sequence[ItemResult]) -> None:
        if not row_errors:
            return
        results = self.keys.batch_results(batch_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            for error in row_errors:
                pipe.xadd(results, {"r": self.seal_row(batch_id, error)})
            pipe.expire(results, self.ttl)
            await pipe.execute()

    async def store_items(self, batch_id: str, items: Sequence[BatchItem]) -> None:
        if not items:
            return
        key = self.keys.batch_items(batch_id)
        fields = [part for item in items for part in (item.item_id, self.seal_item(batch_id, item))]
        await self._commands.group([("HSET", key, *fields), ("EXPIRE", key, self.ttl)])

    async def commit(
        self, batch_id: str, item_ids: Iterable[str], rows: int, row_errors: int, first_day: dt.date | None
    ) -> None:
        """Every item onto the work stream, then the counters and "running" (see ``_COMMIT``)."""
        items, work = 0, self.keys.batch_work
        for chunk in batched(item_ids, CHUNK):
            await self._commands.group(
                [("XADD", work, "*", "batch", batch_id, "item", name, "attempt", "1") for name in chunk]
            )
            items += len(chunk)
        await self._commit(
            keys=[self.keys.batch(batch_id), self.keys.batch_planning(batch_id)],
            args=[items, rows, row_errors, first_day.isoformat() if first_day else "", str(time.time())],
        )

    async def progress(self, batch_id: str) -> BatchProgress | None:
        data = {_text(k): _text(v) for k, v in (await self.redis.hgetall(self.keys.batch(batch_id))).items()}
        if not data or data.get("state") == "planning":  # not accepted (yet): not a batch to its callers
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

    async def first_day(self, batch_id: str) -> dt.date | None:
        """The earliest service date of the batch's items (None: no items, or a batch stored before it was kept)."""
        raw = await self.redis.hget(self.keys.batch(batch_id), "first_day")
        return dt.date.fromisoformat(_text(raw)) if raw and _text(raw) else None

    async def batch_ids(self, *, count: int = 1000) -> list[str]:
        """Every batch still stored (a SCAN of the keyspace: for a worker's start, not for a loop)."""
        prefix = re.sub(r"([*?\[\]\\])", r"\\\1", self.keys.batch("x")[:-1])
        found = []
        async for raw in self.redis.scan_iter(match=prefix + "b" + "?" * 20, count=count):
            batch_id = _text(raw)[len(self.keys.batch("x")) - 1 :]
            if _BATCH_ID.fullmatch(batch_id):
                found.append(batch_id)
        return found

    async def spec(self, batch_id: str) -> BatchSpec | None:
        raw = await self.redis.hget(self.keys.batch(batch_id), "spec")
        return BatchSpec.model_validate_json(raw) if raw else None

    async def results(self, batch_id: str, *, chunk: int = CHUNK) -> AsyncIterator[ItemResult]:
        """Every result row so far, in completion order, read a chunk at a time."""
        start = "-"
        while True:
            entries: Any = await self.redis.xrange(self.keys.batch_results(batch_id), start, "+", count=chunk)
            for entry_id, fields in entries:
                yield self.open_row(batch_id, fields.get(b"r", fields.get("r")))
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

    async def pending_item(self, entry: WorkEntry) -> tuple[bool, BatchItem | None]:
        """In one round trip: whether the entry's item is already done, and (when it is not) the item,
        ``None`` when the batch expired.  ``CacheCorrupt``: the item is unreadable."""
        done, raw = await self._commands.group(
            [
                ("SISMEMBER", self.keys.batch_done(entry.batch_id), entry.item_id),
                ("HGET", self.keys.batch_items(entry.batch_id), entry.item_id),
            ]
        )
        if done:
            return True, None
        return False, self.open_item(entry.batch_id, entry.item_id, raw) if raw else None

    async def finish(self, entry: WorkEntry, rows: Iterable[ItemResult], *, failed: bool) -> None:
        """Store the item's rows once (see the module docstring) and acknowledge the entry."""
        done_key = self.keys.batch_done(entry.batch_id)
        await self._commands.script(
            self._finish,
            [
                done_key,
                self.keys.batch(entry.batch_id),
                self.keys.batch_results(entry.batch_id),
                self.keys.batch_work,
            ],
            [
                entry.item_id,
                BATCH_GROUP,
                entry.entry_id,
                "failed" if failed else "done",
                str(time.time()),
                self.ttl,  # the done set's expiry, renewed in the same step
                *(self.seal_row(entry.batch_id, row) for row in rows),
            ],
        )

    async def keep_leases(self, consumer: str, entries: Sequence[WorkEntry]) -> int:
        """Reset the idle time of ``entries`` this consumer still owns, so that a payer call that outlasts
        ``claim_idle_seconds`` is not claimed (and asked again) by another worker; how many were kept."""
        if not entries:
            return 0
        kept = await self._heartbeat(
            keys=[self.keys.batch_work], args=[*(entry.entry_id for entry in entries), BATCH_GROUP, consumer]
        )
        return int(kept)

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


class BatchPlanner:
    """A batch made from rows a chunk at a time, deduplicated in Redis so that memory does not grow with it.

    ``add`` a chunk of rows and per-row errors, as many times as needed, then ``commit``: only then do the
    workers see the items and callers the batch.  The planning map names each question by an HMAC with a
    key that lives in this object only (it never holds patient data in clear, and is deleted at commit).
    A planner that dies before ``commit`` leaves a batch nobody sees, gone after the batch TTL.
    """

    def __init__(self, queue: BatchQueue, spec: BatchSpec) -> None:
        self.queue = queue
        self.spec = spec
        self.batch_id = new_batch_id()
        self.items = self.rows = self.row_errors = 0
        self.first_day: dt.date | None = None
        self._salt = os.urandom(32)
        self._begun = self._committed = False

    def _question(self, identity: str) -> str:
        return hmac.new(self._salt, identity.encode(), hashlib.sha256).hexdigest()[:32]

    async def _begin_once(self) -> None:
        if not self._begun:
            await self.queue.begin(self.batch_id, self.spec)
            self._begun = True

    async def add(self, rows: Sequence[AppointmentRow], row_errors: Sequence[ItemResult] = ()) -> None:
        await self._begin_once()
        self.rows += len(rows) + len(row_errors)
        self.row_errors += len(row_errors)
        await self.queue.add_errors(self.batch_id, row_errors)
        groups = group_rows(rows)
        if groups:
            await self._merge(groups)

    async def _merge(self, groups: dict[str, Group]) -> None:
        queue, batch_id = self.queue, self.batch_id
        planning = queue.keys.batch_planning(batch_id)
        questions = [self._question(identity) for identity in groups]
        known: list[Any] = await queue.redis.hmget(planning, questions)
        earlier = [_text(value) for value in known if value]
        blobs: list[Any] = await queue.redis.hmget(queue.keys.batch_items(batch_id), earlier) if earlier else []
        stored = {name: queue.open_item(batch_id, name, blob) for name, blob in zip(earlier, blobs, strict=True)}
        items: list[BatchItem] = []
        new: dict[FieldT, EncodableT] = {}
        for question, value, group in zip(questions, known, groups.values(), strict=True):
            if value:
                name = _text(value)
                merged = Group.of_item(stored[name])
                merged.absorb(group)
                items.append(merged.item(name))
                continue
            self.items += 1
            name = new[question] = item_id(self.items)
            items.append(group.item(name))
            day = group.request.service.date
            self.first_day = day if self.first_day is None else min(self.first_day, day)
        await queue.store_items(batch_id, items)
        if new:
            async with queue.redis.pipeline(transaction=False) as pipe:
                pipe.hset(planning, mapping=new)
                pipe.expire(planning, queue.ttl)
                await pipe.execute()

    async def __aenter__(self) -> BatchPlanner:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None and self._begun and not self._committed:
            await self.abandon()

    async def abandon(self) -> None:
        """Forget what was planned (the input was refused, or planning failed)."""
        keys, batch_id = self.queue.keys, self.batch_id
        stored = (keys.batch, keys.batch_items, keys.batch_planning, keys.batch_results)
        await self.queue.redis.delete(*(key(batch_id) for key in stored))

    async def commit(self) -> str:
        """Enqueue the items and make the batch visible; its id."""
        await self._begin_once()
        ids = (item_id(number) for number in range(1, self.items + 1))
        await self.queue.commit(self.batch_id, ids, self.rows, self.row_errors, self.first_day)
        self._committed = True
        return self.batch_id
