"""Evaluation: BEIR datasets, trec_eval metrics, significance tests, reports and the multilingual suites.

Every retriever is evaluated through the same indexer code path the product uses (``indexer.build`` then
``Index.retriever(mode).search(queries, k) -> Run``), so a number here is a number for the product.
"""
