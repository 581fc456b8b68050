"""Running chunks of customers: their random streams, thread pools and progress."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np

from clvkit.models.contract import PMap, serial_map
from clvkit.utils.progress import progress

__all__ = ["chunk_streams", "kernel_threads", "ordered_map", "progress"]


def chunk_streams(rng: np.random.Generator) -> Callable[[int], np.random.Generator]:
    """Chunk ``i`` -> a Generator seeded by child ``i`` of ``rng``'s seed sequence (the ``i``-th
    child :meth:`numpy.random.SeedSequence.spawn` would give), whatever order chunks run in.

    Examples
    --------
    >>> stream = chunk_streams(np.random.default_rng(1))
    >>> float(stream(3).random()) == float(stream(3).random())
    True
    """
    ss = rng.bit_generator.seed_seq
    kind = type(rng.bit_generator)

    def stream(i: int) -> np.random.Generator:
        child = np.random.SeedSequence(
            ss.entropy, spawn_key=(*ss.spawn_key, i), pool_size=ss.pool_size
        )
        return np.random.Generator(kind(child))

    return stream


def ordered_map(fn: Callable[[int], Any], items: Iterable[int], n_jobs: int) -> Iterator[Any]:
    """``fn`` over ``items`` on ``n_jobs`` threads, results in order.

    At most ``n_jobs`` calls run while the caller holds the last result, so at most
    ``n_jobs + 1`` results are alive at once.
    """
    if n_jobs == 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="clvkit-value")
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > n_jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def kernel_threads(n_jobs: int) -> Iterator[PMap]:
    """A ``map`` over ``n_jobs`` threads for the blocks of draws inside a chunk (kernels release
    the GIL). Chunks also run on ``n_jobs`` threads; the blocks keep both cores busy when one
    chunk holds most of the work (the expected method's high frequencies share the last one)."""
    if n_jobs == 1:
        yield serial_map
        return
    pool = ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="clvkit-draws")
    try:
        yield lambda fn, items: list(pool.map(fn, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
