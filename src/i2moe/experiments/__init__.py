"""The experiments that ship as commands, above the run folders and below the command line.

- :mod:`~i2moe.experiments.faithfulness`: do the explanations name the true interaction?
- :mod:`~i2moe.experiments.reproduce`: the paper's tables on its datasets;
- :mod:`~i2moe.experiments.compare`: every backbone vanilla vs I2MoE, and the ablations;
- :mod:`~i2moe.experiments.bench`: what I2MoE costs over its backbone;
- :mod:`~i2moe.experiments.pid`: the exact PID that checks the faithfulness suite's ground truth;
- :mod:`~i2moe.experiments.paper`: the paper's tables as data (``paper.yaml``);

Each trains through :func:`i2moe.training.loop.train_module` (or :mod:`i2moe.runs` where it
writes run folders) and generates data with :mod:`i2moe.data.synth`.
"""
