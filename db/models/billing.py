"""ORM models: billing."""
