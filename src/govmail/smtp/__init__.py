"""SMTP: the MX (port 25) and submission (587 STARTTLS, 465 implicit TLS) listeners."""
