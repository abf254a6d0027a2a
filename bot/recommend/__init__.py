"""Learned recommendations beside exact alerts: seeds, feedback, the text model."""
