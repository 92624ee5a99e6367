// TensorBoards in JupyterLab's Running panel, named after their experiments, with a shut-down
// button each.
import { IRunningSessions } from '@jupyterlab/running';
import { ISignal, Signal } from '@lumino/signaling';

import { ITensorBoard, listTensorBoards, stopTensorBoard } from './api';
import { tensorboardIcon } from './icons';
import { ExperimentLabels } from './names';

export class TensorBoardSessions implements IRunningSessions.IManager {
  readonly name = 'TensorBoards';
  readonly shutdownLabel = 'Stop TensorBoard';
  readonly shutdownAllLabel = 'Stop All';
  readonly shutdownAllConfirmationText = 'Stop every TensorBoard of this project?';

  constructor(
    private readonly _open: (experimentId: string) => void,
    private readonly _labels: ExperimentLabels
  ) {}

  get runningChanged(): ISignal<this, void> {
    return this._changed;
  }

  running(): IRunningSessions.IRunningItem[] {
    return this._boards.map(board => {
      const label = this._labels.labelNow(board.experiment_id);
      return {
        open: () => this._open(board.experiment_id),
        shutdown: () => void this._stop(board.experiment_id),
        icon: () => tensorboardIcon,
        label: () => label,
        labelTitle: () => `TensorBoard of ${label} (${board.experiment_id}), port ${board.port}`,
        className: 'hops-RunningTensorBoard'
      };
    });
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
      const boards = await listTensorBoards();
      // Names first, so that no entry shows up labelled by its id and then changes.
      await Promise.all(boards.map(board => this._labels.label(board.experiment_id)));
      this._boards = boards;
    } catch (error) {
      console.error('hops-jupyter: could not list TensorBoards', error);
      this._boards = [];
    }
    this._changed.emit();
  }

  private _boards: ITensorBoard[] = [];
  private _changed = new Signal<this, void>(this);
}
