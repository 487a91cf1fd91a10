"""`python -m api`: the HTTP API on http://127.0.0.1:8000 (RC_API_PORT, RC_API_HOST)."""

from api.main import main

main()
