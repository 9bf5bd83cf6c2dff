"""Nested runs in the runs table: children grouped under their parent, and how many are elsewhere.

The table shows a page of runs newest first, so a sweep's trials (started
after their parent) would come before it. ``group`` puts each run whose parent
is on the page right after that parent (depth first, so grandchildren follow
their own parent), in the page's order among siblings; a run whose parent is
not on the page stays where the page put it, with its arrow to the parent.

``child_counts`` counts every child of the page's runs in one search
(``parent_run_id IN (…)``), bounded by ``MAX_CHILD_SCAN``: a parent row can
then say "N more children" (not on this page) and link to the filtered view
``attributes.parent_run_id = '<id>'``. Past the bound the counts are lower
bounds and the row says so ("N+").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from loopml.entities.search import Comparison
from loopml.entities.tracking import Run
from loopml.store import Store

#: Most children read to count them, whatever the page's size.
MAX_CHILD_SCAN = 1000


@dataclass(frozen=True, slots=True)
class Placed:
    """A run's place in the grouped table: its depth, its parent on the page and its ancestors on the page."""

    run: Run
    depth: int
    parent: str  # the parent's run id when the parent is on this page, else ""
    ancestors: tuple[str, ...]


def group(runs: Sequence[Run]) -> list[Placed]:
    """``runs`` with each child right after its parent when both are on the page (see the module docstring)."""
    on_page = {run.run_id for run in runs}
    children: dict[str, list[Run]] = {}
    top: list[Run] = []
    for run in runs:
        parent = run.info.parent_run_id
        if parent and parent in on_page and parent != run.run_id:
            children.setdefault(parent, []).append(run)
        else:
            top.append(run)
    placed: list[Placed] = []
    seen: set[str] = set()

    def visit(run: Run, ancestors: tuple[str, ...]) -> None:
        if run.run_id in seen:
            return
        seen.add(run.run_id)
        placed.append(Placed(run, len(ancestors), ancestors[-1] if ancestors else "", ancestors))
        for child in children.get(run.run_id, ()):
            visit(child, (*ancestors, run.run_id))

    for run in top:
        visit(run, ())
    for run in runs:  # a cycle of parents cannot be stored, but no run is ever dropped from the page
        visit(run, ())
    return placed


def child_counts(store: Store, experiment_id: int, runs: Sequence[Run]) -> tuple[Counter[str], bool]:
    """How many children each run of the page has in the experiment (one search); whether the scan was cut."""
    if not runs:
        return Counter(), False
    found = store.tracking.search_runs(
        [experiment_id],
        Comparison("attribute", "parent_run_id", "in", tuple(run.run_id for run in runs)),
        (),
        MAX_CHILD_SCAN,
        None,
    )
    counts = Counter(run.info.parent_run_id for run in found.runs if run.info.parent_run_id)
    return counts, found.next_page_token is not None
