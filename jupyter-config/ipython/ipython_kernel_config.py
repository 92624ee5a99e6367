# Installed into <prefix>/etc/ipython by hops-jupyter: kernels of this environment load the
# %hdfs, %%experiment and %tensorboard magics without a %load_ext.
c = get_config()  # noqa: F821
c.InteractiveShellApp.extensions.append("hops_jupyter")
