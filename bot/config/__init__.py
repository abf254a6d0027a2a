"""The configuration: its schema (`settings`), value checks, the safe loader (`load`) and
the parts it configures (`wiring`)."""
