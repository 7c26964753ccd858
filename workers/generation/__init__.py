"""Running one generation: admission (slots and queue), cancellation (disconnect and
deadline), the job (prompt and sampling), the backend thread bridge, stop sequences."""
