// How values read in the panel, tabs and Running entries: short, and the same everywhere.

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function twoDigits(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * A start time in local time, as short as it can be while still telling runs apart:
 * "14:03" today, "Nov 27 14:03" this year, "Nov 27 2024 14:03" before.
 */
export function shortTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return '';
  }
  const clock = `${twoDigits(date.getHours())}:${twoDigits(date.getMinutes())}`;
  if (date.toDateString() === now.toDateString()) {
    return clock;
  }
  const day = `${MONTHS[date.getMonth()]} ${date.getDate()}`;
  return date.getFullYear() === now.getFullYear() ? `${day} ${clock}` : `${day} ${date.getFullYear()} ${clock}`;
}

/** The full local date and time, for tooltips. */
export function longTime(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString();
}

/** Numbers with 6 significant digits at most (metrics are floats with noise in the last bits);
 * lists and dicts (a parameter can be any JSON value) as JSON, not "[object Object]". */
export function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    return Number(value.toPrecision(6)).toString();
  }
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/** `lr=0.1, layers=3`; tf_config is plumbing, not a hyperparameter. */
export function formatParams(params: Record<string, unknown> | null | undefined): string {
  if (!params) {
    return '';
  }
  return Object.entries(params)
    .filter(([name]) => name !== 'tf_config')
    .map(([name, value]) => `${name}=${formatValue(value)}`)
    .join(', ');
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  if (seconds < 60) {
    return `${Number(seconds.toPrecision(2))} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${Math.round(seconds % 60)} s`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** What a tab or Running entry calls an experiment: its name and when it started. */
export function experimentLabel(name: string, started: string | null | undefined): string {
  const time = shortTime(started);
  return time ? `${name} ${time}` : name;
}

/** Experiment ids start with their UTC start time (`20261124T023015123-a1b2`): an ISO time. */
export function startedFromId(id: string): string | null {
  const match = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})-/.exec(id);
  if (!match) {
    return null;
  }
  const [, y, mo, d, h, mi, s, ms] = match;
  return `${y}-${mo}-${d}T${h}:${mi}:${s}.${ms}Z`;
}
