"""What ``e5search app`` runs: the Streamlit pages (:mod:`app.streamlit_app`) and the app's own routes on one server.

``streamlit run app/asgi.py`` finds the ``st.App`` below and serves it with uvicorn, with the same
``server.*`` options as a plain script (``e5search app`` passes them). Added route: :data:`app.files.ROUTE`,
the original file behind a hit.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.files import routes

app = st.App(Path(__file__).with_name("streamlit_app.py"), routes=routes())
