"""The search facade: open an index, search it one query at a time or in batches."""
