"""The seed's `tensorboard` API: where a trial writes its summaries."""

from __future__ import annotations

from hops_jupyter.core import context, filesystem, project


def logdir() -> str:
    """The running trial's folder, which is its TensorBoard logdir: a local path on the
    embedded root (TensorFlow writes there directly), a full URL on HDFS."""
    trial = context.current_trial()
    if trial is None:
        raise RuntimeError(
            "tensorboard.logdir() is the running trial's folder: call it inside a function run by "
            "experiment.launch / grid_search / random_search / differential_evolution"
        )
    loc = filesystem.resolve(trial.trial_url, project.current())
    return loc.path if loc.scheme == "file" else loc.url
