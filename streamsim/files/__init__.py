"""Safe file primitives: atomic writes, bounded reading of untrusted files, folder checks and
symlink-safe deletes, and the pickle-free tensor file format."""
