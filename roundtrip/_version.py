"""The one place the version is written: packaging metadata, ``roundtrip.__version__`` and the
default User-Agent all read it from here."""

__version__ = "0.2.0"

# What the transport sends as User-Agent when the caller sets none (Go: "Go-http-client/1.1").
USER_AGENT = f"roundtrip/{__version__}"
