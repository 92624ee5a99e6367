// The one status vocabulary (the Python side's TrialStatus) as the panel shows it: a coloured dot
// whose colour comes from the theme (style/index.css), and a short word.
import * as React from 'react';

import { TrialStatus } from './api';

/** In the order the status filter lists them: what needs attention first. */
export const STATUSES: readonly TrialStatus[] = ['RUNNING', 'PENDING', 'FAILED', 'KILLED', 'EARLY_STOPPED', 'FINISHED'];

export function statusWord(status: string): string {
  return status.toLowerCase().replace('_', ' ');
}

export function StatusDot(props: { status: string; title?: string }): JSX.Element {
  const title = props.title ?? statusWord(props.status);
  return <span className={`hops-StatusDot hops-status-${props.status}`} title={title} role="img" aria-label={title} />;
}
