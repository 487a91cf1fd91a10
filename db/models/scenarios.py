"""ORM models: scenarios."""
