"""Operating the installation: set-up, TLS, demo data."""
