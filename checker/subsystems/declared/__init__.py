"""One module per subsystem, each calling `registry.register(Subsystem(...))` once.

A module here must stay light (no import of the subsystem's model or driver):
the registry imports every one of them to learn which subsystems exist. Adding
a subsystem is adding a module here, its model and its driver (see
docs/architecture.md).
"""
