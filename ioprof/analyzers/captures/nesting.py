"""Which event encloses which, on one thread, for whole columns of events at once.

TF's profiler records each thread's events as spans that nest (a TraceMe inside another);
"the innermost iterator (executor run, XLA thunk ...) around this event" is the question the
scan asks of every event. Split from scan.py so that other per-line passes (XLA's thunks) can
ask it too.
"""

from __future__ import annotations

import numpy as np


class Nesting:
    """Events of one kind (iterators, executor runs ...) on one thread, and for any event
    the innermost of them enclosing its start: the latest-started one still open then.

    Events on a thread nest, so the ones open at time t form a chain; its length is the number
    started before t minus the number ended by t, and the innermost link is the latest event
    before t at depth length-1 (a later one at that depth would be nested in it). Everything is
    positions in the line's (start, longer first) order; zero-length events enclose nothing.
    A thread whose events do not nest (one outlives its parent) is answered by a stack
    instead, in Python: correct for any layout, slower, and not seen in TF's captures.
    """

    def __init__(self, order_pos: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        keep = ends > starts
        self.pos = order_pos[keep]
        self.starts, self.ends = starts[keep], ends[keep]
        n = len(self.pos)
        self.sorted_ends = np.sort(self.ends)
        rank = np.arange(n)
        depth = rank - np.searchsorted(self.sorted_ends, self.starts, side="right")
        self.width = n + 1
        self.keys = np.sort(depth * self.width + rank)
        parent = self._by_depth(self.pos, self.starts)
        p = np.maximum(parent, 0)
        self.nested = bool(((parent < 0) | ((self.ends[p] > self.starts)
                                             & (self.ends[p] >= self.ends))).all())
        # each member's innermost enclosing member (its rank), -1 for the outermost
        self.parent = parent if self.nested else self._by_stack(self.pos, self.starts)

    def __len__(self) -> int:
        return len(self.pos)

    def innermost(self, order_pos: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """For each query event: the rank (into this set) of the innermost enclosing one, -1
        when none. A member of the set gets its parent."""
        if self.nested:
            return self._by_depth(order_pos, starts)
        return self._by_stack(order_pos, starts)

    def _by_depth(self, order_pos: np.ndarray, starts: np.ndarray) -> np.ndarray:
        if not len(self.pos) or not len(order_pos):
            return np.full(len(order_pos), -1, np.int64)
        before = np.searchsorted(self.pos, order_pos, side="left")
        depth = before - np.searchsorted(self.sorted_ends, starts, side="right")
        target = (depth - 1) * self.width + (before - 1)
        j = np.searchsorted(self.keys, target, side="right") - 1
        found = self.keys[np.maximum(j, 0)]
        ok = (depth > 0) & (j >= 0) & (found // self.width == depth - 1)
        return np.where(ok, found % self.width, -1)

    def _by_stack(self, order_pos: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """A stack of members, ended ones popped from the top: the top is then the latest-
        started member still open (any later-started one above it has ended)."""
        member_pos, member_start = self.pos.tolist(), self.starts.tolist()
        member_end = self.ends.tolist()
        out = np.full(len(order_pos), -1, np.int64)
        stack: list[int] = []
        m = 0
        for k in np.argsort(order_pos, kind="stable").tolist():
            q, t = int(order_pos[k]), int(starts[k])
            while m < len(member_pos) and member_pos[m] < q:
                while stack and member_end[stack[-1]] <= member_start[m]:
                    stack.pop()
                stack.append(m)
                m += 1
            while stack and member_end[stack[-1]] <= t:
                stack.pop()
            out[k] = stack[-1] if stack else -1
        return out


def self_gaps(nest: Nesting, parent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each nest member's [start, end) minus its direct children: (member rank per gap, gaps).

    Children of one parent follow each other in time (they nest), so each gap runs from the
    previous child's end (or the parent's start) to the next child's start (or the parent's
    end). Where events do not nest, children may overlap or outlive the parent: each parent's
    gaps are then computed one by one."""
    if not nest.nested:
        return self_gaps_one_by_one(nest, parent)
    n = len(nest)
    children = np.flatnonzero(parent >= 0)
    by_parent = children[np.argsort(parent[children], kind="stable")]
    par = parent[by_parent]
    c_start = np.maximum(nest.starts[by_parent], nest.starts[par])
    c_end = np.minimum(nest.ends[by_parent], nest.ends[par])
    first = np.ones(len(by_parent), bool)
    first[1:] = par[1:] != par[:-1]
    prev_end = np.empty(len(by_parent), np.int64)
    prev_end[first] = nest.starts[par[first]]
    prev_end[~first] = np.maximum(c_end[:-1][~first[1:]], nest.starts[par[~first]])
    # gaps before each child, then after the last child (or the whole event: no children)
    last_end = np.array(nest.starts, copy=True)
    last_child = np.ones(len(by_parent), bool)
    last_child[:-1] = par[:-1] != par[1:]
    last_end[par[last_child]] = np.maximum(c_end[last_child], nest.starts[par[last_child]])
    owners = np.concatenate((par, np.arange(n)))
    gap_s = np.concatenate((prev_end, last_end))
    gap_e = np.concatenate((c_start, nest.ends))
    keep = gap_e > gap_s
    owners, gap_s, gap_e = owners[keep], gap_s[keep], gap_e[keep]
    order = np.lexsort((gap_s, owners))
    return owners[order], np.column_stack((gap_s[order], gap_e[order]))


def self_gaps_one_by_one(nest: Nesting, parent: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
    children: dict[int, list[tuple[int, int]]] = {}
    for child in np.flatnonzero(parent >= 0).tolist():
        children.setdefault(int(parent[child]), []).append(
            (int(nest.starts[child]), int(nest.ends[child])))
    owners: list[int] = []
    gaps: list[tuple[int, int]] = []
    for r in range(len(nest)):
        start, end = int(nest.starts[r]), int(nest.ends[r])
        cur = start
        for s, e in children.get(r, []):
            if s > cur:
                owners.append(r)
                gaps.append((cur, min(s, end)))
            cur = max(cur, e)
            if cur >= end:
                break
        if cur < end:
            owners.append(r)
            gaps.append((cur, end))
    return (np.array(owners, np.int64),
            np.array(gaps, np.int64).reshape(-1, 2))


def group_sum(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Exact int64 sums of `values` per group (bincount's float weights would round)."""
    out = np.zeros(n, np.int64)
    np.add.at(out, groups, values)
    return out
