"""Text → vectors: the encoder (the one place that knows E5's prompts), its backends and their artefacts."""
