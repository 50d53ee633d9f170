"""Batches of personalised posters (批量海报): rendered in a process pool, in order, with
progress, each encoded as PNG reusing the compressed rows that the whole batch shares.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import struct
import sys
import threading
import time
import types
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from multiprocessing import forkserver
from typing import Any, NoReturn

import numpy as np
from PIL import Image

from core.platform.errors import DomainError, FieldProblem, ValidationFailed
from core.posters.checks import validate_content
from core.posters.render import check_content, draw_personal, static_key, static_layer
from core.posters.templates import PosterContent, PosterJob, PosterTemplate

# ---------------------------------------------------------------------------------------------
# PNG for batches. The rows above a poster's personal part are the same for the whole batch,
# so they are compressed once, hard (level 9), and every poster only compresses its own rows,
# quickly (level 3). Deflate allows that: the shared part ends on a byte boundary with a
# non-final block (Z_SYNC_FLUSH), the poster's part follows as more blocks of the same stream
# (it may refer back into the shared rows, which the decoder still has), and the stream's
# Adler-32 is carried on from the shared rows' checksum.

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ZLIB_HEADER = b"\x78\xda"  # deflate, 32 KiB window, "maximum compression"
_WINDOW = 32 * 1024


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filtered(image: Image.Image) -> bytes:
    """Rows with PNG filter 1 (Sub): each byte minus the one a pixel to its left. A row
    depends on nothing above it, so any run of rows can be compressed on its own."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    height, width, _ = pixels.shape
    rows = pixels.reshape(height, width * 3)
    out = np.empty((height, width * 3 + 1), dtype=np.uint8)
    out[:, 0] = 1
    out[:, 1:4] = rows[:, :3]
    np.subtract(rows[:, 3:], rows[:, :-3], out=out[:, 4:])
    return out.tobytes()


@dataclass(frozen=True)
class _PngPrefix:
    head: bytes  # signature, IHDR and the shared rows' IDAT
    checksum: int  # Adler-32 of the shared rows, filtered
    history: bytes  # their last 32 KiB, which the poster's rows may refer back to

    def finish(self, rest: Image.Image) -> bytes:
        data = _filtered(rest)
        if self.history:
            compressor = zlib.compressobj(3, zlib.DEFLATED, -15, zdict=self.history)
        else:
            compressor = zlib.compressobj(3, zlib.DEFLATED, -15)
        body = compressor.compress(data) + compressor.flush()
        trailer = struct.pack(">I", zlib.adler32(data, self.checksum))
        return self.head + _chunk(b"IDAT", body + trailer) + _chunk(b"IEND", b"")


@lru_cache(maxsize=4)
def _png_prefix(key: tuple[Any, ...], top: int) -> _PngPrefix:
    layer = static_layer(*key)
    width, height = layer.size
    head = _PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    shared = _filtered(layer.crop((0, 0, width, top))) if top > 0 else b""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = compressor.compress(shared) + compressor.flush(zlib.Z_SYNC_FLUSH)
    head += _chunk(b"IDAT", _ZLIB_HEADER + body)
    return _PngPrefix(head, zlib.adler32(shared), shared[-_WINDOW:])


def poster_png(template: PosterTemplate, content: PosterContent) -> bytes:
    """`to_png(render_poster(...))`, the same pixels, much faster within a batch: only the
    footer rows are drawn and compressed per poster."""
    check_content(template, content)
    key = static_key(template, content)
    layer, footer = static_layer(*key), template.footer(key[-1])
    top = max(0, min(footer.top, layer.height))
    rest = layer.crop((0, top, layer.width, layer.height))
    draw_personal(rest, footer, content, top)
    return _png_prefix(key, top).finish(rest)


# ---------------------------------------------------------------------------------------------
# Batches in a process pool

Job = tuple[PosterTemplate, PosterContent] | PosterJob
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class _Failure:
    """A refusal inside a worker. ValidationFailed does not survive pickling (its args are
    the message, not the problems), so it travels as plain data and is raised again."""

    problems: tuple[FieldProblem, ...]
    summary: str


def _render_chunk(jobs: list[Job]) -> list[bytes | _Failure]:
    results: list[bytes | _Failure] = []
    for job in jobs:
        try:
            template, content = job.resolve() if isinstance(job, PosterJob) else job
            results.append(poster_png(template, content))
        except ValidationFailed as exc:
            results.append(_Failure(tuple(exc.problems), exc.summary))
        except DomainError as exc:
            results.append(_Failure((FieldProblem("poster", exc.message),), "海报无法生成"))
    return results


