"""Cross-cutting pieces every package may use: database, errors, security headers, logs,
rate limits, languages, signed tokens, screenshots. They import only models and config."""
