"""Prompts with power: weights (A1111's and compel's syntax), wildcards and variants. No torch here: the
worker turns the parsed weights into embeddings (``jobs.prompting``)."""
