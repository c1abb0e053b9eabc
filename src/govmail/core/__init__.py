"""Pure functions and data types: naming, Vietnamese text, errors. No I/O here."""
