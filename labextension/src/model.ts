// The Experiments panel's data: the project's experiments and the trials of the expanded ones,
// polled while the panel is visible (faster while something runs).
//
// Each poll keeps the previous object of every experiment and trial that did not change, so the
// memoised React rows that show them are skipped: a refresh of 200 idle experiments renders
// nothing, and a refresh that changes nothing does not even emit `changed`.
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { IExperiment, ITrial, getExperiment, listExperiments } from './api';
import { Poller } from './poller';

/** Poll period while any experiment runs, and while none does. */
export const FAST_POLL_MS = 1000;
export const SLOW_POLL_MS = 2000;

/** `next` with the objects of `previous` kept where nothing in them changed. */
function reuseUnchanged<T extends { id: string }>(
  previous: Map<string, { json: string; item: T }>,
  next: T[]
): { items: T[]; seen: Map<string, { json: string; item: T }>; changed: boolean } {
  const seen = new Map<string, { json: string; item: T }>();
  let changed = next.length !== previous.size;
  const items = next.map(item => {
    const json = JSON.stringify(item);
    const old = previous.get(item.id);
    if (old && old.json === json) {
      seen.set(item.id, old);
      return old.item;
    }
    changed = true;
    seen.set(item.id, { json, item });
    return item;
  });
  return { items, seen, changed };
}

function errorMessage(error: unknown): string {
  return `Could not reach the experiments API: ${(error as Error)?.message ?? String(error)}`;
}

export class ExperimentsModel implements IDisposable {
  /** Emitted after a poll that changed what the panel shows, and on expand/collapse. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Newest first, as the server lists them. */
  get experiments(): readonly IExperiment[] {
    return this._experiments;
  }

  /** Why the last poll failed (the list shown is then the last one that loaded). */
  get error(): string | null {
    return this._error;
  }

  /** False until the first poll answered: "no experiments" is not said before we know. */
  get loaded(): boolean {
    return this._loaded;
  }

  get isDisposed(): boolean {
    return this._poller.isDisposed;
  }

  isExpanded(id: string): boolean {
    return this._expanded.has(id);
  }

  /** The trials of an expanded experiment, once fetched. */
  trials(id: string): readonly ITrial[] | undefined {
    return this._trials.get(id);
  }

  toggle(id: string): void {
    if (this._expanded.has(id)) {
      this._expanded.delete(id);
      this._trials.delete(id);
      this._trialJson.delete(id);
      this._detailOf.delete(id);
    } else {
      this._expanded.add(id);
    }
    this._changed.emit();
    if (this._expanded.has(id)) {
      this.refreshSoon();
    }
  }

  /** Poll while active (the panel is visible); stop when not. */
  setActive(active: boolean): void {
    this._poller.setActive(active);
  }

  /** Poll now (or right after the poll in flight), e.g. after an action changed something. */
  refreshSoon(): void {
    this._poller.now();
  }

  /** Fetch the list, and the trials of expanded experiments that may have changed. */
  async refresh(): Promise<void> {
    let changed = false;
    try {
      const listed = reuseUnchanged(this._experimentJson, await listExperiments());
      this._experimentJson = listed.seen;
      if (listed.changed || !this._loaded) {
        this._experiments = listed.items;
        changed = true;
      }
      const updates = await Promise.all(listed.items.filter(e => this._needsTrials(e)).map(e => this._fetchTrials(e)));
      changed = updates.some(Boolean) || changed;
      this._dropCollapsedOrGone(listed.seen);
      changed = this._setError(null) || changed;
      this._loaded = true;
    } catch (error) {
      changed = this._setError(errorMessage(error)) || changed;
    }
    if (changed && !this.isDisposed) {
      this._changed.emit();
    }
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._poller.dispose();
    Signal.clearData(this);
  }

  /** Trials are fetched for expanded experiments only, and again only while they can change. */
  private _needsTrials(experiment: IExperiment): boolean {
    if (!this._expanded.has(experiment.id)) {
      return false;
    }
    return experiment.status === 'RUNNING' || this._detailOf.get(experiment.id) !== experiment;
  }

  /** True when the trials shown changed. */
  private async _fetchTrials(experiment: IExperiment): Promise<boolean> {
    let detail: IExperiment;
    try {
      detail = await getExperiment(experiment.id);
    } catch (error) {
      // Deleted since it was listed, or a record half-way through a rewrite: the next poll
      // tells (a server that is down fails the list request, which the panel reports).
      console.warn(`hops-jupyter: could not read experiment ${experiment.id}`, error);
      return false;
    }
    if (!this._expanded.has(experiment.id)) {
      return false; // collapsed while the request was out
    }
    this._detailOf.set(experiment.id, experiment);
    const kept = reuseUnchanged(this._trialJson.get(experiment.id) ?? new Map(), detail.trials ?? []);
    this._trialJson.set(experiment.id, kept.seen);
    if (!kept.changed && this._trials.has(experiment.id)) {
      return false;
    }
    this._trials.set(experiment.id, kept.items);
    return true;
  }

  private _dropCollapsedOrGone(listed: Map<string, unknown>): void {
    for (const id of Array.from(this._expanded)) {
      if (!listed.has(id)) {
        this._trials.delete(id);
        this._trialJson.delete(id);
        this._detailOf.delete(id);
        this._expanded.delete(id);
      }
    }
  }

  private _setError(error: string | null): boolean {
    if (error === this._error) {
      return false;
    }
    this._error = error;
    return true;
  }

  /** One poll; the delay before the next: shorter while something runs. */
  private async _poll(): Promise<number> {
    await this.refresh();
    return this._experiments.some(e => e.status === 'RUNNING') ? FAST_POLL_MS : SLOW_POLL_MS;
  }

  private _experiments: readonly IExperiment[] = [];
  private _experimentJson = new Map<string, { json: string; item: IExperiment }>();
  private _expanded = new Set<string>();
  private _trials = new Map<string, readonly ITrial[]>();
  private _trialJson = new Map<string, Map<string, { json: string; item: ITrial }>>();
  // The list entry each experiment's trials were fetched with: a new entry means new trials.
  private _detailOf = new Map<string, IExperiment>();
  private _error: string | null = null;
  private _loaded = false;
  private _poller = new Poller(() => this._poll());
  private _changed = new Signal<this, void>(this);
}
