"""Interval arithmetic on sorted, disjoint `(start, end)` lists: the core of every attribution.

Everything here is linear (or n log n for the initial sort), because captures hold millions of
events. An interval list is "normal" when sorted by start, disjoint and non-empty; `union`
makes one, and the other functions take and return normal lists.
"""

from __future__ import annotations

from collections.abc import Iterable

Interval = tuple[int, int]


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Merge overlapping or touching intervals into a normal list."""
    out: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if out and start <= out[-1][1]:
            if end > out[-1][1]:
                out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return out


def total(intervals: Iterable[Interval]) -> int:
    return sum(e - s for s, e in intervals)


def intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The common part of two normal lists (two-pointer sweep)."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        s = max(a[i][0], b[j][0])
        e = min(a[i][1], b[j][1])
        if s < e:
            out.append((s, e))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The part of `a` not covered by `b` (both normal)."""
    out: list[Interval] = []
    j = 0
    for s, e in a:
        cur = s
        while j < len(b) and b[j][1] <= cur:
            j += 1
        k = j
        while k < len(b) and b[k][0] < e:
            if b[k][0] > cur:
                out.append((cur, b[k][0]))
            cur = max(cur, b[k][1])
            if cur >= e:
                break
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


def clip(a: list[Interval], start: int, end: int) -> list[Interval]:
    """The part of a normal list inside [start, end), by bisection (cheap per step)."""
    from bisect import bisect_left

    if not a or end <= start:
        return []
    i = max(bisect_left(a, (start, start)) - 1, 0)
    n = len(a)
    out: list[Interval] = []
    while i < n:  # no slicing: a copy of the tail per call would make steps quadratic
        s, e = a[i]
        if s >= end:
            break
        s2, e2 = max(s, start), min(e, end)
        if s2 < e2:
            out.append((s2, e2))
        i += 1
    return out
