"""Pure IMAP syntax: bytes in, requests out; responses in, bytes out. No sockets, no store."""
