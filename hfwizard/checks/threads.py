"""Running synchronous SDK calls (kubernetes, boto3, google-auth, azure-identity) off the event loop."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# asyncio.to_thread uses the loop's default executor, which has min(32, CPUs + 4) threads: six on a
# two-CPU bastion. A dozen checks blocking in SDK calls at once would then queue behind each other and
# the "concurrent" preflight would take twice as long. Checks get a pool of their own instead.
_POOL_SIZE = 32
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=_POOL_SIZE, thread_name_prefix="hfwizard-check")
    return _pool


async def in_thread[T](fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Like asyncio.to_thread (context variables carried over), on the checks' own thread pool.

    A cancelled or timed-out caller stops waiting at once; the call itself ends when its own
    request timeout fires, so every SDK call made here must carry one.
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    # One turn of the loop first: the checks started together all take their first step (open their
    # sockets, send their requests) before threads importing client libraries compete for the GIL.
    await asyncio.sleep(0)
    return await loop.run_in_executor(_executor(), call)


_imports: dict[str, asyncio.Future[Any]] = {}


async def imported(*modules: str) -> None:
    """Import `modules` on the checks' pool, once per process, and wait for them.

    A client library imported inside a coroutine holds the event loop for its whole import (redis and
    psycopg take 0.1-0.4 s): every other check's sockets wait meanwhile, and the slowest check ends
    that much later. Imported in a thread, the loop keeps being scheduled between the import's steps.
    """
    import importlib

    loop = asyncio.get_running_loop()
    await asyncio.sleep(0)  # as in in_thread: let the other checks take their first step first
    waits = []
    for name in modules:
        fut = _imports.get(name)
        if fut is None or fut.get_loop() is not loop:
            fut = _imports[name] = loop.run_in_executor(_executor(), importlib.import_module, name)
        waits.append(fut)
    await asyncio.gather(*(asyncio.shield(w) for w in waits))
