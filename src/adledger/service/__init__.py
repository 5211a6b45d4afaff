"""Use cases. Each takes a `UnitOfWork` first; the caller's `Database.run` owns commit and retry."""
