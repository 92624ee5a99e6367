// The clock shared by the panel's model and the log tail: one poll at a time, on a timer, only
// while active (its view is visible). A poll asked for while one is out runs right after it.
import { IDisposable } from '@lumino/disposable';

export class Poller implements IDisposable {
  /** `poll` answers the delay before the next poll, or null to wait until asked again. */
  constructor(private readonly poll: () => Promise<number | null>) {}

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Poll while active; stop (after the poll in flight) when not. */
  setActive(active: boolean): void {
    this._active = active;
    if (active) {
      this.now();
    } else {
      window.clearTimeout(this._timer);
    }
  }

  /** Poll now, or right after the poll in flight. */
  now(): void {
    this._schedule(0);
  }

  dispose(): void {
    this._disposed = true;
    window.clearTimeout(this._timer);
  }

  private _schedule(delay: number): void {
    window.clearTimeout(this._timer);
    if (!this._disposed && this._active) {
      this._timer = window.setTimeout(() => void this._tick(), delay);
    }
  }

  private async _tick(): Promise<void> {
    if (this._inFlight) {
      this._again = true;
      return;
    }
    this._inFlight = true;
    let next: number | null = null;
    try {
      next = await this.poll();
    } finally {
      this._inFlight = false;
    }
    if (this._again) {
      this._again = false;
      this._schedule(0);
    } else if (next !== null) {
      this._schedule(next);
    }
  }

  private _active = false;
  private _inFlight = false;
  private _again = false;
  private _timer = 0;
  private _disposed = false;
}
