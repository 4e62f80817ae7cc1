"""ServerProcess: bursts, barriers, the inline tick path, and stopping."""

from __future__ import annotations

import asyncio
from typing import Any

from pyra_dist.core.effects import Effect, PersistMeta, Reply, Stop, WrapReply
from pyra_dist.core.events import CommandBatch, CommandRequest, Event, Tick, TriggerElection
from pyra_dist.server.effects import ServerStopped
from pyra_dist.server.process import ServerProcess
from pyra_dist.types import ServerId

ME = ServerId("s", "n1")


class ScriptedCore:
    """Answers each event with the effects scripted for it; records what it handled."""

    def __init__(self, script: dict[Event, list[Effect]]) -> None:
        self.script = script
        self.handled: list[Event] = []

    def handle(self, event: Event) -> list[Effect]:
        self.handled.append(event)
        if event == TriggerElection("boom"):
            raise RuntimeError("boom")
        return list(self.script.get(event, []))


class RecordingInterpreter:
    def __init__(self) -> None:
        self.batches: list[list[Effect]] = []
        self.stopped: list[tuple[object, bool]] = []

    async def execute(self, process: Any, effects: list[Effect]) -> None:
        self.batches.append(list(effects))
        for effect in effects:
            if isinstance(effect, Stop):
                raise ServerStopped(effect.reason, effect.delete_data)

    def execute_now(self, process: Any, effects: list[Effect], start: int = 0) -> int:
        self.batches.append(["now", *effects])
        return len(effects)

    def server_stopped(self, process: Any, reason: object, delete_data: bool = False) -> None:
        self.stopped.append((reason, delete_data))


def start(script: dict[Event, list[Effect]]) -> tuple[ServerProcess, ScriptedCore, RecordingInterpreter]:
    core, interpreter = ScriptedCore(script), RecordingInterpreter()
    process = ServerProcess(ME, "UID", "c", core, interpreter)  # type: ignore[arg-type]
    process.task = asyncio.get_running_loop().create_task(process.run([]))
    return process, core, interpreter


async def test_a_burst_of_events_is_executed_as_one_batch_but_barriers_split_it() -> None:
    a, b, c = TriggerElection("a"), TriggerElection("b"), TriggerElection("c")
    reply_a, reply_c = Reply("a", WrapReply(1)), Reply("c", WrapReply(3))
    process, core, interpreter = start({a: [reply_a], b: [PersistMeta(2, ME)], c: [reply_c]})
    await asyncio.sleep(0)
    for event in (a, b, c):
        process.deliver(event)
    await asyncio.sleep(0.01)

    assert core.handled == [a, b, c]
    assert interpreter.batches == [[reply_a, PersistMeta(2, ME)], [reply_c]]
    process.task.cancel()  # type: ignore[union-attr]


async def test_an_idle_tick_is_handled_inline_and_only_effects_wake_the_task() -> None:
    quiet, busy = Tick(1), Tick(2)
    reply = Reply("x", WrapReply("tock"))
    process, core, interpreter = start({busy: [reply]})
    await asyncio.sleep(0)

    process.handle_now(quiet)
    assert (core.handled, interpreter.batches) == ([quiet], [])
    process.handle_now(busy)
    assert core.handled == [quiet, busy]
    await asyncio.sleep(0.01)
    assert interpreter.batches == [[reply]]
    process.task.cancel()  # type: ignore[union-attr]


async def test_a_stop_effect_ends_the_task_drops_later_mail_and_fails_pending_calls() -> None:
    stop = TriggerElection("stop")
    process, _, interpreter = start({stop: [Stop("normal", delete_data=True)]})
    call: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    process.track_call(call)
    process.deliver(stop)
    await process.task  # type: ignore[misc]

    process.deliver(TriggerElection("late"))
    assert (process.stopped, interpreter.stopped, process.stop_reason) == (True, [("normal", True)], "normal")
    assert isinstance(call.exception(), Exception) and type(call.exception()).__name__ == "NoProc"


async def test_consecutive_commands_of_a_burst_reach_the_core_as_one_command_batch() -> None:
    one, two, three = (CommandRequest(data=n, system_time=10 * n) for n in (1, 2, 3))
    tick = Tick(system_time=99)
    process, core, _ = start({})
    await asyncio.sleep(0)
    for event in (one, two, tick, three):
        process.deliver(event)
    await asyncio.sleep(0.01)

    assert core.handled == [CommandBatch(commands=(one, two), system_time=20), tick, three]
    process.task.cancel()  # type: ignore[union-attr]


async def test_deliver_now_lets_a_parked_server_handle_the_event_and_execute_its_effects_at_once() -> None:
    ping = TriggerElection("ping")
    reply = Reply("ping", WrapReply("pong"))
    process, core, interpreter = start({ping: [reply]})
    await asyncio.sleep(0)

    process.deliver_now(ping)
    assert (core.handled, interpreter.batches) == ([ping], [["now", reply]])
    process.task.cancel()  # type: ignore[union-attr]


async def test_deliver_now_queues_commands_and_mail_for_a_server_that_is_not_parked() -> None:
    one, two = CommandRequest(data=1, system_time=1), CommandRequest(data=2, system_time=2)
    ping = TriggerElection("ping")
    process, core, _ = start({})
    await asyncio.sleep(0)

    process.deliver_now(one)
    process.deliver_now(ping)
    process.deliver_now(two)
    assert core.handled == []
    await asyncio.sleep(0.01)
    assert core.handled == [one, ping, two]
    process.task.cancel()  # type: ignore[union-attr]


async def test_deliver_now_leaves_a_vote_sync_and_what_follows_it_to_the_task() -> None:
    vote = TriggerElection("vote")
    effects: list[Effect] = [PersistMeta(2, ME), Reply("vote", WrapReply("granted"))]
    process, core, interpreter = start({vote: effects})
    await asyncio.sleep(0)

    process.deliver_now(vote)
    assert (core.handled, interpreter.batches) == ([vote], [])
    await asyncio.sleep(0.01)
    assert interpreter.batches == [effects]
    process.task.cancel()  # type: ignore[union-attr]


async def test_an_exception_raised_while_handling_at_once_crashes_the_server_through_its_task() -> None:
    process, _, interpreter = start({})
    await asyncio.sleep(0)

    process.deliver_now(TriggerElection("boom"))
    await process.task  # type: ignore[misc]
    assert (process.stopped, interpreter.stopped) == (True, [(("crashed", "RuntimeError('boom')"), False)])


async def test_deliver_now_queues_while_something_acts_for_the_server_outside_its_task() -> None:
    ping = TriggerElection("ping")
    reply = Reply("ping", WrapReply("pong"))
    process, core, interpreter = start({ping: [reply]})
    await asyncio.sleep(0)

    with process.handling():
        process.deliver_now(ping)
        assert core.handled == []
    await asyncio.sleep(0.01)
    assert (core.handled, interpreter.batches) == ([ping], [[reply]])
    process.task.cancel()  # type: ignore[union-attr]
