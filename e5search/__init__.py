"""The ``e5search`` console command: one front for the indexer, the app, the eval and the trainer."""
