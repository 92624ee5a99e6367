// The "Experiments" side panel: the project's experiments, newest first, one compact row each,
// with search and a status filter. React updates only the rows that changed, so focus, text
// selection and scroll position survive every poll.
import { HTMLSelect, ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { IExperiment } from './api';
import { ExperimentRow, IPanelActions } from './experimentrow';
import { experimentsIcon } from './icons';
import { ExperimentsModel } from './model';
import { STATUSES, statusWord } from './status';

export { IPanelActions } from './experimentrow';

function matches(experiment: IExperiment, words: string[]): boolean {
  const text = `${experiment.name} ${experiment.id} ${experiment.status} ${experiment.kind}`.toLowerCase();
  return words.every(word => text.includes(word));
}

function filterExperiments(experiments: readonly IExperiment[], query: string, status: string): readonly IExperiment[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0 && !status) {
    return experiments;
  }
  return experiments.filter(e => (!status || e.status === status) && matches(e, words));
}

function countByStatus(experiments: readonly IExperiment[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const e of experiments) {
    counts.set(e.status, (counts.get(e.status) ?? 0) + 1);
  }
  return counts;
}

function Filters(props: {
  query: string;
  status: string;
  counts: Map<string, number>;
  setQuery: (query: string) => void;
  setStatus: (status: string) => void;
}): JSX.Element {
  return (
    <div className="hops-ExperimentsPanel-filters">
      <input
        type="search"
        className="jp-mod-styled hops-ExperimentsPanel-search"
        placeholder="Search"
        aria-label="Filter experiments by name, id or status"
        value={props.query}
        onChange={event => props.setQuery(event.target.value)}
      />
      <HTMLSelect
        className="hops-ExperimentsPanel-status"
        aria-label="Show experiments with this status"
        value={props.status}
        onChange={event => props.setStatus(event.target.value)}
        options={[
          { value: '', label: 'All' },
          ...STATUSES.map(status => ({ value: status, label: `${statusWord(status)} (${props.counts.get(status) ?? 0})` }))
        ]}
      />
    </div>
  );
}

function EmptyList(props: { loaded: boolean; filtered: boolean }): JSX.Element {
  const text = !props.loaded
    ? 'Loading…'
    : props.filtered
      ? 'No experiment matches the filter.'
      : 'No experiments yet: run %%experiment in a notebook.';
  return <li className="hops-ExperimentsPanel-empty">{text}</li>;
}

function ExperimentsView(props: { model: ExperimentsModel; actions: IPanelActions }): JSX.Element {
  const { model, actions } = props;
  const [query, setQuery] = React.useState('');
  const [status, setStatus] = React.useState('');
  const experiments = model.experiments;
  const shown = React.useMemo(() => filterExperiments(experiments, query, status), [experiments, query, status]);
  const counts = React.useMemo(() => countByStatus(experiments), [experiments]);
  const filtered = shown.length !== experiments.length;
  return (
    <>
      <div className="hops-ExperimentsPanel-header">
        <span className="hops-ExperimentsPanel-title">Experiments</span>
        <span className="hops-ExperimentsPanel-count">
          {filtered ? `${shown.length} of ${experiments.length}` : experiments.length || ''}
        </span>
      </div>
      <Filters query={query} status={status} counts={counts} setQuery={setQuery} setStatus={setStatus} />
      {model.error ? (
        <div className="hops-ExperimentsPanel-error" role="alert">
          {model.error}
        </div>
      ) : null}
      <ul className="hops-ExperimentsPanel-list">
        {shown.length === 0 ? <EmptyList loaded={model.loaded} filtered={experiments.length > 0} /> : null}
        {shown.map(e => (
          <ExperimentRow
            key={e.id}
            experiment={e}
            expanded={model.isExpanded(e.id)}
            trials={model.trials(e.id)}
            actions={actions}
          />
        ))}
      </ul>
    </>
  );
}

export class ExperimentsPanel extends ReactWidget {
  constructor(
    readonly model: ExperimentsModel,
    private readonly _actions: IPanelActions
  ) {
    super();
    this.id = 'hops-experiments-panel';
    this.title.icon = experimentsIcon;
    this.title.caption = 'Experiments';
    this.addClass('hops-ExperimentsPanel');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.model.changed}>
        {() => <ExperimentsView model={this.model} actions={this._actions} />}
      </UseSignal>
    );
  }

  dispose(): void {
    this.model.dispose();
    super.dispose();
  }

  // Poll only while the panel can be seen.
  protected onAfterShow(): void {
    this.model.setActive(true);
  }

  protected onBeforeHide(): void {
    this.model.setActive(false);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this.model.setActive(true);
    }
  }

  protected onBeforeDetach(msg: Message): void {
    this.model.setActive(false);
    super.onBeforeDetach(msg);
  }
}
