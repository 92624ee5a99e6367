// What tabs and Running entries call an experiment: "name 14:03", not its id. The panel's polls
// fill the cache; an id not seen yet is looked up once.
import { IExperiment, getExperiment } from './api';
import { experimentLabel, startedFromId } from './format';

export class ExperimentLabels {
  /** Remember the labels of listed experiments. */
  remember(experiments: readonly IExperiment[]): void {
    for (const e of experiments) {
      this._labels.set(e.id, experimentLabel(e.name, e.started));
    }
  }

  /** The label if known, else one from the id's start time alone. */
  labelNow(id: string): string {
    return this._labels.get(id) ?? experimentLabel('experiment', startedFromId(id));
  }

  /** The label, asking the server for an experiment not seen yet. */
  async label(id: string): Promise<string> {
    const known = this._labels.get(id);
    if (known !== undefined) {
      return known;
    }
    try {
      const experiment = await getExperiment(id);
      this.remember([experiment]);
    } catch (error) {
      console.warn(`hops-jupyter: could not read experiment ${id}`, error);
    }
    return this.labelNow(id);
  }

  private _labels = new Map<string, string>();
}
