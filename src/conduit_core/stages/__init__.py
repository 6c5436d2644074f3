"""The stages between read and write (see :mod:`conduit_core.stages.stage`)."""
