// One trial of an expanded experiment: status, short params, its result, and for a failed trial
// the exception right there (type and message; the traceback one click away).
import * as React from 'react';

import { ITrial } from './api';
import { IconButton } from './buttons';
import { formatDuration, formatParams, formatValue } from './format';
import { logIcon } from './icons';
import { StatusDot, statusWord } from './status';

/** Only a trial that ended with a result has one; an early-stopped trial's is its last report. */
const HAS_RESULT = new Set(['FINISHED', 'EARLY_STOPPED']);

function statusText(trial: ITrial): string {
  if (trial.status === 'EARLY_STOPPED' && trial.stopped_step !== undefined && trial.stopped_step !== null) {
    return `stopped at step ${trial.stopped_step}`;
  }
  return statusWord(trial.status);
}

/** The result column: the metric of a trial that has one, the latest report of a running one
 * (marked as such), and nothing for a failed, killed or pending trial. */
function Result(props: { trial: ITrial }): JSX.Element | null {
  const { trial } = props;
  if (HAS_RESULT.has(trial.status)) {
    const value = trial.metric ?? trial.metric_nonfinite;
    return value === null || value === undefined ? null : (
      <span className="hops-Trial-metric" title="metric">
        {formatValue(value)}
      </span>
    );
  }
  const latest = trial.latest;
  if (trial.status === 'RUNNING' && latest && typeof latest.metric === 'number') {
    const step = latest.step === undefined ? '' : ` at step ${latest.step}`;
    return (
      <span className="hops-Trial-metric hops-mod-latest" title={`latest report${step} (not a result yet)`}>
        {formatValue(latest.metric)}
      </span>
    );
  }
  return null;
}

function TrialError(props: { error: NonNullable<ITrial['error']> }): JSX.Element {
  const { error } = props;
  return (
    <div className="hops-Trial-error">
      <div className="hops-Trial-errorMessage">
        {error.type}: {error.message}
      </div>
      {error.traceback ? (
        <details className="hops-Trial-traceback">
          <summary>Traceback</summary>
          <pre>{error.traceback}</pre>
        </details>
      ) : null}
    </div>
  );
}

export interface ITrialRowProps {
  experimentId: string;
  trial: ITrial;
  /** Stable across renders, so that memoised rows stay skipped. */
  openLog: (experimentId: string, trial: ITrial) => void;
}

function TrialRowView(props: ITrialRowProps): JSX.Element {
  const { trial } = props;
  const params = formatParams(trial.params) || trial.id;
  const duration = formatDuration(trial.duration_s);
  return (
    <li className={`hops-Trial hops-status-${trial.status}`} data-trial-id={trial.id} data-status={trial.status}>
      <div className="hops-Trial-row">
        <StatusDot status={trial.status} />
        <span className="hops-Trial-params" title={duration ? `${trial.id} (${duration})` : trial.id}>
          {params}
        </span>
        <span className="hops-Trial-status">{statusText(trial)}</span>
        <Result trial={trial} />
        <IconButton
          icon={logIcon}
          title="Show this trial's output (stdout, stderr, hdfs log)"
          className="hops-open-log"
          disabled={trial.status === 'PENDING'}
          onClick={() => props.openLog(props.experimentId, trial)}
        />
      </div>
      {trial.error ? <TrialError error={trial.error} /> : null}
    </li>
  );
}

/** Skipped while its trial object is the same (the model keeps unchanged trials' objects). */
export const TrialRow = React.memo(TrialRowView);
