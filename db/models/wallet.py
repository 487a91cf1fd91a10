"""ORM models: wallet."""
