"""The system of record on PostgreSQL: raw SQL on asyncpg, numbered migrations."""
