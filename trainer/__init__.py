"""The E5 training recipe: pairs → consistency filter → contrastive training → hard negatives → distillation,
and cross-encoder rerankers. Every stage reads and writes plain files (JSONL, sentence-transformers folders).

Entry points: :mod:`trainer.cli` (``e5search train STAGE``), :func:`trainer.recipe.run_recipe` (a TOML staged run),
and the stage functions in :mod:`trainer.pairs`, :mod:`trainer.filtering`, :mod:`trainer.train`,
:mod:`trainer.mining` and :mod:`trainer.reranker`.
"""
