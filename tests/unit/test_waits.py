"""hotfolder.waits: a step's time limit stands still while it waits for something shared, and
the run hears of each wait; outside a job, and in a worker thread, a wait is only measured."""

from __future__ import annotations

import asyncio

import pytest

from hotfolder.waits import StepWaits, Wait, step_waits, waiting


def test_a_wait_does_not_count_against_the_step_time_limit():
    heard: list[Wait | None] = []

    async def step() -> str:
        async with asyncio.timeout(0.3) as timeout:
            with step_waits(StepWaits(timeout, heard.append)):
                await asyncio.sleep(0.1)  # work: counts
                with waiting("a Venice rate slot") as waited:
                    await asyncio.sleep(0.5)  # longer than the whole limit: does not count
                await asyncio.sleep(0.1)  # work: counts, 0.2 s of 0.3 s in all
        return f"{waited.seconds:.1f}"

    assert asyncio.run(step()) == "0.5"
    assert [w.what if w else None for w in heard] == ["a Venice rate slot", None]


def test_work_past_the_limit_still_times_out_after_a_wait():
    async def step() -> None:
        async with asyncio.timeout(0.3) as timeout:
            with step_waits(StepWaits(timeout)):
                with waiting("a free Venice connection"):
                    await asyncio.sleep(0.2)
                await asyncio.sleep(0.5)

    with pytest.raises(TimeoutError):
        asyncio.run(step())


def test_overlapping_waits_are_one_wait_to_the_observer():
    heard: list[Wait | None] = []

    async def step() -> None:
        async with asyncio.timeout(0.2) as timeout:
            with step_waits(StepWaits(timeout, heard.append)):

                async def wait_for(what: str, seconds: float) -> None:
                    with waiting(what):
                        await asyncio.sleep(seconds)

                await asyncio.gather(wait_for("a", 0.3), wait_for("b", 0.4))

    asyncio.run(step())
    assert [w.what if w else None for w in heard] == ["a", None]


def test_outside_a_job_or_in_a_thread_a_wait_is_only_measured():
    with waiting("nothing") as waited:
        pass
    assert waited.seconds >= 0

    heard: list[Wait | None] = []

    async def step() -> float:
        async with asyncio.timeout(1) as timeout:
            with step_waits(StepWaits(timeout, heard.append)):

                def in_thread() -> float:
                    with waiting("from a thread") as inner:
                        pass
                    return inner.seconds

                return await asyncio.to_thread(in_thread)

    assert asyncio.run(step()) >= 0
    assert heard == []
