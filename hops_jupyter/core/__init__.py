"""The embedded hops core: project, hdfs, experiment, tensorboard, devices, util, kafka, tls.

Importable without Jupyter; modules are imported on first use so a Spark executor or worker
process pays only for what it touches.
"""
