"""gpucost: what LLM tokens cost on GPUs."""

__version__ = "0.1.0"
