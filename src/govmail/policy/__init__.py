"""The regulation's sending policy (R11–R18): what officials may send, and how mail is labelled."""
