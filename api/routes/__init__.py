"""The API\x27s routers: usage, accounts (provisioning), statements."""
