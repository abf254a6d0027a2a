"""Getting papers in: the polite HTTP client and the source kinds (`sources/`, one file each)."""
