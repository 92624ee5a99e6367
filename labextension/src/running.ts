// TensorBoards in JupyterLab's Running panel, with a shut-down button each.
import { IRunningSessions } from '@jupyterlab/running';
import { ISignal, Signal } from '@lumino/signaling';

import { ITensorBoard, listTensorBoards, stopTensorBoard } from './api';
import { experimentsIcon } from './icons';

export class TensorBoardSessions implements IRunningSessions.IManager {
  readonly name = 'TensorBoards';
  readonly shutdownLabel = 'Stop TensorBoard';
  readonly shutdownAllLabel = 'Stop All';
  readonly shutdownAllConfirmationText = 'Stop every TensorBoard of this project?';

  constructor(private readonly open: (experimentId: string) => void) {}

  get runningChanged(): ISignal<this, void> {
    return this._changed;
  }

  running(): IRunningSessions.IRunningItem[] {
    return this._boards.map(board => ({
      open: () => this.open(board.experiment_id),
      shutdown: () => void this._stop(board.experiment_id),
      icon: () => experimentsIcon,
      label: () => `TensorBoard ${board.experiment_id}`,
      labelTitle: () => `${board.experiment_id} on port ${board.port}`,
      className: 'hops-RunningTensorBoard'
    }));
  }

  refreshRunning(): void {
    void this._refresh();
  }

  shutdownAll(): void {
    void Promise.all(this._boards.map(board => stopTensorBoard(board.experiment_id))).then(() => this._refresh());
  }

  private async _stop(experimentId: string): Promise<void> {
    await stopTensorBoard(experimentId);
    await this._refresh();
  }

  private async _refresh(): Promise<void> {
    try {
      this._boards = await listTensorBoards();
    } catch (error) {
      console.error('hops-jupyter: could not list TensorBoards', error);
      this._boards = [];
    }
    this._changed.emit();
  }

  private _boards: ITensorBoard[] = [];
  private _changed = new Signal<this, void>(this);
}