def die_with(parent_pid: int) -> None:
    """Pool initializer: the worker exits as soon as the process that started the batch dies.

    Workers are children of the forkserver, not of the app, and each holds the pipes that
    keep the forkserver and the resource tracker running. If the app is killed (kill -9, the
    OOM killer) it never shuts its pool down, so without this the workers, the forkserver
    and the tracker would all live on, orphaned, holding their memory.
    """
    threading.Thread(
        target=_exit_after, args=(parent_pid,), name="parent-watch", daemon=True
    ).start()


def _exit_after(pid: int) -> None:
    try:
        handle = os.pidfd_open(pid)  # Linux: readable once the process has ended
    except ProcessLookupError:
        os._exit(1)
    except (AttributeError, OSError):
        handle = None
    if handle is not None:
        select.select([handle], [], [])
    else:
        while _alive(pid):
            time.sleep(1.0)
    os._exit(1)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pool_context() -> multiprocessing.context.BaseContext:
    """forkserver: workers fork from a small single-threaded server instead of from the
    caller, which under Streamlit has several threads (fork there could copy a lock, or a
    font half-way through drawing, that another session's thread holds). The server imports
    this module once, so a worker starts in about 15 ms; spawn takes ~0.5 s per worker."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


_MAIN_SWAP = threading.Lock()


@contextmanager
def _main_hidden() -> Iterator[None]:
    """Hide the caller's __main__ while workers are started.

    spawn and forkserver make each new worker re-run the parent's main script unless it is
    guarded by `if __name__ == "__main__"`. Under Streamlit, __main__ is a stand-in module
    whose __file__ is app.py, which is not guarded: every worker would start the whole app.
    A bare module has neither __file__ nor __spec__, so the workers import nothing of it
    (the jobs and the worker function live in core, which they import by name).
    """
    with _MAIN_SWAP:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            if main is not None:
                sys.modules["__main__"] = main


def _raise_failure(index: int, failure: _Failure) -> NoReturn:
    problems = [replace(p, message=f"第 {index + 1} 张海报：{p.message}") for p in failure.problems]
    raise ValidationFailed(problems, summary=failure.summary)


def render_many(
    jobs: Sequence[Job],
    *,
    workers: int = 2,
    progress: ProgressFn | None = None,
) -> Iterator[tuple[int, bytes]]:
    """PNG bytes of every poster, as `(index into jobs, png)` IN INPUT ORDER, rendered by
    `workers` processes; `progress(done, total)` after each one. A job is a
    `(template, content)` pair or a `PosterJob` (template id and scale).

    Every job is validated before any work starts (ValidationFailed lists the posters at
    fault). Only a few chunks are in flight at a time, so a slow consumer (writing a ZIP)
    never has thousands of finished PNGs waiting in memory. With one worker, a single job
    or inside a daemon process (which may not have children) it renders in this process.
    """
    total = len(jobs)
    problems: list[FieldProblem] = []
    for index, job in enumerate(jobs):
        template, content = job.resolve() if isinstance(job, PosterJob) else job
        for problem in validate_content(template, content):
            problems.append(replace(problem, message=f"第 {index + 1} 张海报：{problem.message}"))
    if problems:
        raise ValidationFailed(problems, summary="海报内容有误")
    if total == 0:
        return
    done = 0
    if workers <= 1 or total == 1 or multiprocessing.current_process().daemon:
        for index, job in enumerate(jobs):
            result = _render_chunk([job])[0]
            if isinstance(result, _Failure):
                _raise_failure(index, result)
            done += 1
            yield index, result
            if progress:
                progress(done, total)
        return
    # Chunks amortise the pickling round trip; small enough that progress stays lively.
    chunk = max(1, min(16, total // (workers * 8)))
    starts = iter(range(0, total, chunk))
    pending: deque[tuple[int, Future[list[bytes | _Failure]]]] = deque()
    context = pool_context()
    forkserver.ensure_running()  # outside _main_hidden: the first start takes ~0.3 s
    executor = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=die_with, initargs=(os.getpid(),)
    )
    try:

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                job_slice = list(jobs[start : start + chunk])
                pending.append((start, executor.submit(_render_chunk, job_slice)))

        # Workers are started by the first submits (one each, up to `workers`).
        with _main_hidden():
            for _ in range(workers * 3):
                submit()
        while pending:
            start, future = pending.popleft()
            results = future.result()
            submit()
            for offset, result in enumerate(results):
                if isinstance(result, _Failure):
                    _raise_failure(start + offset, result)
                done += 1
                yield start + offset, result
                if progress:
                    progress(done, total)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
