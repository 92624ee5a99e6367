// hops-jupyter's JupyterLab plugin: the Experiments side panel, TensorBoard and trial-log tabs,
// and the TensorBoards section of the Running panel.
import { ILabShell, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { IRunningSessionManagers } from '@jupyterlab/running';

import { IExperiment, ITrial, startTensorBoard, stopExperiment, stopTensorBoard } from './api';
import { createLogTab, logTabId } from './logview';
import { ExperimentsModel } from './model';
import { ExperimentLabels } from './names';
import { ExperimentsPanel, IPanelActions } from './panel';
import { TensorBoardSessions } from './running';
import { createTensorBoardTab, tensorboardTabId } from './tensorboard';

const OPEN_TENSORBOARD = 'hops-jupyter:open-tensorboard';
const OPEN_TRIAL_LOG = 'hops-jupyter:open-trial-log';

/** Bring a main-area tab forward if it is open; true when it was. */
function activateExisting(shell: ILabShell, id: string): boolean {
  const existing = Array.from(shell.widgets('main')).find(w => w.id === id);
  if (existing) {
    shell.activateById(existing.id);
  }
  return existing !== undefined;
}

async function confirmStop(experiment: IExperiment): Promise<boolean> {
  const result = await showDialog({
    title: 'Stop experiment?',
    body: `Stop ${experiment.name} (${experiment.id})? Its running trials are killed; trials not started yet are not run.`,
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Stop' })]
  });
  return result.button.accept;
}

function panelActions(
  app: JupyterFrontEnd,
  model: ExperimentsModel,
  sessions: TensorBoardSessions
): IPanelActions {
  const failed = (what: string) => (error: unknown) => void showErrorMessage(what, error as Error);
  return {
    toggle: id => model.toggle(id),
    openTensorBoard: e =>
      void app.commands.execute(OPEN_TENSORBOARD, { id: e.id }).catch(failed('Could not start TensorBoard')),
    stopTensorBoard: e =>
      void stopTensorBoard(e.id)
        .then(() => {
          model.refreshSoon();
          sessions.refreshRunning();
        })
        .catch(failed('Could not stop TensorBoard')),
    stopExperiment: e =>
      void confirmStop(e)
        .then(ok => (ok ? stopExperiment(e.id).then(() => model.refreshSoon()) : undefined))
        .catch(failed('Could not stop the experiment')),
    openLog: (experimentId: string, trial: ITrial) =>
      void app.commands.execute(OPEN_TRIAL_LOG, { experimentId, trialId: trial.id })
  };
}

/** The Running panel lists TensorBoards: refresh it when the panel's poll sees one start or stop. */
function followTensorBoards(model: ExperimentsModel, sessions: TensorBoardSessions): void {
  let seen = '';
  model.changed.connect(() => {
    const running = model.experiments
      .filter(e => e.tensorboard)
      .map(e => e.id)
      .join(',');
    if (running !== seen) {
      seen = running;
      sessions.refreshRunning();
    }
  });
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'hops-jupyter:plugin',
  description: 'Experiments, trials and TensorBoards of the hops-jupyter project.',
  autoStart: true,
  requires: [ILabShell],
  optional: [IRunningSessionManagers],
  activate: (app: JupyterFrontEnd, shell: ILabShell, running: IRunningSessionManagers | null) => {
    const labels = new ExperimentLabels();
    const sessions = new TensorBoardSessions(id => void app.commands.execute(OPEN_TENSORBOARD, { id }), labels);
    const model = new ExperimentsModel();
    model.changed.connect(() => labels.remember(model.experiments));

    app.commands.addCommand(OPEN_TENSORBOARD, {
      label: 'Open TensorBoard',
      execute: async args => {
        const id = String(args.id);
        if (activateExisting(shell, tensorboardTabId(id))) {
          return;
        }
        const [label] = await Promise.all([labels.label(id), startTensorBoard(id)]); // started before the frame loads
        sessions.refreshRunning();
        model.refreshSoon();
        shell.add(createTensorBoardTab(id, label), 'main');
      }
    });

    app.commands.addCommand(OPEN_TRIAL_LOG, {
      label: 'Show Trial Output',
      execute: async args => {
        const experimentId = String(args.experimentId);
        const trialId = String(args.trialId);
        if (activateExisting(shell, logTabId(experimentId, trialId))) {
          return;
        }
        const label = await labels.label(experimentId);
        shell.add(createLogTab(experimentId, trialId, label), 'main');
      }
    });

    const panel = new ExperimentsPanel(model, panelActions(app, model, sessions));
    shell.add(panel, 'left', { rank: 650 });
    followTensorBoards(model, sessions);

    if (running) {
      running.add(sessions);
      sessions.refreshRunning();
    }
  }
};

export default plugin;
