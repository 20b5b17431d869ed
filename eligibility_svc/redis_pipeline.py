"""Auto-pipelining: Redis commands issued by concurrent coroutines go out together.

Every command the service sends on a hot path (cache reads and writes, the single-flight lock, the
per-payer limiter, control numbers, batch items) is small, and on its own each costs a pooled
connection, a ``send`` and a ``recv``: on a loopback socket those system calls, not Redis, were most
of a worker's Redis time.  ``AutoPipeline.call`` instead queues the command and returns a future;
once per event-loop turn everything queued in that turn goes out as one non-transactional pipeline
(one connection, one write, the replies read together), and each future gets its own reply.  With
hundreds of checks in flight a turn carries tens of commands; with one, it is one plain command.

What stays as without it:

* each caller gets its own reply, or its own error: a ``WRONGTYPE`` on one command fails that
  command only, while a broken connection fails every command of that pipeline (as it would have
  failed each of them);
* a ``group`` of commands stays together and in order within one pipeline (``set_many``: the record
  before the entries, the lock's release last);
* deadlines are the callers' own: a caller that stops waiting (``RedisGate``'s timeout) cancels only
  its future, and its reply is dropped when it comes;
* scripts are sent as ``EVALSHA``; after a Redis restart (``NOSCRIPT``) the one call is repeated
  through redis-py's ``Script``, which loads it.

One ``AutoPipeline`` per client (``pipelined(redis)``); it follows the running event loop, so a client
reused under a new loop (tests) starts clean.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

Command = tuple[Any, ...]  # a command name and its arguments, as ``execute_command`` takes them


class _Pending:
    """Queued commands and, for each, the future its caller awaits (a group: one future, many commands)."""

    __slots__ = ("commands", "waiters")

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self.waiters: list[tuple[asyncio.Future[Any], int, int, bool]] = []  # future, first, end, group

    def add(self, future: asyncio.Future[Any], commands: Sequence[Command], *, group: bool) -> None:
        first = len(self.commands)
        self.commands.extend(commands)
        self.waiters.append((future, first, len(self.commands), group))


class AutoPipeline:
    """Sends the commands queued during one event-loop turn as one pipeline (see the module docstring)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: _Pending | None = None  # set while a flush is scheduled for this turn
        self._sending: set[asyncio.Task[None]] = set()

    def call(self, *command: Any) -> asyncio.Future[Any]:
        """One command's reply (redis-py's response callbacks applied), or its error, when awaited."""
        return self._queue([command], group=False)

    def group(self, commands: Sequence[Command]) -> asyncio.Future[list[Any]]:
        """The replies of ``commands``, sent together and in order; raises the first error among them."""
        return self._queue(commands, group=True)

    async def script(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """``script`` run by its SHA; loaded through redis-py first when Redis does not know it."""
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await script(keys=list(keys), args=list(args))

    def _queue(self, commands: Sequence[Command], *, group: bool) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests): whatever the old one queued died with it
            self._loop, self._pending = loop, None
        future: asyncio.Future[Any] = loop.create_future()
        if self._pending is None:
            self._pending = _Pending()
            loop.call_soon(self._flush)
        self._pending.add(future, commands, group=group)
        return future

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        task = asyncio.ensure_future(self._send(pending))
        self._sending.add(task)  # a strong reference until it is done
        task.add_done_callback(self._sending.discard)

    async def _send(self, pending: _Pending) -> None:
        try:
            replies = await self._replies(pending.commands)
        except BaseException as exc:  # the connection failed: every command of it failed
            for future, *_ in pending.waiters:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, first, end, group in pending.waiters:
            if not future.done():
                _answer(future, replies[first:end], group=group)

    async def _replies(self, commands: list[Command]) -> list[Any]:
        if len(commands) == 1:  # nothing to share this turn: a plain command costs less than a pipeline
            return [await self._redis.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
        async with self._redis.pipeline(transaction=False) as pipe:
            for command in commands:
                pipe.execute_command(*command)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies


def _answer(future: asyncio.Future[Any], replies: list[Any], *, group: bool) -> None:
    error = next((reply for reply in replies if isinstance(reply, Exception)), None)
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(replies if group else replies[0])


_pipelines: weakref.WeakKeyDictionary[Redis, AutoPipeline] = weakref.WeakKeyDictionary()


def pipelined(redis: Redis) -> AutoPipeline:
    """The one ``AutoPipeline`` of ``redis``."""
    found = _pipelines.get(redis)
    if found is None:
        found = _pipelines[redis] = AutoPipeline(redis)
    return found
