"""The trial table as HTML: one `<tbody>` per trial (its row, and its error under it), with the
values to sort by in `data-v` so the live panel can sort it in the browser.

The same markup serves the live panel (styles as classes: one stylesheet, a lighter message per
update) and the static output (styles inline: a saved notebook or an HTML export has no
stylesheet of ours); `table_css` turns the one style table into the panel's stylesheet, so both
look the same. A failed trial's exception shows in the table, its traceback one click away;
failed, killed and pending trials show no metric.
"""

from __future__ import annotations

import math
from typing import Any

from hops_jupyter.core.experiment.records import ExperimentRecord, TrialRecord, TrialStatus
from hops_jupyter.widgets import formatting as fmt
from hops_jupyter.widgets import palette
from hops_jupyter.widgets.markup import esc, short_html, status_html

LIMIT = 200  # rows in a table; the rest are counted, not shown
HAS_METRIC = (TrialStatus.FINISHED, TrialStatus.EARLY_STOPPED)
# Sorting the status column puts what needs attention first.
STATUS_RANK = {TrialStatus.RUNNING: 0, TrialStatus.PENDING: 1, TrialStatus.FAILED: 2,
               TrialStatus.KILLED: 3, TrialStatus.EARLY_STOPPED: 4, TrialStatus.FINISHED: 5}  # fmt: skip
_LINE = "1px solid rgba(127,127,127,0.2)"
STYLES = {
    "scroll": "max-height:460px;overflow:auto;margin:4px 0",
    "table": "border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums;"
             "line-height:1.4",
    "th": "padding:5px 10px;border-bottom:2px solid rgba(127,127,127,0.45);white-space:nowrap;"
          "position:sticky;top:0;background:var(--jp-layout-color1,#fff);font-weight:600;"
          "text-align:left",
    "td": f"padding:4px 10px;border-bottom:{_LINE};white-space:nowrap;text-align:left",
    "num": "text-align:right",
    "best": "background:rgba(255,190,0,0.2)",
    "latest": "opacity:0.7",
    "error": f"padding:0 10px 6px 34px;border-bottom:{_LINE};white-space:normal;"
             "text-align:left;color:#d62728;max-width:60em",
    "stopped": "color:#7f7f7f",  # a killed trial's note: no error of its own
    "pre": "margin:4px 0 0;padding:6px 8px;background:rgba(214,39,40,0.07);font-size:11.5px;"
           "max-height:320px;overflow:auto;white-space:pre-wrap;color:inherit",
}  # fmt: skip


def table_css() -> str:
    """The style table as a stylesheet, for markup made with `inline=False`."""
    # Scoped to the panel: as specific as a notebook's own output table rules, and later.
    return "\n".join(f".hops-panel .hops-t-{name} {{ {rule} }}" for name, rule in STYLES.items())


class _Style:
    """` style="..."` (inline) or ` class="hops-t-..."` for the named styles."""

    def __init__(self, inline: bool) -> None:
        self.inline = inline

    def __call__(self, *names: str, cls: str = "") -> str:
        if self.inline:
            own = f' class="{cls}"' if cls else ""
            return f'{own} style="{";".join(STYLES[n] for n in names)}"'
        classes = ([cls] if cls else []) + [f"hops-t-{n}" for n in names]
        return f' class="{" ".join(classes)}"'


def param_names(record: ExperimentRecord) -> list[str]:
    return list(record.search_space) or sorted({k for t in record.trials for k in t.params})


def shows_metric(trial: TrialRecord) -> bool:
    """Only finished and early-stopped trials have a metric to show (a failed, killed or
    pending one shows none, not even its latest report)."""
    return trial.status in HAS_METRIC


def metric_value(trial: TrialRecord) -> float | None:
    if shows_metric(trial) and isinstance(trial.metric, (int, float)):
        return float(trial.metric)
    return None


def best_first(record: ExperimentRecord, trials: list[TrialRecord]) -> list[TrialRecord]:
    """Trials best first (by the record's direction), those without a metric after them."""
    if not record.direction:
        return list(trials)
    sign = 1.0 if record.direction == "min" else -1.0
    numbers = palette.numbers(record)

    def key(trial: TrialRecord) -> tuple[Any, ...]:
        value = metric_value(trial)
        scored = value is not None and math.isfinite(value)
        return (not scored, sign * value if scored else 0.0, STATUS_RANK.get(trial.status, 9),
                numbers.get(trial.id, 10**9))  # fmt: skip

    return sorted(trials, key=key)


def shown(record: ExperimentRecord, limit: int) -> list[TrialRecord]:
    """At most `limit` trials: the running ones, then the best."""
    if len(record.trials) <= limit:
        return list(record.trials)
    running = [t for t in record.trials if t.status == TrialStatus.RUNNING][:limit]
    rest = best_first(record, [t for t in record.trials if t.status != TrialStatus.RUNNING])
    keep = {t.id for t in running + rest[: limit - len(running)]}
    return [t for t in record.trials if t.id in keep]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def first_line(message: Any, limit: int = 300) -> str:
    """The first line of a message, cut at `limit` characters ("…" says there is more)."""
    lines = str(message or "").strip().splitlines() or [""]
    line = lines[0]
    if len(line) > limit:
        return line[: limit - 1] + "…"
    return line + (" …" if len(lines) > 1 else "")


