// Requests to the server extension: ServerConnection adds the token and XSRF header, and every
// URL starts from the page's base URL (JupyterHub-style prefixes included).
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Trial and experiment statuses: the Python side's TrialStatus enum. */
export type TrialStatus =
  | 'PENDING'
  | 'RUNNING'
  | 'FINISHED'
  | 'FAILED'
  | 'EARLY_STOPPED'
  | 'KILLED';

export interface ITrial {
  id: string;
  params: Record<string, unknown>;
  status: string;
  metric: number | null;
  /** 'nan', 'inf' or '-inf' when the metric was not finite (then `metric` is null). */
  metric_nonfinite?: string | null;
  duration_s: number | null;
  stopped_step?: number | null;
  started?: string | null;
  error: { type: string; message: string; traceback?: string } | null;
  latest: { metric?: number; step?: number } | null;
}

/** One read of a trial's log: `text` starts at `offset`; poll again from `next_offset`. */
export interface ILogChunk {
  stream: string;
  text: string;
  offset: number;
  next_offset: number;
  size: number;
}

/** The log files a trial writes (the server's `stream` names). */
export const LOG_STREAMS = ['stdout', 'stderr', 'hdfs'] as const;
export type LogStream = (typeof LOG_STREAMS)[number];

export interface ITensorBoard {
  experiment_id: string;
  pid: number;
  port: number;
  url: string;
  started: number;
}

export interface IExperiment {
  id: string;
  name: string;
  kind: string;
  status: string;
  url: string;
  started: string;
  finished?: string | null;
  duration_s?: number | null;
  trials_done: number;
  trials_total: number | null;
  trials_failed: number;
  best_metric: number | null;
  best_params: Record<string, unknown> | null;
  direction?: string | null;
  metric_key?: string | null;
  status_message?: string | null;
  tensorboard: ITensorBoard | null;
  trials?: ITrial[];
}

/** Call `{base_url}hops/<path>` and return its JSON; server errors carry their message. */
export async function requestAPI<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, 'hops', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    const message = (data as { message?: string } | null)?.message ?? response.statusText;
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}

/** The proxied TensorBoard of an experiment, under the page's base URL. */
export function tensorboardUrl(experimentId: string): string {
  const base = ServerConnection.makeSettings().baseUrl;
  return URLExt.join(base, 'hops', 'tensorboard', encodeURIComponent(experimentId)) + '/';
}

export function listExperiments(): Promise<IExperiment[]> {
  return requestAPI<IExperiment[]>('api/experiments');
}

export function getExperiment(id: string): Promise<IExperiment> {
  return requestAPI<IExperiment>(`api/experiments/${encodeURIComponent(id)}`);
}

export function listTensorBoards(): Promise<ITensorBoard[]> {
  return requestAPI<ITensorBoard[]>('api/tensorboards');
}

export function startTensorBoard(id: string): Promise<unknown> {
  return requestAPI('api/tensorboards', { method: 'POST', body: JSON.stringify({ experiment_id: id }) });
}

export function stopTensorBoard(id: string): Promise<unknown> {
  return requestAPI(`api/tensorboards/${encodeURIComponent(id)}`, { method: 'DELETE' });
}

/** Ask the driver of a RUNNING experiment to stop it (whichever kernel or process runs it). */
export function stopExperiment(id: string): Promise<unknown> {
  return requestAPI(`api/experiments/${encodeURIComponent(id)}/stop`, { method: 'POST' });
}

/** A trial's log from `offset` on; without one, the server sends the last 64 KiB. */
export function getTrialLog(
  experimentId: string,
  trialId: string,
  stream: LogStream,
  offset?: number
): Promise<ILogChunk> {
  const path =
    `api/experiments/${encodeURIComponent(experimentId)}/trials/${encodeURIComponent(trialId)}` +
    `/logs/${stream}` +
    (offset === undefined ? '' : `?offset=${offset}`);
  return requestAPI<ILogChunk>(path);
}
