"""ORM models: usage."""
