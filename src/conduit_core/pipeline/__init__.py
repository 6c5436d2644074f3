"""The load pipeline: the stages between read and write (see :mod:`conduit_core.pipeline.stage`)."""
