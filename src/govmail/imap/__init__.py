"""IMAP4rev1/IMAP4rev2 server: sessions over the mail store (``proto/`` is the pure syntax)."""
