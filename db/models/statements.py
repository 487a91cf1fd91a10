"""ORM models: statements."""
