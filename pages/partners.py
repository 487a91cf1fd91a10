"""partners (being built)."""

import streamlit as st

from pages.common import require

actor = require()
st.title("partners")
