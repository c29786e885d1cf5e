"""Shared test set-up: one thread (the machine has 2 cores and tests run beside each other)."""

import torch

torch.set_num_threads(1)
