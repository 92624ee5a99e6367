// One experiment in the panel: a single compact row (name, start time, status, best metric,
// icon actions), expanding to a summary and its trials.
import { caretDownIcon, caretRightIcon, stopIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IExperiment, ITrial } from './api';
import { CopyButton, IconButton } from './buttons';
import { formatDuration, formatParams, formatValue, longTime, shortTime } from './format';
import { tensorboardIcon, tensorboardOffIcon } from './icons';
import { StatusDot, statusWord } from './status';
import { TrialRow } from './trialrow';

/** What rows can do; one object for the panel's lifetime, so memoised rows stay skipped. */
export interface IPanelActions {
  toggle(experimentId: string): void;
  openTensorBoard(experiment: IExperiment): void;
  stopTensorBoard(experiment: IExperiment): void;
  stopExperiment(experiment: IExperiment): void;
  openLog(experimentId: string, trial: ITrial): void;
}

function progress(experiment: IExperiment): string {
  const total = experiment.trials_total ?? experiment.trials_done;
  return `${experiment.trials_done}/${total}`;
}

function Summary(props: { experiment: IExperiment }): JSX.Element {
  const e = props.experiment;
  const parts = [e.kind, statusWord(e.status), `${progress(e)} trials`];
  if (e.trials_failed > 0) {
    parts.push(`${e.trials_failed} failed`);
  }
  const duration = formatDuration(e.duration_s);
  if (duration) {
    parts.push(duration);
  }
  return (
    <div className="hops-Experiment-detailHeader">
      <div className="hops-Experiment-summary">{parts.join(' · ')}</div>
      {e.status_message ? <div className="hops-Experiment-message">{e.status_message}</div> : null}
      {e.best_metric !== null ? (
        <div className="hops-Experiment-best">
          best {formatValue(e.best_metric)}
          {formatParams(e.best_params) ? ` · ${formatParams(e.best_params)}` : ''}
        </div>
      ) : null}
      <div className="hops-Experiment-id" title={e.url}>
        {e.id}
      </div>
    </div>
  );
}

function Trials(props: { experimentId: string; trials: readonly ITrial[] | undefined; actions: IPanelActions }): JSX.Element {
  if (props.trials === undefined) {
    return <div className="hops-Experiment-loading">Loading trials…</div>;
  }
  if (props.trials.length === 0) {
    return <div className="hops-Experiment-loading">No trials yet.</div>;
  }
  return (
    <ul className="hops-Trials">
      {props.trials.map(trial => (
        <TrialRow key={trial.id} experimentId={props.experimentId} trial={trial} openLog={props.actions.openLog} />
      ))}
    </ul>
  );
}

export interface IExperimentRowProps {
  experiment: IExperiment;
  expanded: boolean;
  trials: readonly ITrial[] | undefined;
  actions: IPanelActions;
}

function ExperimentRowView(props: IExperimentRowProps): JSX.Element {
  const { experiment: e, expanded, actions } = props;
  const running = e.status === 'RUNNING';
  const time = shortTime(e.started);
  const metricTitle = e.metric_key ? `best ${e.metric_key}` : 'best metric';
  return (
    <li className={`hops-Experiment hops-status-${e.status}`} data-experiment-id={e.id} data-status={e.status}>
      <div className="hops-Experiment-row">
        <button
          type="button"
          className="hops-Experiment-title"
          aria-expanded={expanded}
          title={`${e.name} (${e.id}): ${expanded ? 'hide' : 'show'} its trials`}
          onClick={() => actions.toggle(e.id)}
        >
          {expanded ? (
            <caretDownIcon.react tag="span" className="hops-Experiment-caret" />
          ) : (
            <caretRightIcon.react tag="span" className="hops-Experiment-caret" />
          )}
          <StatusDot status={e.status} title={`${statusWord(e.status)}, ${progress(e)} trials`} />
          <span className="hops-Experiment-name">{e.name}</span>
        </button>
        {running ? (
          <span className="hops-Experiment-progress" title="trials done">
            {progress(e)}
          </span>
        ) : null}
        <span className="hops-Experiment-metric" title={metricTitle}>
          {e.best_metric === null ? '' : formatValue(e.best_metric)}
        </span>
        <span className="hops-Experiment-time" title={`started ${longTime(e.started)}`}>
          {time}
        </span>
        <span className="hops-Experiment-actions">
          <span className="hops-Experiment-hoverActions">
            <IconButton
              icon={tensorboardIcon}
              title="Open TensorBoard"
              className="hops-open-tensorboard"
              onClick={() => actions.openTensorBoard(e)}
            />
            <IconButton
              icon={tensorboardOffIcon}
              title={e.tensorboard ? 'Stop TensorBoard' : 'Stop TensorBoard (none is running)'}
              className="hops-stop-tensorboard"
              disabled={e.tensorboard === null}
              onClick={() => actions.stopTensorBoard(e)}
            />
            <CopyButton text={e.url} title="Copy the experiment's path" className="hops-copy-path" />
          </span>
          {running ? (
            <IconButton
              icon={stopIcon}
              title="Stop experiment"
              className="hops-stop-experiment"
              onClick={() => actions.stopExperiment(e)}
            />
          ) : null}
        </span>
      </div>
      {expanded ? (
        <div className="hops-Experiment-detail">
          <Summary experiment={e} />
          <Trials experimentId={e.id} trials={props.trials} actions={actions} />
        </div>
      ) : null}
    </li>
  );
}

/** Skipped while its experiment, trials and expansion are the same objects as last time. */
export const ExperimentRow = React.memo(ExperimentRowView);
