"""The version, in one place: the package metadata and the User-Agent read it from here."""

__version__ = "0.1.0"

# What the transport sends as User-Agent when the caller sets none (Go: "Go-http-client/1.1").
USER_AGENT = f"roundtrip/{__version__}"
