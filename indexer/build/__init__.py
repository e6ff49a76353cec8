"""The indexing job: folder → new generation of the index, incrementally and crash-safe."""
