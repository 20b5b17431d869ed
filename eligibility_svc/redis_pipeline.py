"""Auto-pipelining: Redis commands issued by concurrent coroutines go out together.

Every command the service sends on a hot path (cache reads and writes, the single-flight lock, the
per-payer limiter, control numbers, batch items) is small, and on its own each costs a pooled
connection, a ``send`` and a ``recv``: on a loopback socket those system calls, not Redis, were most
of a worker's Redis time.  ``AutoPipeline.call`` instead queues the command and returns a future;
once per event-loop turn everything queued in that turn goes out as one non-transactional pipeline
(one connection, one write, the replies read together), and each future gets its own reply.  With
hundreds of checks in flight a turn carries tens of commands.  The turn is written and read on a
pooled connection directly (``_exchange``): redis-py's own command and pipeline paths start a timer
per reply and a task per write, which cost more CPU than the round trip; measured on a loopback
socket, one GET took 82 µs of client CPU through ``Redis.get`` and 54 µs here.

What stays as without it:

* each caller gets its own reply, or its own error: a ``WRONGTYPE`` on one command fails that
  command only, while a broken connection fails every command of that pipeline (as it would have
  failed each of them);
* a ``group`` of commands stays together and in order within one pipeline (``set_many``: the record
  before the entries, the lock's release last);
* deadlines are the callers' own: a caller that stops waiting (``RedisGate``'s timeout) ends only
  its future, and its reply is dropped when it comes;
* scripts are sent as ``EVALSHA``; after a Redis restart (``NOSCRIPT``) the one call is repeated
  through redis-py's ``Script``, which loads it.

One ``AutoPipeline`` per client (``pipelined(redis)``); it follows the running event loop, so a client
reused under a new loop (tests) starts clean.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from redis._parsers.base import AsyncBaseParser
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

Command = tuple[Any, ...]  # a command name and its arguments, as ``execute_command`` takes them
Callbacks = Mapping[Any, Callable[..., Any]]  # redis-py's response callbacks, by command name


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
        # redis-py's response callbacks as a plain dict, under both spellings of each command name (its
        # own dict folds the case of the name on every lookup).
        self._callbacks: Callbacks = {
            spelling: call
            for name, call in redis.response_callbacks.items()
            for spelling in (str(name).upper(), str(name).lower())
        }
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
            loop.call_soon(self._flush)  # after every callback of this turn has queued its commands
        self._pending.add(future, commands, group=group)
        return future

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        # A task only now: one made with the first command would be a coroutine never awaited (and
        # warned about) when the loop closes before the turn ends.
        task = asyncio.get_running_loop().create_task(self._send(pending))
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
        """The replies to ``commands`` (an error reply as its exception), from one pooled connection.

        A connection that fails before the replies come (one Redis closed while it sat in the pool)
        is dropped and the turn sent once more on another, as redis-py's own one retry would."""
        pool = self._redis.connection_pool
        for attempt in (1, 2):
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                return await _exchange(connection, commands, self._callbacks)
            except (RedisConnectionError, ConnectionError):  # not OSError: a timeout is one too
                await connection.disconnect()
                if attempt == 2:
                    raise
            except BaseException:  # a timeout, a cancellation: unread replies may be on the way
                await connection.disconnect()
                raise
            finally:
                await pool.release(connection)
        raise AssertionError("unreachable")  # pragma: no cover - the second attempt returns or raises


async def _exchange(connection: AbstractConnection, commands: list[Command], callbacks: Callbacks) -> list[Any]:
    """Write ``commands`` at once, then read one reply each under one deadline (the socket timeout).

    This is what a redis-py pipeline does, without its per-reply timers and per-call bookkeeping, which
    cost more than the round trip itself: the write goes to the connection's stream and the replies
    come from its parser, which hands an error reply back as its exception rather than raising it."""
    if not connection.is_connected:
        await connection.connect()  # type: ignore[no-untyped-call]
    writer, parser = connection._writer, cast(AsyncBaseParser, connection._parser)  # private: see the docstring
    if writer is None:
        raise RedisConnectionError("the connection closed while it was opened")
    writer.writelines(connection.pack_commands(commands))
    async with asyncio.timeout(connection.socket_timeout):
        await writer.drain()  # at once, unless the socket's buffer is full
        replies = [await parser.read_response(disable_decoding=False) for _ in commands]
    return [_with_callback(reply, command[0], callbacks) for reply, command in zip(replies, commands, strict=True)]


def _with_callback(reply: Any, name: Any, callbacks: Callbacks) -> Any:
    """``reply`` as redis-py returns it for ``name`` (``SET`` → ``True`` ...); an error reply as is."""
    if isinstance(reply, Exception):
        return reply
    callback = callbacks.get(name)
    return reply if callback is None else callback(reply)


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
