"""One marked section of a shared markdown report, replaced in place by the benchmark that owns it.

Several benchmarks write into one report (docs/results/item2item_serving.md): each owns the text
between its ``<!-- name:begin -->`` / ``<!-- name:end -->`` markers and keeps the rest.
"""

from __future__ import annotations


def replace_section(existing: str | None, section: str, begin: str, end: str, title: str) -> str:
    """``existing`` with the ``begin``…``end`` section replaced by ``section`` (which holds the
    markers), appended when absent; a new report starts with ``# title``."""
    if existing is None:
        return f"# {title}\n\n{section}\n"
    start, stop = existing.find(begin), existing.find(end)
    if start >= 0 and stop > start:
        return existing[:start] + section + existing[stop + len(end) :]
    return existing.rstrip("\n") + "\n\n" + section + "\n"
