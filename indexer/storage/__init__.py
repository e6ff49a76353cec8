"""An index on disk: SQLite tables and manifest, generation files, the embedding cache, row readers."""
