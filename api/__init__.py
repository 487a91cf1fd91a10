"""The HTTP API (issue 17): FastAPI on uvicorn, beside the Streamlit app (`make run`, port 8000, `/docs`).

Every endpoint authenticates an API key (core.accounts.apikeys), which acts as the partner's staff limited
to the key's scopes, and calls the same core services as the pages: permissions, validation and the one
usage ingestion path (core.usage.ingest.record_events) live in core alone. Errors are RFC 9457 problem
details (api.problems); request bodies are size-limited; each key is rate limited (api.security).

May import: core, db. Nothing imports this package but its tests (bench starts it as a process).
"""
