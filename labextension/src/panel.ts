// The "Experiments" side panel: the project's experiments, newest first, live while they run,
// each expandable to its trials, with TensorBoard actions. Server errors are shown in the panel.
import { Clipboard } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IExperiment, getExperiment, listExperiments, stopTensorBoard } from './api';
import { experimentsIcon } from './icons';

const POLL_MS = 2000;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function formatValue(value: unknown): string {
  return typeof value === 'number' ? Number(value.toPrecision(6)).toString() : String(value);
}

function formatParams(params: Record<string, unknown> | null): string {
  if (!params) {
    return '';
  }
  return Object.entries(params)
    .filter(([name]) => name !== 'tf_config')
    .map(([name, value]) => `${name}=${formatValue(value)}`)
    .join(', ');
}

export interface IPanelActions {
  openTensorBoard(experimentId: string): void;
  tensorBoardsChanged(): void;
}

export class ExperimentsPanel extends Widget {
  constructor(private readonly actions: IPanelActions) {
    super();
    this.id = 'hops-experiments-panel';
    this.title.icon = experimentsIcon;
    this.title.caption = 'Experiments';
    this.addClass('hops-ExperimentsPanel');
    const header = el('div', 'hops-ExperimentsPanel-header', 'Experiments');
    this._error = el('div', 'hops-ExperimentsPanel-error');
    this._error.hidden = true;
    this._list = el('ul', 'hops-ExperimentsPanel-list');
    this.node.append(header, this._error, this._list);
  }

  /** Fetch and render now (also called every few seconds while the panel is visible). */
  async refresh(): Promise<void> {
    try {
      const experiments = await listExperiments();
      const details = new Map<string, IExperiment>();
      await Promise.all(
        experiments
          .filter(e => this._expanded.has(e.id))
          .map(async e => details.set(e.id, await getExperiment(e.id)))
      );
      this._render(experiments, details);
      this._showError(null);
    } catch (error) {
      this._showError(error);
    }
  }

  protected onAfterShow(): void {
    void this.refresh();
    this._timer = window.setInterval(() => void this.refresh(), POLL_MS);
  }

  protected onBeforeHide(): void {
    window.clearInterval(this._timer);
  }

  protected onAfterAttach(): void {
    if (this.isVisible) {
      this.onAfterShow();
    }
  }

  protected onBeforeDetach(): void {
    window.clearInterval(this._timer);
  }

  private _showError(error: unknown): void {
    if (error === null) {
      this._error.hidden = true;
      return;
    }
    this._error.textContent = `Could not reach the experiments API: ${(error as Error).message ?? error}`;
    this._error.hidden = false;
  }

  private async _run(action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
      await this.refresh();
    } catch (error) {
      this._showError(error);
    }
  }

  private _render(experiments: IExperiment[], details: Map<string, IExperiment>): void {
    const items = experiments.map(experiment => this._item(experiment, details.get(experiment.id)));
    if (items.length === 0) {
      items.push(el('li', 'hops-ExperimentsPanel-empty', 'No experiments yet: run %%experiment in a notebook.'));
    }
    this._list.replaceChildren(...items);
  }

  private _item(experiment: IExperiment, detail: IExperiment | undefined): HTMLLIElement {
    const item = el('li', `hops-Experiment hops-status-${experiment.status}`);
    item.dataset.experimentId = experiment.id;
    item.dataset.status = experiment.status;
    const expanded = this._expanded.has(experiment.id);
    const title = el('button', 'hops-Experiment-title', `${expanded ? '▾' : '▸'} ${experiment.name}`);
    title.title = `Show the trials of ${experiment.id}`;
    title.onclick = () => {
      if (expanded) {
        this._expanded.delete(experiment.id);
      } else {
        this._expanded.add(experiment.id);
      }
      void this.refresh();
    };
    const total = experiment.trials_total ?? experiment.trials_done;
    const summary = el(
      'div',
      'hops-Experiment-summary',
      `${experiment.kind} · ${experiment.status} · ${experiment.trials_done}/${total} trials`
    );
    const best = el(
      'div',
      'hops-Experiment-best',
      experiment.best_metric === null ? '' : `best ${formatValue(experiment.best_metric)} ${formatParams(experiment.best_params)}`
    );
    const actions = el('div', 'hops-Experiment-actions');
    const open = el('button', 'jp-mod-styled hops-open-tensorboard', 'TensorBoard');
    open.onclick = () => this.actions.openTensorBoard(experiment.id);
    const stop = el('button', 'jp-mod-styled hops-stop-tensorboard', 'Stop TensorBoard');
    stop.disabled = experiment.tensorboard === null;
    stop.onclick = () =>
      void this._run(async () => {
        await stopTensorBoard(experiment.id);
        this.actions.tensorBoardsChanged();
      });
    const copy = el('button', 'jp-mod-styled hops-copy-path', 'Copy path');
    copy.onclick = () => Clipboard.copyToSystem(experiment.url);
    actions.append(open, stop, copy);
    item.append(title, summary, best, actions);
    if (expanded && detail?.trials) {
      const trials = el('ul', 'hops-Trials');
      for (const trial of detail.trials) {
        const row = el('li', `hops-Trial hops-status-${trial.status}`);
        row.dataset.trialId = trial.id;
        row.dataset.status = trial.status;
        const metric = trial.metric ?? trial.latest?.metric;
        const status =
          trial.status === 'EARLY_STOPPED' && trial.stopped_step !== undefined && trial.stopped_step !== null
            ? `EARLY_STOPPED at step ${trial.stopped_step}`
            : trial.status;
        row.textContent = `${trial.id} · ${status}${metric === undefined || metric === null ? '' : ` · ${formatValue(metric)}`}`;
        if (trial.error) {
          row.title = trial.error.message;
        }
        trials.append(row);
      }
      item.append(trials);
    }
    return item;
  }

  private _error: HTMLDivElement;
  private _list: HTMLUListElement;
  private _expanded = new Set<string>();
  private _timer = 0;
}
