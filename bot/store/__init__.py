"""The only package that opens SQLite: the file, the schema, the rows, identity of papers."""
