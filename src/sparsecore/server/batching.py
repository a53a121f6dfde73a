"""Dynamic micro-batching: requests that arrive close together run as one Pipeline call.

The first request waiting for an endpoint waits up to ``max_delay`` seconds for others, until ``max_items``
items are gathered; the batch then runs in a worker thread while the next one gathers, up to ``streams``
batches at once (the Pipeline's streams). Each caller gets the results of its own items, in order. A batch
that fails is run again one request at a time, so one bad request cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable


@dataclass
class _Waiting:
    items: list
    future: asyncio.Future


class MicroBatcher:
    """``await submit(items)`` → ``run(items)``'s results for these items, gathered with other callers' items.

    ``run`` takes a list and returns a list of the same length (it runs in a thread). ``observe_batch(n)`` is
    called with each batch's item count. :meth:`stop` answers everything already submitted, then ends."""

    def __init__(self, run: Callable[[list], list], max_items: int, max_delay: float, streams: int = 1,
                 observe_batch: Callable[[int], None] | None = None) -> None:
        self.run, self.max_items, self.max_delay = run, max(1, max_items), max(0.0, max_delay)
        self.observe_batch = observe_batch or (lambda n: None)
        self._streams = streams
        self._queue: asyncio.Queue | None = None
        self._collector: asyncio.Task | None = None
        self._running: set[asyncio.Task] = set()
        self._executor = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="sparsecore-batch")

    @property
    def depth(self) -> int:
        """Requests waiting to join a batch."""
        return 0 if self._queue is None else self._queue.qsize()

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._slots = asyncio.Semaphore(self._streams)
        self._collector = asyncio.create_task(self._collect())

    async def submit(self, items: list) -> list:
        if self._queue is None or self._collector is None or self._collector.done():
            raise RuntimeError("the batcher is not running")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Waiting(items, future))
        return await future

    async def stop(self) -> None:
        """Answer every submitted request, then end the gathering task and the worker threads."""
        if self._queue is not None and self._collector is not None:
            await self._queue.put(None)
            await self._collector
        if self._running:
            await asyncio.gather(*self._running)
        self._executor.shutdown(wait=True)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch, count = [first], len(first.items)
            deadline = loop.time() + self.max_delay
            while count < self.max_items:
                try:
                    nxt = self._queue.get_nowait() if loop.time() >= deadline else await asyncio.wait_for(
                        self._queue.get(), deadline - loop.time())
                except (asyncio.QueueEmpty, asyncio.TimeoutError):
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
                count += len(nxt.items)
            await self._slots.acquire()
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[_Waiting]) -> None:
        loop = asyncio.get_running_loop()
        try:
            items = [item for waiting in batch for item in waiting.items]
            self.observe_batch(len(items))
            try:
                results = await loop.run_in_executor(self._executor, self.run, items)
            except Exception:
                if len(batch) == 1:
                    raise
                for waiting in batch:  # find the request that fails; answer the others
                    try:
                        _answer(waiting, await loop.run_in_executor(self._executor, self.run, waiting.items))
                    except Exception as exc:
                        _fail(waiting, exc)
                return
            start = 0
            for waiting in batch:
                _answer(waiting, results[start:start + len(waiting.items)])
                start += len(waiting.items)
        except Exception as exc:
            for waiting in batch:
                _fail(waiting, exc)
        finally:
            self._slots.release()


def _answer(waiting: _Waiting, results: list) -> None:
    if not waiting.future.done():
        waiting.future.set_result(results)


def _fail(waiting: _Waiting, exc: BaseException) -> None:
    if not waiting.future.done():
        waiting.future.set_exception(exc)
