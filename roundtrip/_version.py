"""The one place the version is written: packaging metadata, ``roundtrip.__version__`` and the
default User-Agent all read it from here."""

__version__ = "0.2.0"
