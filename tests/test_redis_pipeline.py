"""The auto-pipeline against a real redis-server: commands of one event-loop turn share a round trip,
each caller gets its own reply or error, groups stay whole and in order, scripts survive a flush."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from eligibility_svc.cache import make_redis
from eligibility_svc.redis_pipeline import AutoPipeline, _packed, pipelined
from tests.support.redis_server import RedisServer, reads_processed


async def test_commands_of_one_turn_share_a_round_trip(redis_client: Redis) -> None:
    commands = pipelined(redis_client)
    await commands.call("PING")  # the connection is open before counting
    before = await reads_processed(redis_client)
    replies = await asyncio.gather(*(commands.call("INCR", f"test:n:{n % 5}") for n in range(100)))
    trips = await reads_processed(redis_client) - before - 1  # the INFO that reads "after"
    assert trips <= 2, trips  # a hundred commands, one write (the server may read it in two parts)
    assert sorted(replies) == sorted(list(range(1, 21)) * 5)
    assert [await redis_client.get(f"test:n:{k}") for k in range(5)] == [b"20"] * 5


async def test_a_lone_command_is_sent_at_once_and_answered(redis_client: Redis) -> None:
    commands = pipelined(redis_client)
    assert await commands.call("SET", "test:k", b"v", "PX", 60_000) is True
    assert await commands.call("GET", "test:k") == b"v"
    assert await commands.call("GET", "test:absent") is None
    assert pipelined(redis_client) is commands  # one per client


async def test_an_error_reaches_only_its_own_caller(redis_client: Redis) -> None:
    await redis_client.set("test:text", b"x")
    commands = pipelined(redis_client)
    outcomes = await asyncio.gather(
        commands.call("SET", "test:a", b"1"),
        commands.call("LPUSH", "test:text", b"y"),  # WRONGTYPE: a string, not a list
        commands.call("GET", "test:text"),
        return_exceptions=True,
    )
    assert outcomes[0] is True
    assert isinstance(outcomes[1], ResponseError)
    assert "WRONGTYPE" in str(outcomes[1])
    assert outcomes[2] == b"x"


async def test_a_group_stays_whole_and_in_order(redis_client: Redis) -> None:
    commands = pipelined(redis_client)
    first, group, last = await asyncio.gather(
        commands.call("RPUSH", "test:list", b"before"),
        commands.group([("RPUSH", "test:list", b"g1"), ("RPUSH", "test:list", b"g2"), ("LLEN", "test:list")]),
        commands.call("RPUSH", "test:list", b"after"),
    )
    assert (first, group, last) == (1, [2, 3, 3], 4)
    assert await redis_client.lrange("test:list", 0, -1) == [b"before", b"g1", b"g2", b"after"]


async def test_a_group_with_a_failing_command_raises_it(redis_client: Redis) -> None:
    await redis_client.set("test:text", b"x")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await pipelined(redis_client).group([("SET", "test:b", b"1"), ("LPUSH", "test:text", b"y")])
    assert await redis_client.get("test:b") == b"1"  # not a transaction: what ran, ran


async def test_a_script_is_run_by_its_sha_and_reloaded_after_a_flush(redis_client: Redis) -> None:
    script = redis_client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    commands = pipelined(redis_client)
    assert await commands.script(script, ["test:s"], [2]) == 2  # unknown to Redis: loaded, then run
    await redis_client.script_flush()
    assert await commands.script(script, ["test:s"], [3]) == 5  # NOSCRIPT again: loaded again
    before = await reads_processed(redis_client)
    assert await commands.script(script, ["test:s"], [1]) == 6
    assert await reads_processed(redis_client) - before - 1 == 1  # known now: one EVALSHA


async def test_a_caller_that_stops_waiting_leaves_the_others_their_replies(disposable_redis: RedisServer) -> None:
    client = make_redis(disposable_redis.url, socket_timeout=5)
    try:
        commands = pipelined(client)
        await commands.call("SET", "test:k", b"v")
        disposable_redis.pause()
        impatient = asyncio.ensure_future(asyncio.wait_for(commands.call("GET", "test:k"), 0.1))
        patient = asyncio.ensure_future(commands.call("GET", "test:k"))
        with pytest.raises(TimeoutError):
            await impatient
        disposable_redis.resume()
        assert await asyncio.wait_for(patient, 5) == b"v"
        assert await commands.call("GET", "test:k") == b"v"
    finally:
        disposable_redis.resume()
        await client.aclose()


async def test_a_dead_server_fails_every_waiting_command_and_a_restarted_one_serves(
    disposable_redis: RedisServer,
) -> None:
    client = make_redis(disposable_redis.url)
    try:
        commands = pipelined(client)
        await commands.call("SET", "test:k", b"v")
        disposable_redis.kill()
        outcomes = await asyncio.gather(*(commands.call("GET", "test:k") for _ in range(5)), return_exceptions=True)
        assert all(isinstance(outcome, RedisConnectionError | RedisTimeoutError) for outcome in outcomes), outcomes
        disposable_redis.start()  # empty, same port, same client
        assert await commands.call("GET", "test:k") is None
        assert await commands.call("SET", "test:k", b"w") is True
    finally:
        await client.aclose()


def test_a_turn_left_unsent_by_a_finished_loop_does_not_hold_up_the_next_loop(redis_url: str) -> None:
    """A loop that ends with commands queued (never sent): the pipeline starts clean under the next loop."""
    client = make_redis(redis_url)
    commands = AutoPipeline(client)

    async def queue_and_leave() -> None:
        asyncio.get_running_loop().stop()  # the loop ends after this step: the sending turn never comes
        commands.call("SET", "test:never", b"sent")

    async def use() -> bytes | None:
        try:
            await asyncio.wait_for(commands.call("SET", "test:k", b"v"), 5)
            return await asyncio.wait_for(commands.call("GET", "test:k"), 5)  # type: ignore[no-any-return]
        finally:
            await client.aclose()

    loop = asyncio.new_event_loop()
    loop.run_until_complete(queue_and_leave())
    loop.close()  # with the sending turn still scheduled
    assert asyncio.run(use()) == b"v"


async def test_connections_redis_closed_are_replaced_on_next_use(redis_url: str) -> None:
    """Redis drops every client: the pipeline opens a new connection for its next turn, and the pool
    (which does not probe connections at checkout) hands out an idle dead one that redis-py retries."""
    client, killer = make_redis(redis_url), make_redis(redis_url)
    try:
        commands = pipelined(client)
        await asyncio.gather(*(commands.call("SET", f"test:idle:{n}", b"v") for n in range(3)), client.ping())
        assert await killer.client_kill_filter(_type="normal", skipme=True) >= 2  # the pipeline's and the PING's
        await asyncio.sleep(0.05)  # the pipeline's socket sees its end
        assert await commands.call("GET", "test:idle:0") == b"v"
        assert await client.get("test:idle:1") == b"v"
    finally:
        await client.aclose()
        await killer.aclose()


async def test_turns_share_one_connection_without_waiting_for_each_other(disposable_redis: RedisServer) -> None:
    """A turn is written while earlier ones still wait for their replies; replies go back in order."""
    client = make_redis(disposable_redis.url, socket_timeout=5)
    try:
        commands = pipelined(client)
        await commands.call("SET", "test:n", 0)
        before = await _clients(client)
        disposable_redis.pause()
        turns = []
        for _ in range(3):  # three turns, each written before any is answered
            turns.append(asyncio.ensure_future(commands.group([("INCR", "test:n"), ("GET", "test:n")])))
            await asyncio.sleep(0.01)
        disposable_redis.resume()
        assert [await asyncio.wait_for(turn, 5) for turn in turns] == [[1, b"1"], [2, b"2"], [3, b"3"]]
        assert await _clients(client) == before  # no connection was added for the turns in flight
    finally:
        disposable_redis.resume()
        await client.aclose()


async def test_closing_the_client_closes_the_pipelines_connection(redis_url: str) -> None:
    client, observer = make_redis(redis_url), make_redis(redis_url)
    try:
        await pipelined(client).call("SET", "test:k", b"v")
        name = f"elig-test-{id(client)}"
        await pipelined(client).call("CLIENT", "SETNAME", name)
        assert name in await _names(observer)
        await client.aclose()
        for _ in range(50):
            if name not in await _names(observer):
                break
            await asyncio.sleep(0.01)
        assert name not in await _names(observer)
    finally:
        await observer.aclose()


async def _clients(client: Redis) -> int:
    return len(await client.client_list())


async def _names(client: Redis) -> set[str]:
    return {entry["name"] for entry in await client.client_list()}


async def test_a_turn_that_timed_out_does_not_leave_its_reply_for_the_next(disposable_redis: RedisServer) -> None:
    """A read that outlived the socket timeout drops its connection: the late reply answers nobody."""
    client = make_redis(disposable_redis.url, socket_timeout=0.2)
    try:
        commands = pipelined(client)
        assert await commands.call("SET", "test:k", b"old") is True
        disposable_redis.pause()
        with pytest.raises(RedisTimeoutError):
            await commands.call("GET", "test:k")  # "old" is on its way once Redis wakes
        disposable_redis.resume()
        assert await commands.call("SET", "test:k", b"new") is True  # not the stale b"old"
        assert await commands.call("GET", "test:k") == b"new"
    finally:
        disposable_redis.resume()
        await client.aclose()


def test_commands_are_encoded_as_redis_py_encodes_them() -> None:
    """Our RESP writer against redis-py's, argument kinds the hot paths send included."""
    client = make_redis("redis://127.0.0.1:1/0")  # never connected: only its packer is used
    connection = client.connection_pool.make_connection()
    plain = [
        ("SET", "elig:cache:k", b"J{}\n" + b"x" * 70_000, "PX", 3_600_000),
        ("EVALSHA", "a" * 40, 1, "elig:limit:P", 1795561921.9835963, -3, "Müller", 2**70, 1e-7, -0.0),
    ]
    for commands in (plain, [*plain, ("SET", "k", memoryview(b"view"), "NX")]):  # hiredis's packer, then ours
        assert _packed(commands) == b"".join(connection.pack_commands(commands))
    for unsendable in (True, None, object()):
        with pytest.raises(DataError):
            _packed([("SET", "k", unsendable)])
