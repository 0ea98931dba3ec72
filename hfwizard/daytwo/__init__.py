"""Day-two tools after an install: the DNS hand-off, secret masking and the support bundle."""