def error_summary(error: dict[str, Any]) -> str:
    """`<b>ValueError</b>: the message's first line`."""
    return f"<b>{esc(error.get('type') or 'Error')}</b>: {esc(first_line(error.get('message')))}"


def error_html(error: Any, style: _Style | None = None) -> str:
    """A trial's exception: type and message in plain sight, its traceback one click away."""
    style = style or _Style(inline=True)
    if not isinstance(error, dict):
        return f"<b>error</b>: {esc(error)}"
    summary = error_summary(error)
    trace = error.get("traceback")
    if not trace:
        return summary
    return (
        f'<details><summary style="cursor:pointer">{summary}</summary>'
        f"<pre{style('pre')}>{esc(trace)}</pre></details>"
    )


class _Rows:
    """The rows of one table, in one style."""

    def __init__(self, record: ExperimentRecord, style: _Style) -> None:
        self.record, self.style = record, style
        self.names = param_names(record)
        self.numbers = palette.numbers(record)

    def td(self, text: str, sort: Any = "", numeric: bool = False, extra: str = "") -> str:
        css = self.style("td", "num") if numeric else self.style("td")
        return f'<td data-v="{esc(sort)}"{css}{extra}>{text}</td>'

    def metric(self, trial: TrialRecord) -> str:
        value = metric_value(trial)
        if value is not None:
            return self.td(short_html(value), value, numeric=True)
        if shows_metric(trial) and trial.metric_nonfinite:
            return self.td(esc(trial.metric_nonfinite), numeric=True)
        latest = (trial.latest or {}).get("metric")
        if trial.status == TrialStatus.RUNNING and _is_number(latest):
            title = f"latest report, step {(trial.latest or {}).get('step')}: {fmt.full(latest)}"
            text = f'<i title="{esc(title)}"{self.style("latest")}>{esc(fmt.short(latest))}</i>'
            return self.td(text, latest, numeric=True)
        return self.td("", numeric=True)

    def duration(self, trial: TrialRecord) -> str:
        if trial.status == TrialStatus.RUNNING and trial.started:
            # The panel's script counts the seconds: no kernel message per tick.
            return self.td("", numeric=True, extra=f' data-started="{esc(trial.started)}"')
        return self.td(esc(fmt.duration(trial.duration_s)), trial.duration_s, numeric=True)

    def trial(self, trial: TrialRecord) -> str:
        best = trial.id == self.record.best_trial
        number = self.numbers.get(trial.id)
        params = "".join(
            self.td(short_html(v), v if _is_number(v) else fmt.full(v), numeric=_is_number(v))
            for v in (trial.params.get(n) for n in self.names)
        )
        cells = (
            self.td(f"{'★ ' if best else ''}{number or ''}", number or "", numeric=True)
            + self.td(status_html(trial.status, trial.stopped_step),
                      STATUS_RANK.get(trial.status, 9))
            + params + self.metric(trial) + self.duration(trial)
        )  # fmt: skip
        mark = f'{self.style("best")} title="best trial"' if best else ""
        rows = f"<tr{mark}>{cells}</tr>"
        if trial.error and trial.status != TrialStatus.FINISHED:
            kind = ("error",) if trial.status == TrialStatus.FAILED else ("error", "stopped")
            rows += (
                f'<tr><td colspan="{len(self.names) + 4}"{self.style(*kind)}>'
                f"{error_html(trial.error, self.style)}</td></tr>"
            )
        return (
            f'<tbody data-trial="{esc(trial.id)}" data-status="{esc(trial.status)}" '
            f'data-label="{esc(fmt.trial_label(trial.params))}">{rows}</tbody>'
        )

    def head(self) -> str:
        columns = [("#", True), ("status", False)]
        for name in self.names:
            values = [t.params[name] for t in self.record.trials if name in t.params]
            columns.append((name, bool(values) and all(_is_number(v) for v in values)))
        columns += [(self.record.metric_key or "metric", True), ("duration", True)]
        return "".join(
            f'<th data-col="{i}" data-num="{int(num)}"'
            f"{self.style('th', 'num') if num else self.style('th')}>{esc(name)}</th>"
            for i, (name, num) in enumerate(columns)
        )


def table_html(
    record: ExperimentRecord, limit: int = LIMIT, order: str = "start", inline: bool = True
) -> str:
    """The trial table. `order`: "best" (the static output) or "start" (the live panel, which
    the user sorts by clicking a column header); `inline`: styles inline or as classes."""
    style = _Style(inline)
    rows = _Rows(record, style)
    trials = shown(record, limit)
    if order == "best":
        trials = best_first(record, trials)
    more = len(record.trials) - len(trials)
    note = (
        f"<p><i>{more} more trials not shown: experiment.get({esc(repr(record.id))}).trials "
        "lists them all</i></p>" if more > 0 else ""
    )  # fmt: skip
    return (
        f"<div{style('scroll')}><table{style('table', cls='hops-trials')}>"
        f"<thead><tr>{rows.head()}</tr></thead>{''.join(rows.trial(t) for t in trials)}"
        f"</table></div>{note}"
    )
