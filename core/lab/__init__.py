"""The billing-model lab: re-price a customer's real or synthetic usage under several plans (compare).

May import: core.accounts, core.usage, core.billing, core.pricing, core.errors.
"""
