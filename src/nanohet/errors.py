"""Exceptions raised for bad user input."""


class InputError(ValueError):
    """A user-supplied file, table or setting is unusable.

    The message always names the file (or key) and what is wrong, so that a
    scientist can fix the input without reading a traceback.
    """
