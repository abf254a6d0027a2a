"""The subscription web app: pages, forms, the request guard, confirmation mail."""
