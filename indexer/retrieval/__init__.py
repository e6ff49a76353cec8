"""Ranking chunks: BM25 and its analyser, the FAISS index, fusion of ranked lists, cross-encoder reranking."""
