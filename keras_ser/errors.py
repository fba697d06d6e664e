"""The two error types of keras_ser.

``ParameterError`` is raised for every invalid argument or setting (librosa's
convention: one error type for parameter validation). ``DataError`` is raised for
bad data on disk: a missing, unreadable, empty, silent or mislabelled file, or a
split that leaves a class or speaker empty. Both subclass ``ValueError`` so that
callers who do not know keras_ser can still catch them.
"""


class KerasSERError(Exception):
    """Base class of keras_ser's own errors."""


class ParameterError(KerasSERError, ValueError):
    """An argument or configuration value is invalid."""


class DataError(KerasSERError, ValueError):
    """A data file or corpus is missing, unreadable or unusable.

    The message always names the offending file, corpus or setting.
    """
