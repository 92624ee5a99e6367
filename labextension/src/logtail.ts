// A trial's log followed live: the last 64 KiB first, then only what was appended since
// (offset = next_offset), every second while the trial can still write; one last read after it
// ended, then no more requests.
import { IDisposable } from '@lumino/disposable';
import { ISignal, Signal } from '@lumino/signaling';

import { LogStream, getExperiment, getTrialLog } from './api';
import { Poller } from './poller';

const POLL_MS = 1000;
/** The trial's status is read every few log polls: it costs a read of every trial record. */
const STATUS_EVERY = 3;
/** What the view keeps: a chatty trial must not grow the page without bound. */
const MAX_CHARS = 1_000_000;
/** The most bytes one answer of the log route holds. */
const CHUNK_BYTES = 65536;
const LIVE = new Set(['RUNNING', 'PENDING']);

export class LogTail implements IDisposable {
  constructor(
    readonly experimentId: string,
    readonly trialId: string
  ) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get stream(): LogStream {
    return this._stream;
  }

  get text(): string {
    return this._text;
  }

  /** True when earlier output exists that is not shown (the first read is the file's tail). */
  get clipped(): boolean {
    return this._clipped;
  }

  /** The trial can still write (RUNNING or PENDING), as of the last status read. */
  get live(): boolean {
    return this._live;
  }

  get error(): string | null {
    return this._error;
  }

  /** False until the first read of the current stream answered. */
  get loaded(): boolean {
    return this._loaded;
  }

  get isDisposed(): boolean {
    return this._poller.isDisposed;
  }

  /** Show another of the trial's streams, from its tail. */
  setStream(stream: LogStream): void {
    if (stream === this._stream) {
      return;
    }
    this._stream = stream;
    this._reset();
    this._changed.emit();
    this._poller.now();
  }

  /** Follow the log while active (its tab is visible). */
  setActive(active: boolean): void {
    this._poller.setActive(active);
  }

  dispose(): void {
    this._poller.dispose();
    Signal.clearData(this);
  }

  private _reset(): void {
    this._text = '';
    this._offset = undefined;
    this._clipped = false;
    this._error = null;
    this._done = false;
    this._loaded = false;
    this._behind = false;
  }

  /** One poll; the delay before the next, or null once the log is final. */
  private async _poll(): Promise<number | null> {
    if (this._done) {
      return null;
    }
    const stream = this._stream;
    try {
      // The status first: a trial that ended is read one last time and never again.
      if (this._polls % STATUS_EVERY === 0) {
        await this._readStatus();
      }
      this._polls += 1;
      const wasLive = this._live;
      try {
        await this._read(stream);
      } finally {
        // Read (or failed to read) after the trial ended, and nothing left: final.
        this._done = !wasLive && !this._behind;
      }
    } catch (error) {
      this._error = (error as Error)?.message ?? String(error);
      this._loaded = true;
      this._changed.emit();
    }
    return this._done ? null : this._behind ? 0 : POLL_MS;
  }

  private async _readStatus(): Promise<void> {
    const experiment = await getExperiment(this.experimentId);
    const trial = experiment.trials?.find(t => t.id === this.trialId);
    const live = trial !== undefined && LIVE.has(trial.status);
    if (live !== this._live) {
      this._live = live;
      this._changed.emit();
    }
  }

  private async _read(stream: LogStream): Promise<void> {
    const chunk = await getTrialLog(this.experimentId, this.trialId, stream, this._offset);
    if (stream !== this._stream || this.isDisposed) {
      return; // the stream was switched while the request was out
    }
    if (this._offset !== undefined && chunk.size < this._offset) {
      this._reset(); // the file was rewritten: start again from its tail
      return;
    }
    // Behind a chatty trial by more than one answer holds: read on at once, not a second later
    // (it would never catch up); by more than the view keeps, go on from its tail.
    const behind = chunk.size - chunk.next_offset;
    this._behind = behind > CHUNK_BYTES;
    if (this._offset !== undefined && behind > MAX_CHARS) {
      this._text = '';
      this._offset = undefined;
      return;
    }
    if (this._offset === undefined) {
      this._clipped = chunk.offset > 0;
    }
    this._offset = chunk.next_offset;
    const first = !this._loaded || this._error !== null;
    this._error = null;
    this._loaded = true;
    if (chunk.text.length > 0 || first) {
      this._text += chunk.text;
      if (this._text.length > MAX_CHARS) {
        this._text = this._text.slice(-MAX_CHARS);
        this._clipped = true;
      }
      this._changed.emit();
    }
  }

  private _stream: LogStream = 'stdout';
  private _text = '';
  private _offset: number | undefined = undefined;
  private _clipped = false;
  private _live = true;
  private _loaded = false;
  private _done = false;
  private _behind = false;
  private _error: string | null = null;
  private _polls = 0;
  private _poller = new Poller(() => this._poll());
  private _changed = new Signal<this, void>(this);
}
