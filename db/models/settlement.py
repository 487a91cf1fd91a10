"""ORM models: settlement."""
