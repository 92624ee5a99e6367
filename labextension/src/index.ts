// hops-jupyter's JupyterLab plugin: the Experiments side panel, TensorBoard tabs, and the
// TensorBoards section of the Running panel.
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IRunningSessionManagers } from '@jupyterlab/running';

import { startTensorBoard } from './api';
import { ExperimentsPanel } from './panel';
import { TensorBoardSessions } from './running';
import { createTensorBoardTab, tensorboardTabId } from './tensorboard';

const OPEN_TENSORBOARD = 'hops-jupyter:open-tensorboard';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'hops-jupyter:plugin',
  description: 'Experiments, trials and TensorBoards of the hops-jupyter project.',
  autoStart: true,
  requires: [ILabShell],
  optional: [IRunningSessionManagers],
  activate: (app: JupyterFrontEnd, shell: ILabShell, running: IRunningSessionManagers | null) => {
    const sessions = new TensorBoardSessions(id => void app.commands.execute(OPEN_TENSORBOARD, { id }));

    app.commands.addCommand(OPEN_TENSORBOARD, {
      label: 'Open TensorBoard',
      execute: async args => {
        const id = String(args.id);
        const existing = Array.from(shell.widgets('main')).find(w => w.id === tensorboardTabId(id));
        if (existing) {
          shell.activateById(existing.id);
          return;
        }
        await startTensorBoard(id); // started (or reused) before the frame loads
        sessions.refreshRunning();
        shell.add(createTensorBoardTab(id), 'main');
      }
    });

    const panel = new ExperimentsPanel({
      openTensorBoard: id => void app.commands.execute(OPEN_TENSORBOARD, { id }),
      tensorBoardsChanged: () => sessions.refreshRunning()
    });
    shell.add(panel, 'left', { rank: 650 });

    if (running) {
      running.add(sessions);
      sessions.refreshRunning();
    }
  }
};

export default plugin;
