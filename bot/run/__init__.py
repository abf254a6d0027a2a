"""Running paperbot: the pipeline of one run, the worker, the lock, status and notices."""
