"""Sign up: creates a user and their customer account in one step."""

from __future__ import annotations

import streamlit as st

from core.accounts.auth import signup
from core.accounts.passwords import MIN_LENGTH
from core.validation import countries, currencies
from pages.common import field_error, run_action, show_flash

st.title("Create your account")
st.caption("One form creates your organisation's customer account and your user; you become its Manager. "
           "We e-mail you a link to confirm your address before your first log-in.")
show_flash()

country_codes = sorted(countries(), key=lambda c: countries()[c])
currency_codes = sorted(currencies())

with st.form("signup"):
    st.subheader("You")
    name = st.text_input("Your name", key="su_name")
    field_error("display_name")
    email = st.text_input("E-mail", key="su_email", autocomplete="email")
    field_error("email")
    password = st.text_input(f"Password (at least {MIN_LENGTH} characters)", type="password", key="su_password",
                             autocomplete="new-password")
    field_error("password")
    st.subheader("Your organisation")
    org = st.text_input("Organisation name", key="su_org")
    field_error("org_name")
    col1, col2 = st.columns(2)
    country = col1.selectbox("Country", country_codes, index=country_codes.index("NO"),
                             format_func=lambda c: f"{countries()[c]} ({c})", key="su_country")
    field_error("country")
    currency = col2.selectbox("Currency", currency_codes, index=currency_codes.index("EUR"), key="su_currency")
    field_error("currency")
    submitted = st.form_submit_button("Sign up", type="primary")

if submitted:
    message = run_action(signup, email=email, display_name=name, password=password, org_name=org,
                         country=country, currency=currency)
    if message is not None:  # the same answer whether the address was known or not
        st.session_state["flash"] = ("success", message)
        st.rerun()
