"""The subscriber alert language (`query`), the index that matches a day, and the reference."""
