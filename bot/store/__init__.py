"""The only package that opens SQLite: `store.Store` is the way in, with a part per kind of
data (`papers`, `subscribers`, `matches`, `outbox`, `bounces`, `health`, `notices`,
`ratelimit`) over one connection (`database`); `rows` says how values are stored (one column
list per model table), `schema` holds the migrations, `file` guards the file on disk and
`identity` merges records of one paper."""
