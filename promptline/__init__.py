"""promptline: ship LLM prompts like code and measure them like experiments."""

__version__ = "0.1.0"
