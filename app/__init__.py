"""The Streamlit web app: BM25, dense (E5) and hybrid results side by side, indexing and evaluation pages.

``streamlit_app.py`` is the entry point (``e5search app`` runs it); the pages are layout only and call
:mod:`app.service`, a thin layer over :mod:`indexer` and :mod:`eval` with the cached loaders. The pure helpers
(:mod:`app.highlight`, :mod:`app.compare`, :mod:`app.urlstate`) know nothing about Streamlit.
Nothing outside ``app`` imports it.
"""
